// `npm run openapi`: writes openapi.yaml (OpenAPI 3.1) from the route schemas, exactly as the
// app serves it at GET /openapi.yaml. A test fails when the committed file is out of date.

import { writeFileSync } from 'node:fs';
import { buildApp } from './app.js';
import { defaultConfig } from './service/config.js';

const target = new URL('../openapi.yaml', import.meta.url);

const app = buildApp(defaultConfig(), { logger: false });
await app.ready();
writeFileSync(target, app.swagger({ yaml: true }));
await app.close();
process.stdout.write(`wrote ${target.pathname}\n`);
