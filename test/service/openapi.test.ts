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

type Operation = {
  security?: unknown;
  requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown>; allOf?: { oneOf: { required: string[] }[] }[] }; example?: Record<string, unknown> }> };
  responses: Record<string, unknown>;
};
const operations = () => {
  const spec = parse(committed) as { paths: Record<string, Record<string, Operation>> };
  return Object.entries(spec.paths).flatMap(([url, item]) => Object.entries(item).map(([method, operation]) => ({ url, method, operation })));
};

/** The pairs of fields a body states as "exactly one of" (`allOf` of `oneOf`s). */
const choicesOf = (operation: Operation) =>
  (operation.requestBody?.content['application/json']?.schema.allOf ?? []).map(({ oneOf }) => oneOf.map(({ required }) => required.join()));

describe('openapi.yaml: what generated clients rely on', () => {
  let app: App;
  beforeAll(async () => {
    // No 503 overloaded when other work on the machine delays this event loop.
    app = buildTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
    await app.ready();
  });
  afterAll(() => app.close());

  it('states `security` on every operation ([] where no key is asked)', () => {
    for (const { url, method, operation } of operations()) {
      expect(Array.isArray(operation.security), `${method} ${url}`).toBe(true);
    }
    const open = operations().filter(({ operation }) => Array.isArray(operation.security) && operation.security.length === 0).map(({ url }) => url);
    expect(open).toEqual(expect.arrayContaining(['/healthz', '/readyz', '/openapi.yaml']));
    expect(open).not.toContain('/grad');
  });

  it('states a key optional where it is asked ({} beside its scheme): keys are asked for only when configured', () => {
    for (const { url, method, operation } of operations()) {
      const security = operation.security as Record<string, unknown>[];
      if (security.length === 0) continue;
      expect(security, `${method} ${url}`).toHaveLength(2);
      expect(security, `${method} ${url}`).toContainEqual({});
      expect(Object.keys(security.find((s) => Object.keys(s).length > 0) ?? {}), `${method} ${url}`).toEqual([url === '/metrics' ? 'metricsKeyBearer' : 'apiKeyBearer']);
    }
  });

  it('writes tuples as draft-07 tools read them, and no safe-integer bounds (Swagger UI made examples of them)', () => {
    const text = committed;
    expect(text).not.toContain('prefixItems');
    expect(text).not.toContain('items: false');
    expect(text).not.toContain(String(Number.MAX_SAFE_INTEGER));
    const patch = (parse(committed) as { components: { schemas: Record<string, { properties: Record<string, unknown> }> } }).components.schemas.ProbeImageInput?.properties.patch;
    expect(patch).toMatchObject({ type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 2, maxItems: 2 });
  });

  it('documents a 4xx answer on every operation but the liveness and readiness probes', () => {
    for (const { url, method, operation } of operations()) {
      if (url === '/healthz' || url === '/readyz') continue;
      expect(Object.keys(operation.responses).some((status) => status.startsWith('4')), `${method} ${url}`).toBe(true);
    }
  });

  it('states "exactly one of expr and graph" and "exactly one of at and points" on every differentiation endpoint', () => {
    const differentiation = ['/eval', '/grad', '/jvp', '/vjp', '/jacobian', '/hessian', '/hvp', '/check'];
    for (const url of differentiation) {
      const post = operations().find((o) => o.url === url && o.method === 'post');
      expect(post && choicesOf(post.operation), url).toEqual([
        ['expr', 'graph'],
        ['at', 'points'],
      ]);
    }
    // /trace needs `at` (one point, no `points`): only the function is a choice there.
    const trace = operations().find((o) => o.url === '/trace');
    expect(trace && choicesOf(trace.operation)).toEqual([['expr', 'graph']]);
    // /grade's `at` and `points` are not alternatives (the reference's point and the check points).
    const grade = operations().find((o) => o.url === '/grade');
    expect(grade && choicesOf(grade.operation)).toEqual([]);
  });

  it('states choices the server enforces: its example is answered, with neither or both of a pair it is refused', async () => {
    const other: Record<string, (example: Record<string, unknown>) => unknown> = {
      expr: () => 'x',
      graph: () => ({ nodes: [{ id: 'y', op: 'sin', args: ['x'] }], output: 'y' }),
      at: (example) => (example.points as unknown[] | undefined)?.[0] ?? { x: 1 },
      points: (example) => [example.at],
    };
    let checked = 0;
    for (const { url, method, operation } of operations()) {
      const example = operation.requestBody?.content['application/json']?.example;
      const choices = choicesOf(operation);
      if (choices.length === 0 || example === undefined) continue;
      const send = (payload: Record<string, unknown>) => app.inject({ method: method.toUpperCase() as 'POST', url, payload });
      expect((await send(example)).statusCode, `${url} example`).toBe(200);
      for (const pair of choices) {
        const [a = '', b = ''] = pair;
        const missing: string = a in example ? b : a;
        const neither = Object.fromEntries(Object.entries(example).filter(([key]) => key !== a && key !== b));
        const both = { ...example, [missing]: other[missing]?.(example) };
        for (const [what, payload] of [['neither', neither], ['both', both]] as const) {
          const answer = await send(payload);
          expect(answer.statusCode, `${url} with ${what} of ${a}, ${b}: ${answer.body}`).toBe(400);
          const problem = answer.json<{ code: string; errors: { path: string }[] }>();
          expect(problem.code).toBe('validation_error');
          expect(pair).toContain(problem.errors[0]?.path);
          checked += 1;
        }
      }
    }
    expect(checked).toBe(2 * (8 * 2 + 3));
  });
});
