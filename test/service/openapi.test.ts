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

  it("has an operationId on every operation (a generated client's method names), each one unique", () => {
    const spec = parse(committed) as { paths: Record<string, Record<string, { operationId?: unknown }>> };
    const operations = Object.entries(spec.paths).flatMap(([url, item]) => Object.entries(item).map(([method, operation]) => ({ at: `${method} ${url}`, id: operation.operationId })));
    expect(operations.length).toBeGreaterThan(10);
    for (const { at, id } of operations) expect(id, at).toMatch(/^[a-z][A-Za-z0-9]*$/);
    const ids = operations.map(({ id }) => id);
    expect(new Set(ids).size, 'operationIds repeat').toBe(ids.length);
    expect(spec.paths['/grad']?.post?.operationId).toBe('grad');
    expect(spec.paths['/healthz']?.get?.operationId).toBe('getHealthz');
  });

  it('says 429 on exactly the operations that are rate-limited', async () => {
    const spec = parse(committed) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const limited = buildTestApp({ RATE_LIMIT_MAX: 1 });
    try {
      for (const [url, item] of Object.entries(spec.paths)) {
        for (const [method, operation] of Object.entries(item)) {
          const send = () => limited.inject({ method: method.toUpperCase() as 'GET' | 'POST', url, payload: method === 'post' ? {} : undefined });
          await send();
          const second = await send();
          expect(second.statusCode === 429, `${method} ${url}: rate-limited`).toBe('429' in operation.responses);
        }
      }
    } finally {
      await limited.close();
    }
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
