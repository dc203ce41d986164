// openapi.yaml is generated from the route schemas (`npm run openapi`) and must stay in step.

import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

const committed = readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8');

describe('openapi.yaml', () => {
  let app: App;

  beforeAll(async () => {
    app = buildTestApp();
    await app.ready();
  });
  afterAll(() => app.close());

  it('is what the code generates (else run `npm run openapi`)', async () => {
    expect(app.swagger({ yaml: true }), 'openapi.yaml is out of date: run `npm run openapi`').toBe(committed);
    const served = await app.inject({ url: '/openapi.yaml' });
    expect(served.body).toBe(committed);
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(committed);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('describes problem answers with the shared Problem schema', () => {
    const spec = parse(committed) as {
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
      paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: unknown }> }> } }>;
    };
    expect(Object.keys(spec.components.schemas.Problem?.properties ?? {})).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'code', 'errors']),
    );
    expect(spec.paths['/readyz']?.get.responses['503']?.content['application/problem+json']?.schema).toEqual({
      $ref: '#/components/schemas/Problem',
    });
  });
});
