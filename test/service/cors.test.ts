// CORS (issue 12): off by default; CORS_ORIGINS lists the web pages (origins) that may call the
// service, or "*". A preflight from an allowed origin is answered 204 with the methods and headers
// a page needs (API keys in Authorization, compressed bodies); another origin gets no CORS headers.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { ConfigError, defaultConfig, loadConfig } from '../../src/service/config.js';
import { buildTestApp } from '../helpers.js';

const PAGE = 'https://course.example';
const OTHER = 'https://elsewhere.example';
const LECTURE = { expr: 'sqrt(x^2 + exp(x^2))', at: { x: 0.7 } };

const preflight = (app: App, origin: string, url = '/grad', requestHeaders = 'content-type, authorization') =>
  app.inject({
    method: 'OPTIONS',
    url,
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': requestHeaders },
  });

const corsHeaders = (headers: Record<string, unknown>) => Object.keys(headers).filter((name) => name.startsWith('access-control-'));

describe('CORS off (the default)', () => {
  let app: App;
  beforeAll(async () => {
    app = buildTestApp();
    await app.ready();
  });
  afterAll(() => app.close());

  it('sends no CORS headers, and does not answer a preflight as CORS', async () => {
    const answer = await app.inject({ method: 'POST', url: '/grad', headers: { origin: PAGE }, payload: LECTURE });
    expect(answer.statusCode).toBe(200);
    expect(corsHeaders(answer.headers)).toEqual([]);
    const res = await preflight(app, PAGE);
    expect(res.statusCode).toBe(404);
    expect(corsHeaders(res.headers)).toEqual([]);
  });
});

describe('CORS_ORIGINS with exact origins', () => {
  let app: App;
  beforeAll(async () => {
    app = buildTestApp({ CORS_ORIGINS: [PAGE, 'http://localhost:8888'], RATE_LIMIT_MAX: 100 });
    await app.ready();
  });
  afterAll(() => app.close());

  it.each([PAGE, 'http://localhost:8888'])('answers a preflight from %s with 204 and what a page needs', async (origin) => {
    const res = await preflight(app, origin);
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(origin);
    expect(String(res.headers.vary)).toMatch(/origin/i);
    expect(String(res.headers['access-control-allow-methods']).split(', ')).toEqual(expect.arrayContaining(['GET', 'POST']));
    const allowed = String(res.headers['access-control-allow-headers']).split(', ');
    expect(allowed).toEqual(expect.arrayContaining(['content-type', 'authorization', 'content-encoding', 'x-request-id']));
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.body).toBe('');
  });

  it('answers a preflight for a route that needs an API key, before any key is asked for', async () => {
    const keyed = buildTestApp({
      CORS_ORIGINS: [PAGE],
      // The key "secret": sha256 of it.
      API_KEYS: 'ci:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b' as never,
    });
    await keyed.ready();
    try {
      const res = await preflight(keyed, PAGE);
      expect(res.statusCode).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe(PAGE);
      // The request itself is still refused without a key, and the page can read why.
      const refused = await keyed.inject({ method: 'POST', url: '/grad', headers: { origin: PAGE }, payload: LECTURE });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['access-control-allow-origin']).toBe(PAGE);
      const answered = await keyed.inject({ method: 'POST', url: '/grad', headers: { origin: PAGE, authorization: 'Bearer secret' }, payload: LECTURE });
      expect(answered.statusCode).toBe(200);
      expect(answered.headers['access-control-allow-origin']).toBe(PAGE);
    } finally {
      await keyed.close();
    }
  });

  it('lets the page read the request id, retry and rate-limit headers of an answer', async () => {
    const res = await app.inject({ method: 'POST', url: '/grad', headers: { origin: PAGE }, payload: LECTURE });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(PAGE);
    const exposed = String(res.headers['access-control-expose-headers']).split(', ');
    expect(exposed).toEqual(expect.arrayContaining(['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']));
    expect(res.headers['x-ratelimit-limit']).toBe('100');
    // Problems too: a page reads why its request failed.
    const bad = await app.inject({ method: 'POST', url: '/grad', headers: { origin: PAGE }, payload: { expr: 'x^', at: { x: 1 } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['access-control-allow-origin']).toBe(PAGE);
  });

  it.each([OTHER, 'https://course.example.evil', 'http://course.example', 'null'])('sends no CORS headers to %s', async (origin) => {
    const res = await preflight(app, origin);
    expect(res.statusCode).toBe(404);
    expect(corsHeaders(res.headers)).toEqual([]);
    const answer = await app.inject({ method: 'POST', url: '/grad', headers: { origin }, payload: LECTURE });
    expect(answer.statusCode).toBe(200);
    expect(corsHeaders(answer.headers)).toEqual([]);
  });

  it('answers requests without an Origin (not from a browser) as before', async () => {
    const res = await app.inject({ method: 'POST', url: '/grad', payload: LECTURE });
    expect(res.statusCode).toBe(200);
    expect(corsHeaders(res.headers)).toEqual([]);
  });
});

describe('CORS_ORIGINS=*', () => {
  let app: App;
  beforeAll(async () => {
    app = buildTestApp({ CORS_ORIGINS: ['*'] });
    await app.ready();
  });
  afterAll(() => app.close());

  it('allows any origin', async () => {
    const res = await preflight(app, OTHER, '/hessian');
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    const answer = await app.inject({ method: 'POST', url: '/grad', headers: { origin: OTHER }, payload: LECTURE });
    expect(answer.headers['access-control-allow-origin']).toBe('*');
    expect(String(answer.headers['access-control-expose-headers'])).toContain('x-request-id');
  });
});

describe('the CORS_ORIGINS setting', () => {
  it('reads comma-separated origins, "*" or nothing', () => {
    expect(loadConfig({}).CORS_ORIGINS).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: ' https://a.example, http://localhost:8888 ' }).CORS_ORIGINS).toEqual(['https://a.example', 'http://localhost:8888']);
    expect(loadConfig({ CORS_ORIGINS: '*' }).CORS_ORIGINS).toEqual(['*']);
    expect(defaultConfig({ CORS_ORIGINS: [PAGE] }).CORS_ORIGINS).toEqual([PAGE]);
  });

  it.each(['https://a.example/', 'https://a.example/page', 'a.example', 'ftp://a.example', '*, https://a.example', 'https://*.example'])(
    'refuses %s, naming the variable',
    (value) => {
      expect(() => loadConfig({ CORS_ORIGINS: value })).toThrow(ConfigError);
      expect(() => loadConfig({ CORS_ORIGINS: value })).toThrow(/CORS_ORIGINS/);
    },
  );
});
