// `npm run docs:config`: writes docs/configuration.md from the configuration schema and the words in
// src/service/config-docs.ts. A test (test/docs/configuration.test.ts) fails when the file is stale.

import { writeFileSync } from 'node:fs';
import { configurationPage } from './service/config-docs.js';

const target = new URL('../docs/configuration.md', import.meta.url);
writeFileSync(target, configurationPage());
process.stdout.write(`wrote ${target.pathname}\n`);
