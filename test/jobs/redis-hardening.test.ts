// The Redis backend's promises (issue 20, items 5 and 6) against a real redis-server: concurrent
// retries of one Idempotency-Key make one job and another body gets 422 every time; a job's
// request lives apart from its state and is deleted when it finishes; a finished job deleted by
// its client frees its answer and its bytes; each client's share of the store; a cancelled grading
// stays cancelled; and a Redis restart of a few seconds neither ends an event stream without a
// final event nor runs a job twice.

import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { sha256Hex } from '../../src/service/access.js';
import type { Config } from '../../src/service/config.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from '../probe/fake-model.js';
import { BullMqJobs } from '../../src/jobs/bullmq.js';
import { cancelWhileRunning, longGrading, read, STORE_SETTINGS, stubbornWork, submit, waitFor } from './jobs-client.js';
import { redisUnavailable, startRedis, type RedisServer } from './redis-server.js';

const unavailable = redisUnavailable();
if (unavailable !== undefined) console.warn(`\n*** SKIPPED: test/jobs/redis-hardening.test.ts: ${unavailable} ***\n`);

const LECTURE_F = { expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } };
const KEYS = [{ id: 'alice', sha256: sha256Hex('alice-key') }, { id: 'bob', sha256: sha256Hex('bob-key') }];
const alice = { authorization: 'Bearer alice-key' };
const bob = { authorization: 'Bearer bob-key' };

describe.skipIf(unavailable !== undefined)('jobs on Redis that mean what they say', () => {
  let redis: RedisServer;
  let inspect: Redis;
  const apps: App[] = [];
  const models: FakeModel[] = [];

  async function replica(overrides: Partial<Config> = {}): Promise<App> {
    // Several replicas share this one process and compute on its event loop (WORKERS=0): its
    // loop-delay guard would answer one replica's reads 503 while another computes.
    const app = buildTestApp({ REDIS_URL: redis.url, JOBS_STALL_INTERVAL_MS: 12_000, MAX_EVENT_LOOP_DELAY_MS: 0, ...overrides });
    apps.push(app);
    await app.ready();
    return app;
  }

  beforeAll(async () => {
    redis = await startRedis({ persist: true });
    inspect = new Redis(redis.url, { maxRetriesPerRequest: null });
    // It reconnects by itself after the restart below.
    inspect.on('error', () => undefined);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(models.splice(0).map((model) => model.close()));
    await inspect.flushall();
  });
  afterAll(async () => {
    inspect?.disconnect();
    await redis?.stop();
  });

  it('eight concurrent retries of a 1 MB body with one Idempotency-Key, on two replicas, make one job; another body gets 422 every time', async () => {
    const a = await replica();
    const b = await replica();
    const x = Array.from({ length: 60_000 }, (_, i) => Math.sin(i));
    const body = { kind: 'compute', endpoint: 'grad', request: { expr: 'sum(x * x)', at: { x } } };
    expect(JSON.stringify(body).length).toBeGreaterThan(1_000_000);
    const racing = await Promise.all([a, b, a, b, a, b, a, b].map((app) => submit(app, body, { 'idempotency-key': 'race' })));
    expect(racing.map((r) => r.status)).toEqual(Array(8).fill(202));
    expect(new Set(racing.map((r) => r.job.id)).size).toBe(1);
    expect(racing.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    const other = { ...body, endpoint: 'eval' };
    const conflicts = await Promise.all([a, b, a].map((app) => submit(app, other, { 'idempotency-key': 'race' })));
    expect(conflicts.map((r) => r.status), conflicts.map((r) => r.text).join("\n")).toEqual([422, 422, 422]);
    expect(conflicts[0]!.job).toMatchObject({ code: 'idempotency_conflict' });
    expect((await waitFor(a, racing[0]!.job.id, { timeoutMs: 60_000 })).job.state).toBe('succeeded');
    expect((await submit(b, other, { 'idempotency-key': 'race' })).status).toBe(422);
  }, 90_000);

  it('a job’s request is stored apart from its state and deleted when it finishes; DELETE of the finished job frees its answer and its bytes', async () => {
    const a = await replica();
    const { job } = await submit(a, { kind: 'compute', endpoint: 'grad', request: LECTURE_F });
    // BullMQ's job holds who submitted it, never the request.
    const data = await inspect.hget(`adjoint:jobs-compute:${job.id}`, 'data');
    expect(data).not.toContain('sqrt');
    const done = await waitFor(a, job.id);
    expect(done.job.state).toBe('succeeded');
    expect(await inspect.exists(`adjoint:jobs:body:${job.id}`)).toBe(0);
    const answer = await inspect.get(`adjoint:jobs:answer:${job.id}`);
    expect(answer).toBe(JSON.stringify(done.job.result));
    expect(Number(await inspect.hget('adjoint:jobs:held', 'b'))).toBe(Buffer.byteLength(answer!));
    const deleted = await a.inject({ method: 'DELETE', url: `/jobs/${job.id}`, headers: { 'content-type': 'application/json' } });
    expect(deleted.statusCode).toBe(200);
    expect((await read(a, job.id)).status).toBe(404);
    expect(await inspect.exists(`adjoint:jobs:answer:${job.id}`)).toBe(0);
    expect(Number((await inspect.hget('adjoint:jobs:held', 'b')) ?? 0)).toBe(0);
  });

  it('one client past its share of bytes gets 429 on every replica; another client does not', async () => {
    const a = await replica({ API_KEYS: KEYS, JOBS_MAX_BYTES_PER_CLIENT: 12_000 });
    const b = await replica({ API_KEYS: KEYS, JOBS_MAX_BYTES_PER_CLIENT: 12_000 });
    const x = Array.from({ length: 300 }, (_, i) => i / 7);
    const body = { kind: 'compute', endpoint: 'grad', request: { expr: 'sum(x * x)', at: { x } } };
    const kept: string[] = [];
    let status = 202;
    while (status === 202 && kept.length < 10) {
      const submitted = await submit(kept.length % 2 === 0 ? a : b, body, alice);
      status = submitted.status;
      if (status === 202) kept.push((await waitFor(a, submitted.job.id, { headers: alice })).job.id);
    }
    expect(status).toBe(429);
    expect((await submit(b, body, alice)).status).toBe(429);
    expect((await submit(a, body, bob)).status).toBe(202);
    expect((await b.inject({ method: 'DELETE', url: `/jobs/${kept[0]}`, headers: alice })).statusCode).toBe(200);
    expect((await submit(a, body, alice)).status).toBe(202);
  }, 60_000);

  it('many small submissions at once whose answers would pass the client’s share: the answers that do not fit are dropped (the job fails 429), another client is not shut out', async () => {
    const a = await replica({ API_KEYS: KEYS, JOBS_MAX_BYTES_PER_CLIENT: 20_000 });
    const b = await replica({ API_KEYS: KEYS, JOBS_MAX_BYTES_PER_CLIENT: 20_000 });
    // Small bodies (~50 bytes), ~7.6 kB answers (400 numbers): all ten are accepted, one or two answers fit in 20 kB.
    const body = { kind: 'compute', endpoint: 'eval', request: { expr: 'sin(eye(20) + x)', at: { x: 0.1 } } };
    const submitted = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(i % 2 === 0 ? a : b, body, alice)));
    expect(submitted.map((s) => s.status)).toEqual(Array(10).fill(202));
    const done = await Promise.all(submitted.map((s) => waitFor(a, s.job.id, { headers: alice, timeoutMs: 60_000 })));
    const kept = done.filter((d) => d.job.state === 'succeeded');
    const dropped = done.filter((d) => d.job.state === 'failed');
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThanOrEqual(2);
    expect(dropped.length).toBe(10 - kept.length);
    expect(dropped[0]!.job.problem).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(JSON.stringify(dropped[0]!.job.problem)).toContain('JOBS_MAX_BYTES_PER_CLIENT');
    // Bob's answer is kept.
    const bobs = await submit(b, body, bob);
    expect(bobs.status).toBe(202);
    expect((await waitFor(a, bobs.job.id, { headers: bob })).job.state).toBe('succeeded');
  }, 90_000);

  it('a grading cancelled while it runs stays cancelled after its work would have finished', async () => {
    const a = await replica({ WORKERS: 1 });
    const request = longGrading();
    const { job } = await submit(a, { kind: 'grade', request });
    await waitFor(a, job.id, { until: (j) => j.state !== 'queued', timeoutMs: 30_000 });
    const cancelled = await a.inject({ method: 'DELETE', url: `/jobs/${job.id}` });
    expect(cancelled.json()).toMatchObject({ state: 'cancelled' });
    expect((await a.inject({ method: 'POST', url: '/grade', payload: request })).statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const final = await read(a, job.id);
    expect(final.job.state).toBe('cancelled');
    expect(final.job.result).toBeUndefined();
  }, 60_000);

  it('six concurrent retries of a 10 MB submission on two replicas make one job, however long storing the body takes', async () => {
    const backends = [0, 1].map(() => new BullMqJobs(redis.url, stubbornWork(60_000), { ...STORE_SETTINGS, stallIntervalMs: 12_000 }));
    try {
      const request = { blob: 'x'.repeat(10_000_000) };
      const submissions = Array.from({ length: 6 }, (_, i) => backends[i % 2]!.submit({ kind: 'grade', request, owner: undefined, client: 'ip:127.0.0.1', idempotencyKey: 'big' }));
      const submitted = await Promise.all(submissions);
      expect(new Set(submitted.map((s) => s.view.id)).size).toBe(1);
      expect(submitted.filter((s) => s.created)).toHaveLength(1);
      await expect(backends[0]!.submit({ kind: 'grade', request: { blob: 'y' }, owner: undefined, client: 'ip:127.0.0.1', idempotencyKey: 'big' })).rejects.toMatchObject({ status: 422 });
    } finally {
      await Promise.all(backends.map((backend) => backend.close()));
    }
  }, 60_000);

  it('a job cancelled while its work runs on, ignoring the signal, stays cancelled when the work answers (never `succeeded`)', async () => {
    const backend = new BullMqJobs(redis.url, stubbornWork(1500), { ...STORE_SETTINGS, stallIntervalMs: 12_000 });
    try {
      const { cancelled, later } = await cancelWhileRunning(backend, 1500);
      expect(cancelled?.state).toBe('cancelled');
      expect(later?.state).toBe('cancelled');
      expect(later?.result).toBeUndefined();
    } finally {
      await backend.close();
    }
  }, 30_000);

  it('Redis restarted (4 s down) while a probe job runs: its event stream beats on and ends with the answer, and no query is sent twice', async () => {
    const model = await serveModel((input) => ({ json: { logit: (input as number[]).reduce((sum, x) => sum + Math.sin(x), 0) }, delayMs: 100 }));
    models.push(model);
    const a = await replica({ PROBE_ALLOWED_ORIGINS: [model.origin] });
    const base = await a.listen({ port: 0, host: '127.0.0.1' });
    const request = { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: [0.3, -0.2, 0.5], method: 'spsa', budget: 81, seed: 3, concurrency: 1 };
    const { job } = await submit(a, { kind: 'probe', request });
    const response = await fetch(`${base}/jobs/${job.id}/events`);
    expect(response.status).toBe(200);
    const blocks: { at: number; text: string }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of response.body!) {
        buffered += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          blocks.push({ at: Date.now(), text: buffered.slice(0, end) });
          buffered = buffered.slice(end + 2);
        }
      }
    })();
    await waitFor(a, job.id, { until: (j) => (j.progress.queries ?? 0) >= 10, timeoutMs: 30_000 });
    const downAt = Date.now();
    await redis.restart(4000);
    const upAt = Date.now();
    await reading;
    const during = blocks.filter((b) => b.at > downAt + 500 && b.at < upAt);
    expect(during.filter((b) => b.text === ': heartbeat').length).toBeGreaterThanOrEqual(2);
    const last = blocks.at(-1)!.text;
    expect(last.split('\n')[0]).toBe('event: succeeded');
    const answer = JSON.parse(last.split('\n')[1]!.slice('data: '.length)) as { result: { queries: number } };
    console.info(`probe job through a 4 s Redis restart: ${answer.result.queries} queries planned and answered, ${model.requests} received by the model`);
    expect(model.requests).toBe(answer.result.queries);
  }, 90_000);
});
