// The Redis backend (BullMQ) against a real redis-server started here: replicas sharing the queue,
// progress and answers read from any replica, cancellation across replicas, idempotency keys,
// result expiry, and a replica killed (SIGKILL) mid-job whose job another replica finishes with
// the synchronous endpoint's answer.

import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/service/config.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from '../probe/fake-model.js';
import { answerBytes, read, submit, waitFor, type JobBody } from './jobs-client.js';
import { redisUnavailable, startRedis, type RedisServer } from './redis-server.js';

const unavailable = redisUnavailable();
if (unavailable !== undefined) {
  console.warn(`\n*** SKIPPED: the Redis job backend's tests (test/jobs/bullmq.test.ts): ${unavailable} ***\n`);
}

const STALL_MS = 2000;

async function sineModel(delayMs: number): Promise<FakeModel> {
  return serveModel((input) => ({ json: { logit: (input as number[]).reduce((sum, x) => sum + Math.sin(x), 0) }, delayMs }));
}

function probeRequest(model: FakeModel, extra: Record<string, unknown> = {}) {
  return { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: [0.3, -0.2, 0.5], method: 'spsa', budget: 61, seed: 11, ...extra };
}

const LECTURE_F = { expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } };

describe.skipIf(unavailable !== undefined)('jobs on Redis (BullMQ)', () => {
  let redis: RedisServer;
  let model: FakeModel;
  const apps: App[] = [];

  /** A replica: an app of its own on the shared Redis. */
  async function replica(overrides: Partial<Config> = {}): Promise<App> {
    const app = buildTestApp({ REDIS_URL: redis.url, PROBE_ALLOWED_ORIGINS: [model.origin], JOBS_STALL_INTERVAL_MS: STALL_MS, ...overrides });
    apps.push(app);
    await app.ready();
    return app;
  }

  beforeAll(async () => {
    redis = await startRedis();
    model = await sineModel(20);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await model?.close();
    await redis?.stop();
  });

  it('two replicas share the queue: a job submitted to one is read from the other, with the synchronous answer', async () => {
    const a = await replica();
    const b = await replica();
    const sync = await b.inject({ method: 'POST', url: '/grad', payload: LECTURE_F });
    const submitted = await submit(a, { kind: 'compute', endpoint: 'grad', request: LECTURE_F });
    expect(submitted.status).toBe(202);
    expect(Buffer.from(submitted.job.id, 'base64url')).toHaveLength(16);
    const done = await waitFor(b, submitted.job.id);
    expect(done.job.state).toBe('succeeded');
    expect(answerBytes(done.text, 'result')).toBe(sync.body);
    const failed = await waitFor(a, (await submit(b, { kind: 'compute', endpoint: 'grad', request: { expr: 'sin(x', at: { x: 1 } } })).job.id);
    expect(failed.job.state).toBe('failed');
    expect(answerBytes(failed.text, 'problem')).toBe((await a.inject({ method: 'POST', url: '/grad', payload: { expr: 'sin(x', at: { x: 1 } } })).body);
  });

  it('a probe job’s progress lives in Redis: another replica sees its queries grow, then the answer POST /probe gives', async () => {
    const a = await replica();
    const b = await replica();
    const request = probeRequest(model, { budget: 121, concurrency: 2 });
    const { job } = await submit(a, { kind: 'probe', request });
    const seen: number[] = [];
    const done = await waitFor(b, job.id, {
      until: (j) => {
        if (j.state === 'running') seen.push(j.progress.queries ?? 0);
        return ['succeeded', 'failed', 'cancelled'].includes(j.state);
      },
    });
    expect(done.job.state).toBe('succeeded');
    const growing = seen.filter((q, i) => i === 0 || q > seen[i - 1]!);
    expect(growing.length).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    const planned = 2 * Math.floor(0.45 * 120) + 1;
    expect(done.job.progress).toMatchObject({ done: planned, total: planned });
    const sync = await a.inject({ method: 'POST', url: '/probe', payload: request });
    expect(answerBytes(done.text, 'result')).toBe(sync.body);
  });

  it('cancelled on one replica, a job running on another stops sending queries', async () => {
    const a = await replica();
    const b = await replica();
    const { job } = await submit(a, { kind: 'probe', request: probeRequest(model, { budget: 3000, concurrency: 2 }) });
    await waitFor(b, job.id, { until: (j) => (j.progress.queries ?? 0) >= 6 });
    const cancelled = await b.inject({ method: 'DELETE', url: `/jobs/${job.id}` });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json<JobBody>().state).toBe('cancelled');
    // The running replica looks for the cancel every 250 ms; queries in flight then may still land.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const after = model.requests;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(model.requests).toBe(after);
    const final = await waitFor(a, job.id);
    expect(final.job.state).toBe('cancelled');
    expect(final.job.progress.queries ?? 0).toBeLessThan(3000 * 0.2);
  });

  it('an Idempotency-Key names one job across replicas; another body with it is refused', async () => {
    const a = await replica();
    const b = await replica();
    const body = { kind: 'compute', endpoint: 'hessian', request: LECTURE_F };
    const first = await submit(a, body, { 'idempotency-key': 'once' });
    const again = await submit(b, body, { 'idempotency-key': 'once' });
    expect(again.job.id).toBe(first.job.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const other = await submit(b, { ...body, endpoint: 'grad' }, { 'idempotency-key': 'once' });
    expect(other.status).toBe(422);
    expect(other.job).toMatchObject({ code: 'idempotency_conflict' });
    // Submitted at the same moment to both replicas: still one job.
    const racing = await Promise.all([a, b, a, b, a, b].map((app) => submit(app, body, { 'idempotency-key': 'race' })));
    expect(new Set(racing.map((r) => r.job.id)).size).toBe(1);
    expect(racing.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
  });

  it('a finished job is removed JOBS_RESULT_TTL_SECONDS after it finished (404 from every replica)', async () => {
    const a = await replica({ JOBS_RESULT_TTL_SECONDS: 1 });
    const b = await replica({ JOBS_RESULT_TTL_SECONDS: 1 });
    const { job } = await submit(a, { kind: 'compute', endpoint: 'eval', request: LECTURE_F });
    expect((await waitFor(b, job.id)).job.state).toBe('succeeded');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await read(a, job.id)).status).toBe(404);
    expect((await read(b, job.id)).status).toBe(404);
  });

  it('a job is visible only to the API key that submitted it, on every replica', async () => {
    const { sha256Hex } = await import('../../src/service/access.js');
    const keys = [{ id: 'alice', sha256: sha256Hex('alice-key') }, { id: 'bob', sha256: sha256Hex('bob-key') }];
    const a = await replica({ API_KEYS: keys });
    const b = await replica({ API_KEYS: keys });
    const { job } = await submit(a, { kind: 'compute', endpoint: 'eval', request: LECTURE_F }, { authorization: 'Bearer alice-key' });
    expect((await waitFor(b, job.id, { headers: { authorization: 'Bearer alice-key' } })).job.state).toBe('succeeded');
    expect((await read(b, job.id, { authorization: 'Bearer bob-key' })).status).toBe(404);
  });

  it('a replica killed (SIGKILL) mid-job: another replica runs the job again within the stall interval, with the synchronous answer', async () => {
    const request = probeRequest(model, { budget: 301, concurrency: 2 });
    const planned = 2 * Math.floor(0.45 * 300) + 1;
    const child = await serverProcess({ REDIS_URL: redis.url, PROBE_ALLOWED_ORIGINS: model.origin, JOBS_STALL_INTERVAL_MS: String(STALL_MS) });
    let killedAt = 0;
    try {
      const response = await fetch(`${child.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'probe', request }) });
      expect(response.status).toBe(202);
      const { id } = (await response.json()) as JobBody;
      for (let deadline = Date.now() + 60_000; ; ) {
        const job = (await (await fetch(`${child.url}/jobs/${id}`)).json()) as JobBody;
        if (job.state === 'running' && (job.progress.queries ?? 0) >= 20) break;
        if (Date.now() > deadline) throw new Error(`the job did not start on the child replica: ${JSON.stringify(job)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      child.process.kill('SIGKILL');
      killedAt = Date.now();
      const before = model.requests;
      const other = await replica();
      const readyAt = Date.now();
      const done = await waitFor(other, id, { timeoutMs: 60_000 });
      expect(done.job.state).toBe('succeeded');
      // Taken back within two stall intervals of the kill (the lock lapses, then the next check) or
      // of the other replica's start, whichever is later (BullMQ marks an active job at one check and
      // takes it back at the next if its lock has lapsed); ten seconds more for a busy machine, still
      // well below BullMQ's default 30 s interval.
      const takenBackMs = Date.parse(done.job.startedAt!) - Math.max(killedAt, readyAt);
      console.info(`killed replica's job taken back ${takenBackMs} ms after the kill or the other's start (stall interval ${STALL_MS} ms)`);
      expect(takenBackMs).toBeLessThan(2 * STALL_MS + 10_000);
      expect(Date.parse(done.job.finishedAt!)).toBeGreaterThan(Date.parse(done.job.startedAt!));
      // It ran again from the start, on the other replica.
      expect(model.requests - before).toBeGreaterThanOrEqual(planned);
      const sync = await other.inject({ method: 'POST', url: '/probe', payload: request });
      expect(answerBytes(done.text, 'result')).toBe(sync.body);
    } finally {
      child.process.kill('SIGKILL');
    }
  }, 240_000); // a child process started, a job run twice: 17 s alone, minutes on a loaded machine

  // Last: it stops the Redis server.
  it('with Redis unreachable, submissions and reads answer 503 at once instead of hanging', async () => {
    const a = await replica();
    const { job } = await submit(a, { kind: 'compute', endpoint: 'eval', request: LECTURE_F });
    await redis.stop();
    const started = Date.now();
    const reading = await read(a, job.id);
    expect(reading.status).toBe(503);
    expect(reading.job).toMatchObject({ code: 'overloaded' });
    const submitting = await submit(a, { kind: 'compute', endpoint: 'eval', request: LECTURE_F });
    expect(submitting.status).toBe(503);
    expect(submitting.headers['retry-after']).toBe('5');
    // Not hanging (queued until Redis returns): a bound generous on a loaded machine.
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

/** The real server (src/server.ts) as a child process of its own, on a free port. */
async function serverProcess(env: Record<string, string>): Promise<{ process: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', WORKERS: '0', LOG_LEVEL: 'info', MAX_EVENT_LOOP_DELAY_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${seen}`)), 90_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}): ${seen}`)));
  });
  child.stdout!.resume();
  return { process: child, url };
}
