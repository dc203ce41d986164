// GET /healthz, /readyz, /metrics, /docs and /openapi.yaml (README "Operational endpoints").

import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

describe('operational endpoints', () => {
  let app: App;

  beforeEach(async () => {
    app = buildTestApp();
    await app.ready();
  });
  afterEach(() => app.close());

  it('GET /healthz says the process is alive', async () => {
    const res = await request(app.server).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz says ready, and 503 shutting_down once draining', async () => {
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });

    app.lifecycle.drain();
    const draining = await app.inject({ url: '/readyz' });
    expect(draining.statusCode).toBe(503);
    expect(draining.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(draining.headers['retry-after']).toBe('1');
    expect(draining.json()).toMatchObject({ status: 503, code: 'shutting_down' });
  });

  it('GET /metrics serves Prometheus text with process metrics and per-route request metrics', async () => {
    await request(app.server).get('/healthz');
    await request(app.server).get('/healthz');
    await request(app.server).get('/not/here');

    const res = await request(app.server).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(res.text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
    expect(res.text).toContain('http_requests_total{method="GET",route="/healthz",status="200"} 2');
    expect(res.text).toContain('http_requests_total{method="GET",route="not_found",status="404"} 1');
    expect(res.text).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} 2/);
    expect(res.text).toMatch(/http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/healthz",status="200"\} \d/);
  });

  it('keeps each app’s metrics apart', async () => {
    const other = buildTestApp();
    try {
      await other.ready();
      await other.inject({ url: '/readyz' });
      const mine = await app.inject({ url: '/metrics' });
      const theirs = await other.inject({ url: '/metrics' });
      expect(mine.body).not.toContain('route="/readyz"');
      expect(theirs.body).toContain('http_requests_total{method="GET",route="/readyz",status="200"} 1');
    } finally {
      await other.close();
    }
  });

  it('GET /docs serves the Swagger UI over this spec', async () => {
    let res = await request(app.server).get('/docs');
    if (res.status >= 300 && res.status < 400) res = await request(app.server).get(res.headers.location ?? '');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('swagger-ui');

    const page = await request(app.server).get('/docs/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('swagger-initializer.js');

    const spec = await request(app.server).get('/docs/json');
    expect(spec.status).toBe(200);
    expect(spec.body).toMatchObject({ openapi: '3.1.0', info: { title: 'Adjoint' } });
  });

  it('GET /openapi.yaml serves the OpenAPI 3.1 document of the running app', async () => {
    const res = await request(app.server).get('/openapi.yaml');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/yaml; charset=utf-8');
    const spec = parse(res.text) as { openapi: string; info: { title: string }; paths: Record<string, unknown> };
    expect(spec.openapi).toBe('3.1.0');
    expect(spec.info.title).toBe('Adjoint');
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz', '/metrics', '/openapi.yaml']));
    expect(Object.keys(spec.paths).filter((path) => path.startsWith('/docs'))).toEqual([]);
  });
});
