// With REDIS_URL, the replicas share each client's PROBE_CLIENT_QUERIES_PER_MINUTE (issue 14: the
// probe's outbound limits hold across replicas): what one replica's probes reserved, another's
// see, and while Redis does not answer URL probes are refused (503).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { RedisQuotas } from '../../src/probe/redis-quotas.js';
import { buildTestApp } from '../helpers.js';
import { redisUnavailable, startRedis, type RedisServer } from '../jobs/redis-server.js';
import { serveModel, type FakeModel } from './fake-model.js';

const unavailable = redisUnavailable();
if (unavailable !== undefined) console.warn(`\n*** SKIPPED: the shared probe quotas' tests (test/probe/redis-quotas.test.ts): ${unavailable} ***\n`);

const PER_MINUTE = 10;

describe.skipIf(unavailable !== undefined)('probe quotas shared by replicas through Redis', () => {
  let redis: RedisServer;
  let model: FakeModel;
  const apps: App[] = [];
  const replica = (): App => {
    const app = buildTestApp({ REDIS_URL: redis.url, PROBE_ALLOWED_ORIGINS: [model.origin], PROBE_CLIENT_QUERIES_PER_MINUTE: PER_MINUTE, MAX_EVENT_LOOP_DELAY_MS: 0 });
    apps.push(app);
    return app;
  };
  // Central differences in 3 coordinates: 2·3 + 1 = 7 queries planned and sent; two such probes
  // do not fit one client's 10 a minute.
  const probe = (app: App, client: string) =>
    app.inject({
      method: 'POST',
      url: '/probe',
      remoteAddress: client,
      payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: [0.1, 0.2, 0.3], method: 'central' },
    });

  beforeAll(async () => {
    redis = await startRedis();
    model = await serveModel((input) => ({ json: { logit: (input as number[]).reduce((sum, x) => sum + x * x, 0) } }));
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await model.close();
    await redis.stop();
  });

  it('a client’s queries on one replica count on the other', async () => {
    const [first, second] = [replica(), replica()];
    const sent = await probe(first, '203.0.113.7');
    expect(sent.statusCode, sent.body).toBe(200);
    const queries = (JSON.parse(sent.body) as { queries: number }).queries;
    expect(queries).toBe(7);
    const refused = await probe(second, '203.0.113.7');
    expect(refused.statusCode, refused.body).toBe(429);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'rate_limited', detail: expect.stringContaining(`sent or reserved ${queries} of the ${PER_MINUTE} queries`) });
    expect(refused.headers['retry-after']).toBeDefined();
    // Another client has a window of its own.
    expect((await probe(second, '198.51.100.9')).statusCode).toBe(200);
  });

  it('gives back reserved queries never sent, and counts retries beyond a reservation', async () => {
    const [one, two] = [new RedisQuotas(redis.url, 10), new RedisQuotas(redis.url, 10)];
    try {
      const first = await one.admit('client-r', 8);
      expect(first.ok).toBe(true);
      expect(await two.admit('client-r', 5)).toMatchObject({ ok: false, used: 8, left: 2 });
      if (first.ok) one.refund(first.reservation, 5);
      if (first.ok) expect(one.take(first.reservation, 1)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // 8 − 5 + 1 = 4 used: 6 more fit, 7 do not.
      expect(await two.admit('client-r', 7)).toMatchObject({ ok: false, used: 4 });
      expect((await two.admit('client-r', 6)).ok).toBe(true);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('refuses URL probes with 503 while Redis does not answer, rather than letting them through', async () => {
    const app = replica();
    await app.ready();
    await redis.stop();
    const refused = await probe(app, '192.0.2.44');
    expect(refused.statusCode, refused.body).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'overloaded' });
    expect(refused.headers['retry-after']).toBe('5');
  });
});
