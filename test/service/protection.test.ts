// Protection of the service as a whole: per-client rate limits (429) and refusing new work while
// the event loop is delayed (503 overloaded), both as problem+json with Retry-After.

import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers.js';

describe('rate limiting', () => {
  it('answers 429 rate_limited with Retry-After past RATE_LIMIT_MAX requests per window', async () => {
    const app = buildTestApp({ RATE_LIMIT_MAX: 3, RATE_LIMIT_WINDOW_MS: 60_000 });
    await app.ready();
    try {
      const statuses: number[] = [];
      let last;
      for (let i = 0; i < 4; i++) {
        last = await app.inject({ method: 'POST', url: '/grad', payload: { expr: 'x^2', at: { x: i } } });
        statuses.push(last.statusCode);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(last!.headers['content-type']).toContain('application/problem+json');
      expect(last!.headers['retry-after']).toBeDefined();
      expect(last!.json()).toMatchObject({ status: 429, code: 'rate_limited' });
    } finally {
      await app.close();
    }
  });

  it('counts each client behind a trusted proxy by its forwarded address', async () => {
    const app = buildTestApp({ RATE_LIMIT_MAX: 1, TRUST_PROXY: true });
    await app.ready();
    try {
      const from = (client: string) => app.inject({ method: 'GET', url: '/ops', headers: { 'x-forwarded-for': client } });
      expect((await from('203.0.113.1')).statusCode).toBe(200);
      expect((await from('203.0.113.2')).statusCode).toBe(200);
      expect((await from('203.0.113.1')).statusCode).toBe(429);
    } finally {
      await app.close();
    }
  });

  it('is off with RATE_LIMIT_MAX=0', async () => {
    const app = buildTestApp({ RATE_LIMIT_MAX: 0 });
    await app.ready();
    try {
      for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('back-pressure', () => {
  it('refuses new work with 503 overloaded while the event loop is delayed; liveness still answers', async () => {
    const app = buildTestApp({ MAX_EVENT_LOOP_DELAY_MS: 20 });
    await app.ready();
    try {
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        // Block the loop, as a runaway synchronous computation would.
      }
      // The sampler, overdue, runs first and records the delay.
      await new Promise((r) => setTimeout(r, 50));
      const work = await app.inject({ method: 'POST', url: '/grad', payload: { expr: 'x^2', at: { x: 1 } } });
      expect(work.statusCode).toBe(503);
      expect(work.json()).toMatchObject({ code: 'overloaded' });
      expect(work.headers['retry-after']).toBe('5');
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
