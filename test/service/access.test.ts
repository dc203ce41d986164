// Access (issue 9): optional API keys, configured as SHA-256 hashes, for every computing endpoint;
// /healthz and /readyz always open; /metrics behind its own keys or on its own port; rate limits
// per key; and health, readiness and metrics never rate-limited.

import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { accessRule, bearerToken, KeyRing, sha256Hex } from '../../src/service/access.js';
import type { App } from '../../src/service/app.js';
import { listenMetrics } from '../../src/service/metrics-server.js';
import { buildTestApp } from '../helpers.js';

const CI_KEY = 'ci-3f8a2c0e9b7d4e1f';
const ALICE_KEY = 'alice-b91e6d2a47c05f38';
const METRICS_KEY = 'prometheus-5a0c7e1d';
const API_KEYS = `ci:${sha256Hex(CI_KEY)},alice:${sha256Hex(ALICE_KEY)}`;
const grad = { expr: 'x^2', at: { x: 3 } };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(overrides: Record<string, unknown>): Promise<App> {
  app = buildTestApp(overrides as never);
  await app.ready();
  return app;
}

describe('API keys', () => {
  it('keys are hashed, not stored: sha256Hex is the hex SHA-256 an operator puts in API_KEYS', () => {
    expect(sha256Hex('abc')).toBe(createHash('sha256').update('abc').digest('hex'));
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('are off by default: computing endpoints answer without a key', async () => {
    const app = await start({});
    const res = await app.inject({ method: 'POST', url: '/grad', payload: grad });
    expect(res.statusCode).toBe(200);
  });

  it('answer a computing request without a key with 401 unauthorized, WWW-Authenticate: Bearer and a problem', async () => {
    const app = await start({ API_KEYS });
    const res = await app.inject({ method: 'POST', url: '/grad', payload: grad });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="adjoint"');
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 401, code: 'unauthorized', type: 'urn:adjoint:problem:unauthorized' });
    expect(res.json().detail).toMatch(/Authorization: Bearer/);
  });

  it('answer a wrong key, or another scheme, with 401 and error="invalid_token"', async () => {
    const app = await start({ API_KEYS });
    for (const authorization of [`Bearer ${CI_KEY}x`, `Bearer ${sha256Hex(CI_KEY)}`, `Basic ${Buffer.from(`ci:${CI_KEY}`).toString('base64')}`, 'Bearer']) {
      const res = await app.inject({ method: 'POST', url: '/grad', headers: { authorization }, payload: grad });
      expect(res.statusCode, authorization).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="adjoint", error="invalid_token"');
      expect(res.json().code).toBe('unauthorized');
    }
  });

  it('let each configured key in, and tell the handlers which (request.apiKeyId)', async () => {
    const app = buildTestApp({ API_KEYS } as never);
    app.get('/test/who', async (request) => ({ apiKeyId: request.apiKeyId ?? null }));
    await app.ready();
    try {
      expect((await app.inject({ method: 'POST', url: '/grad', headers: bearer(CI_KEY), payload: grad })).json()).toEqual({
        value: 9,
        gradient: { x: 6 },
      });
      expect((await app.inject({ url: '/test/who', headers: bearer(CI_KEY) })).json()).toEqual({ apiKeyId: 'ci' });
      expect((await app.inject({ url: '/test/who', headers: { authorization: `bearer  ${ALICE_KEY}` } })).json()).toEqual({ apiKeyId: 'alice' });
    } finally {
      await app.close();
    }
  });

  it('guard every computing endpoint and unknown paths, before the body is read', async () => {
    const app = await start({ API_KEYS });
    for (const url of ['/eval', '/grad', '/jvp', '/vjp', '/jacobian', '/hessian', '/check', '/trace', '/analyze', '/graph', '/grade', '/probe']) {
      const res = await app.inject({ method: 'POST', url, payload: '{"not json', headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, url).toBe(401);
    }
    for (const url of ['/ops', '/no/such/route']) expect((await app.inject({ url })).statusCode, url).toBe(401);
  });

  it('leave /healthz, /readyz, the docs, the OpenAPI document and the playground page open', async () => {
    const app = await start({ API_KEYS });
    for (const url of ['/healthz', '/readyz', '/openapi.yaml', '/docs', '/docs/static/index.css', '/', '/playground/playground.js', '/playground/probing.js']) {
      expect((await app.inject({ url })).statusCode, url).toBe(200);
    }
    // A wrong key on an open route is not held against it.
    expect((await app.inject({ url: '/healthz', headers: bearer('wrong') })).statusCode).toBe(200);
  });

  it('compare the presented key with every configured hash (no early exit on a match)', () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ id: `k${i}`, sha256: sha256Hex(`key-${i}`) }));
    const ring = new KeyRing(entries);
    expect(ring.identify('key-0')).toBe('k0');
    expect(ring.identify('key-4')).toBe('k4');
    expect(ring.identify('key-5')).toBeUndefined();
    // Any length is hashed first, so it cannot fail timingSafeEqual's length check.
    expect(ring.identify('x'.repeat(10_000))).toBeUndefined();
    expect(ring.identify('')).toBeUndefined();
  });

  it('read the bearer token of an Authorization header and nothing else', () => {
    expect(bearerToken('Bearer abc.DEF-_~+/=')).toBe('abc.DEF-_~+/=');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
  });
});

describe('/metrics access', () => {
  it('is open by default', async () => {
    const app = await start({ API_KEYS });
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
  });

  it('needs a metrics key when METRICS_API_KEYS is set; an API key does not open it', async () => {
    const app = await start({ API_KEYS, METRICS_API_KEYS: `prometheus:${sha256Hex(METRICS_KEY)}` });
    const without = await app.inject({ url: '/metrics' });
    expect(without.statusCode).toBe(401);
    expect(without.headers['www-authenticate']).toBe('Bearer realm="adjoint"');
    expect(without.json().detail).toMatch(/METRICS_API_KEYS/);
    expect((await app.inject({ url: '/metrics', headers: bearer(CI_KEY) })).statusCode).toBe(401);
    const scraped = await app.inject({ url: '/metrics', headers: bearer(METRICS_KEY) });
    expect(scraped.statusCode).toBe(200);
    expect(scraped.body).toContain('http_requests_total');
    // A metrics key is not an API key either.
    expect((await app.inject({ method: 'POST', url: '/grad', headers: bearer(METRICS_KEY), payload: grad })).statusCode).toBe(401);
  });

  it('is served on METRICS_PORT only, when that is set', async () => {
    const app = await start({ METRICS_PORT: 9464 });
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(404);
    const server = await listenMetrics(app.metrics, { port: 0, host: '127.0.0.1' });
    try {
      const res = await fetch(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      expect(await res.text()).toContain('process_cpu_user_seconds_total');
      expect((await fetch(`${server.url}/grad`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('on its own port, still needs a metrics key when METRICS_API_KEYS is set', async () => {
    const app = await start({});
    const keys = [{ id: 'prometheus', sha256: sha256Hex(METRICS_KEY) }];
    const server = await listenMetrics(app.metrics, { port: 0, host: '127.0.0.1', keys });
    try {
      expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${server.url}/metrics`, { headers: bearer(METRICS_KEY) })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('rate limits with access', () => {
  it('are off by default (RATE_LIMIT_MAX=0): no 429 and no rate-limit headers', async () => {
    const app = await start({});
    for (let i = 0; i < 50; i++) {
      const res = await app.inject({ url: '/ops' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    }
  });

  it('never apply to /healthz, /readyz and /metrics (issue 9: 6,000 GET /ops, then health checks answered 429)', async () => {
    const app = await start({ RATE_LIMIT_MAX: 5 });
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await app.inject({ url: '/ops' })).statusCode);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    for (let i = 0; i < 10; i++) {
      for (const url of ['/healthz', '/readyz', '/metrics']) {
        const res = await app.inject({ url });
        expect(res.statusCode, url).toBe(200);
        expect(res.headers['x-ratelimit-limit'], url).toBeUndefined();
      }
    }
  });

  it('count a client with an API key by its key, not its address', async () => {
    const app = await start({ API_KEYS, RATE_LIMIT_MAX: 2, TRUST_PROXY: true });
    const call = (key: string, from: string) =>
      app.inject({ url: '/ops', headers: { ...bearer(key), 'x-forwarded-for': from } }).then((res) => res.statusCode);
    // One key from two addresses shares one allowance...
    expect([await call(CI_KEY, '203.0.113.1'), await call(CI_KEY, '203.0.113.2'), await call(CI_KEY, '203.0.113.3')]).toEqual([200, 200, 429]);
    // ...and another key from the same address has its own.
    expect([await call(ALICE_KEY, '203.0.113.1'), await call(ALICE_KEY, '203.0.113.1'), await call(ALICE_KEY, '203.0.113.1')]).toEqual([200, 200, 429]);
  });

  it('count requests without a valid key by address, so failed keys are rate-limited too', async () => {
    const app = await start({ API_KEYS, RATE_LIMIT_MAX: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await app.inject({ url: '/ops', headers: bearer(`guess-${i}`) })).statusCode);
    expect(statuses).toEqual([401, 401, 429]);
  });
});

describe('the OpenAPI document', () => {
  it('has a bearer scheme, security on every computing operation (with its 401), and none on the open ones', async () => {
    const app = await start({});
    const spec = parse(app.swagger({ yaml: true })) as {
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
    };
    expect(spec.components.securitySchemes.apiKeyBearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(spec.components.securitySchemes.metricsKeyBearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [url, operations] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const rule = accessRule(url);
        if (rule === 'open') {
          expect(operation.security, `${method} ${url}`).toEqual([]);
          continue;
        }
        const scheme = rule === 'metrics' ? 'metricsKeyBearer' : 'apiKeyBearer';
        // The key, or none: keys are asked for only when the deployment configures them.
        expect(operation.security, `${method} ${url}`).toEqual([{ [scheme]: [] }, {}]);
        expect(operation.responses['401'], `${method} ${url}`).toBeDefined();
      }
    }
    expect(spec.paths['/grad']?.post?.security).toEqual([{ apiKeyBearer: [] }, {}]);
    expect(spec.paths['/healthz']?.get?.security).toEqual([]);
  });
});
