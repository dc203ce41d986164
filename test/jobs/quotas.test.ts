// The job store's promises on the in-process backend (issue 20, items 5, 6 and 8): one job for
// concurrent retries of one Idempotency-Key and a 422 for another body every time; each client's
// share of queue slots and bytes (one client filling its share does not shut another out); a
// finished job deleted by its client frees its bytes; a cancelled grading stays cancelled; result
// lifetimes past setTimeout's range; DELETE with a JSON content type and no body.

import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { sha256Hex } from '../../src/service/access.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from '../probe/fake-model.js';
import { InProcessJobs } from '../../src/jobs/in-process.js';
import { cancelWhileRunning, longGrading, read, STORE_SETTINGS, stubbornWork, submit, waitFor } from './jobs-client.js';

let app: App | undefined;
let model: FakeModel | undefined;
afterEach(async () => {
  await app?.close();
  await model?.close();
  app = model = undefined;
});

const LECTURE_F = { expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } };
const KEYS = [{ id: 'alice', sha256: sha256Hex('alice-key') }, { id: 'bob', sha256: sha256Hex('bob-key') }];
const alice = { authorization: 'Bearer alice-key' };
const bob = { authorization: 'Bearer bob-key' };

describe('in-process job store', () => {
  it('eight concurrent retries with one Idempotency-Key make one job; another body gets 422 every time, also once it finished', async () => {
    app = buildTestApp();
    const body = { kind: 'compute', endpoint: 'hessian', request: LECTURE_F };
    const racing = await Promise.all(Array.from({ length: 8 }, () => submit(app!, body, { 'idempotency-key': 'race' })));
    expect(racing.map((r) => r.status)).toEqual(Array(8).fill(202));
    expect(new Set(racing.map((r) => r.job.id)).size).toBe(1);
    expect(racing.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      const other = await submit(app, { ...body, endpoint: 'grad' }, { 'idempotency-key': 'race' });
      expect(other.status).toBe(422);
      expect(other.job).toMatchObject({ code: 'idempotency_conflict' });
    }
    await waitFor(app, racing[0]!.job.id);
    expect((await submit(app, { ...body, endpoint: 'grad' }, { 'idempotency-key': 'race' })).status).toBe(422);
  });

  it('one client past its share of queue slots gets 429; another client still gets 202', async () => {
    model = await serveModel(() => ({ json: { logit: 0 }, delayMs: 30_000 }));
    app = buildTestApp({ API_KEYS: KEYS, PROBE_ALLOWED_ORIGINS: [model.origin], JOBS_CONCURRENCY_PROBE: 1, JOBS_MAX_QUEUED_PER_CLIENT: 3, JOBS_MAX_QUEUED: 10 });
    const probe = { kind: 'probe', request: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: [1, 2], method: 'central', timeoutMs: 60_000 } };
    // The first runs, three wait: alice's share.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await submit(app, probe, alice)).status);
    expect(statuses).toEqual([202, 202, 202, 202]);
    const refused = await submit(app, probe, alice);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(JSON.stringify(refused.job)).toContain('JOBS_MAX_QUEUED_PER_CLIENT');
    expect((await submit(app, probe, bob)).status).toBe(202);
    // A job cancelled while it waits gives its slot back.
    const waiting = (await submit(app, probe, bob)).job.id;
    expect((await app.inject({ method: 'DELETE', url: `/jobs/${waiting}`, headers: bob })).statusCode).toBe(200);
    expect((await submit(app, probe, bob)).status).toBe(202);
  }, 30_000);

  it('one client past its share of bytes gets 429 and another does not; DELETE of a finished job frees its bytes (then 404)', async () => {
    // Each job keeps a ~4.6 kB answer (the gradient of 300 numbers); alice may hold about two of them.
    app = buildTestApp({ API_KEYS: KEYS, JOBS_MAX_BYTES_PER_CLIENT: 12_000, JOBS_MAX_BYTES: 1_000_000 });
    const x = Array.from({ length: 300 }, (_, i) => i / 7);
    const body = { kind: 'compute', endpoint: 'grad', request: { expr: 'sum(x * x)', at: { x } } };
    const kept: string[] = [];
    let status = 202;
    while (status === 202 && kept.length < 10) {
      const submitted = await submit(app, body, alice);
      status = submitted.status;
      if (status === 202) kept.push((await waitFor(app, submitted.job.id, { headers: alice })).job.id);
      else expect(JSON.stringify(submitted.job)).toContain('JOBS_MAX_BYTES_PER_CLIENT');
    }
    expect(status).toBe(429);
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThanOrEqual(3);
    // Bob is not shut out by alice's answers.
    expect((await submit(app, body, bob)).status).toBe(202);
    // Alice deletes what she has read: her bytes are freed, the job is gone.
    const deleted = await app.inject({ method: 'DELETE', url: `/jobs/${kept[0]}`, headers: alice });
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toMatchObject({ id: kept[0], state: 'succeeded' });
    expect((await read(app, kept[0]!, alice)).status).toBe(404);
    expect((await submit(app, body, alice)).status).toBe(202);
  }, 30_000);

  it('many small submissions at once whose answers would pass the client’s share: the answers that do not fit are dropped (the job fails 429), another client is not shut out', async () => {
    app = buildTestApp({ API_KEYS: KEYS, JOBS_MAX_BYTES_PER_CLIENT: 20_000, JOBS_MAX_BYTES: 1_000_000 });
    const a = app;
    const b = app;
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

  it('DELETE with Content-Type: application/json and no body is accepted (200), as without the header', async () => {
    app = buildTestApp();
    const { job } = await submit(app, { kind: 'compute', endpoint: 'eval', request: LECTURE_F });
    await waitFor(app, job.id);
    const deleted = await app.inject({ method: 'DELETE', url: `/jobs/${job.id}`, headers: { 'content-type': 'application/json' } });
    expect(deleted.statusCode).toBe(200);
    // A malformed body is still malformed.
    const { job: other } = await submit(app, { kind: 'compute', endpoint: 'eval', request: LECTURE_F });
    const malformed = await app.inject({ method: 'DELETE', url: `/jobs/${other.id}`, headers: { 'content-type': 'application/json' }, payload: '{' });
    expect(malformed.statusCode).toBe(400);
  });

  it('JOBS_RESULT_TTL_SECONDS past 2^31 ms (30 days) keeps the result, with expiresAt 30 days on', async () => {
    app = buildTestApp({ JOBS_RESULT_TTL_SECONDS: 2_592_000 });
    const { job } = await submit(app, { kind: 'compute', endpoint: 'eval', request: LECTURE_F });
    const done = await waitFor(app, job.id);
    expect(done.job.state).toBe('succeeded');
    // setTimeout past 2^31 - 1 ms fires after 1 ms: the job would be gone by now.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const later = await read(app, job.id);
    expect(later.status).toBe(200);
    expect(later.job.result).toBeDefined();
    expect(Date.parse(later.job.expiresAt!) - Date.parse(later.job.finishedAt!)).toBe(2_592_000_000);
  });

  it('a grading cancelled while it runs stays cancelled after its work would have finished', async () => {
    app = buildTestApp({ WORKERS: 1 });
    const request = longGrading();
    const { job } = await submit(app, { kind: 'grade', request });
    await waitFor(app, job.id, { until: (j) => j.state !== 'queued' });
    const cancelled = await app.inject({ method: 'DELETE', url: `/jobs/${job.id}` });
    expect(cancelled.json()).toMatchObject({ state: 'cancelled' });
    // The same grading, synchronously: the cancelled one's work would have ended by now.
    expect((await app.inject({ method: 'POST', url: '/grade', payload: request })).statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await read(app, job.id)).job.state).toBe('cancelled');
  }, 60_000);

  it('a job cancelled while its work runs on, ignoring the signal, stays cancelled when the work answers', async () => {
    const work = stubbornWork(1000);
    const backend = new InProcessJobs(work, STORE_SETTINGS);
    try {
      const { cancelled, later } = await cancelWhileRunning(backend, 1000);
      expect(cancelled?.state).toBe('cancelled');
      expect(later?.state).toBe('cancelled');
      expect(later?.result).toBeUndefined();
    } finally {
      await backend.close();
    }
  });
});
