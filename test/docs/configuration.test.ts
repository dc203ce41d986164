// docs/configuration.md is generated from the configuration schema (`npm run docs:config`) and must
// stay in step with it, as openapi.yaml does with the routes.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/service/config.js';
import { configurationPage } from '../../src/service/config-docs.js';

const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

describe('docs/configuration.md', () => {
  it('is what the schema generates (else run `npm run docs:config`)', () => {
    expect(configurationPage(), 'docs/configuration.md is out of date: run `npm run docs:config`').toBe(committed);
  });

  it('has a row for every setting, with its default and range from the schema', () => {
    for (const name of Object.keys(configSchema.shape)) expect(committed, name).toMatch(new RegExp(`^\\| \`${name}\` \\|`, 'm'));
    expect(committed).toMatch(/^\| `PORT` \| `3000` \| integer, 0 to 65535 \|/m);
    expect(committed).toMatch(/^\| `WORKERS` \| number of cores \|/m);
  });
});
