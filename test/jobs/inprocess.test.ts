// The jobs API on the in-process backend (the default): answers equal to the synchronous
// endpoints' byte for byte, progress, server-sent events, cancellation that stops the queries,
// idempotency keys, result expiry, bounded queue, and jobs visible only by id and to their key.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { sha256Hex } from '../../src/service/access.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from '../probe/fake-model.js';
import { answerBytes, read, submit, waitFor, type JobBody } from './jobs-client.js';

/** The fake model: f(x) = Σ sin(x_i), answered after `delayMs`. */
async function sineModel(delayMs: number): Promise<FakeModel> {
  return serveModel((input) => ({ json: { logit: (input as number[]).reduce((sum, x) => sum + Math.sin(x), 0) }, delayMs }));
}

function probeRequest(model: FakeModel, extra: Record<string, unknown> = {}) {
  return { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: [0.1, -0.4, 0.7, 1.2], method: 'spsa', budget: 41, seed: 7, ...extra };
}

const LECTURE_F = { expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } };

describe('in-process jobs: the same answers as the synchronous endpoints', () => {
  let app: App;
  let model: FakeModel;
  beforeAll(async () => {
    model = await sineModel(1);
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin] });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await model.close();
  });

  it('a compute job answers the bytes POST /grad answers, and its gradient is the closed form', async () => {
    const sync = await app.inject({ method: 'POST', url: '/grad', payload: LECTURE_F });
    const submitted = await submit(app, { kind: 'compute', endpoint: 'grad', request: LECTURE_F });
    expect(submitted.status).toBe(202);
    expect(submitted.headers.location).toBe(`/jobs/${submitted.job.id}`);
    expect(['queued', 'running']).toContain(submitted.job.state);
    const done = await waitFor(app, submitted.job.id);
    expect(done.job.state).toBe('succeeded');
    expect(answerBytes(done.text, 'result')).toBe(sync.body);
    // f(x) = sqrt(u) + cos(u), u = x² + e^{x²}: f' = u'(1/(2√u) − sin u), u' = 2x(1 + e^{x²}).
    const x = 0.7;
    const u = x * x + Math.exp(x * x);
    const du = 2 * x * (1 + Math.exp(x * x));
    const gradient = (done.job.result as { gradient: { x: number } }).gradient.x;
    expect(gradient).toBeCloseTo(du * (1 / (2 * Math.sqrt(u)) - Math.sin(u)), 12);
    expect(done.job.progress).toEqual({ done: 1, total: 1 });
    expect(Date.parse(done.job.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(done.job.startedAt!));
    expect(Date.parse(done.job.startedAt!)).toBeGreaterThanOrEqual(Date.parse(done.job.createdAt));
  });

  it('a grade job answers the bytes POST /grade answers', async () => {
    const request = {
      reference: { expr: 'a = x; b = x; a * b' },
      submissions: [{ id: 's1', answers: { derivative: { x: 'x + x' } } }, { id: 's2', answers: { derivative: { x: 'x' } } }],
    };
    const sync = await app.inject({ method: 'POST', url: '/grade', payload: request });
    expect(sync.statusCode).toBe(200);
    const done = await waitFor(app, (await submit(app, { kind: 'grade', request })).job.id);
    expect(done.job.state).toBe('succeeded');
    expect(answerBytes(done.text, 'result')).toBe(sync.body);
    const scores = (done.job.result as { results: { score: number; max_score: number }[] }).results.map((r) => r.score === r.max_score);
    expect(scores).toEqual([true, false]);
  });

  it('a probe job answers the bytes POST /probe answers for the same seed, with its queries as progress', async () => {
    const request = probeRequest(model);
    const sync = await app.inject({ method: 'POST', url: '/probe', payload: request });
    expect(sync.statusCode).toBe(200);
    const done = await waitFor(app, (await submit(app, { kind: 'probe', request })).job.id);
    expect(done.job.state).toBe('succeeded');
    expect(answerBytes(done.text, 'result')).toBe(sync.body);
    const answer = done.job.result as { queries: number; gradient: number[] };
    // spsa plans max(2, ⌊0.45·(budget − 1)⌋) directions, two queries each, and f(x).
    const planned = 2 * Math.floor(0.45 * (41 - 1)) + 1;
    expect(done.job.progress).toEqual({ done: planned, total: planned, queries: answer.queries });
    expect(answer.gradient).toHaveLength(4);
  });

  it('a job that fails carries the problem the synchronous endpoint answers', async () => {
    const request = { expr: 'sin(x', at: { x: 1 } };
    const sync = await app.inject({ method: 'POST', url: '/grad', payload: request });
    expect(sync.statusCode).toBe(400);
    const done = await waitFor(app, (await submit(app, { kind: 'compute', endpoint: 'grad', request })).job.id);
    expect(done.job.state).toBe('failed');
    expect(answerBytes(done.text, 'problem')).toBe(sync.body);
    expect(done.job.problem?.code).toBe('parse_error');
  });

  it('a body the endpoint would refuse is refused at submission (400), with the path inside request', async () => {
    const bad = await submit(app, { kind: 'compute', endpoint: 'grad', request: { at: { x: 1 }, expr: 42 } });
    expect(bad.status).toBe(400);
    expect(bad.job).toMatchObject({ code: 'validation_error' });
    expect(JSON.stringify(bad.job)).toContain('request.expr');
    const noEndpoint = await submit(app, { kind: 'compute', request: LECTURE_F });
    expect(noEndpoint.status).toBe(400);
    const unknownKind = await submit(app, { kind: 'mine', request: {} });
    expect(unknownKind.status).toBe(400);
  });

  it('?async=true on a synchronous endpoint submits the same job (202, Location) instead of answering', async () => {
    const sync = await app.inject({ method: 'POST', url: '/hessian', payload: LECTURE_F });
    const submitted = await app.inject({ method: 'POST', url: '/hessian?async=true', payload: LECTURE_F });
    expect(submitted.statusCode).toBe(202);
    const job = submitted.json<JobBody>();
    expect(submitted.headers.location).toBe(`/jobs/${job.id}`);
    expect(job).toMatchObject({ kind: 'compute', endpoint: 'hessian' });
    const done = await waitFor(app, job.id);
    expect(answerBytes(done.text, 'result')).toBe(sync.body);
    const probe = probeRequest(model, { seed: 3 });
    const probed = await waitFor(app, (await app.inject({ method: 'POST', url: '/probe?async=true', payload: probe })).json<JobBody>().id);
    expect(answerBytes(probed.text, 'result')).toBe((await app.inject({ method: 'POST', url: '/probe', payload: probe })).body);
    expect((await app.inject({ method: 'POST', url: '/grad?async=false', payload: LECTURE_F })).body).toBe(
      (await app.inject({ method: 'POST', url: '/grad', payload: LECTURE_F })).body,
    );
    expect((await app.inject({ method: 'POST', url: '/grad?async=yes', payload: LECTURE_F })).statusCode).toBe(400);
    const bad = await app.inject({ method: 'POST', url: '/grad?async=true', payload: { expr: 42 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'validation_error' });
  });

  it('ids are 128 random bits (base64url), and a job is found by its id only', async () => {
    const ids = await Promise.all([1, 2, 3].map(async () => (await submit(app, { kind: 'compute', endpoint: 'eval', request: LECTURE_F })).job.id));
    for (const id of ids) expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    expect(new Set(ids).size).toBe(3);
    const missing = await read(app, 'AAAAAAAAAAAAAAAAAAAAAA');
    expect(missing.status).toBe(404);
    expect(missing.job).toMatchObject({ code: 'not_found' });
    expect((await read(app, '../../etc/passwd')).status).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: '/jobs/AAAAAAAAAAAAAAAAAAAAAA' })).statusCode).toBe(404);
  });
});

describe('in-process jobs: progress, events, cancellation', () => {
  let app: App;
  let model: FakeModel;
  beforeAll(async () => {
    model = await sineModel(20);
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], JOBS_CONCURRENCY_PROBE: 1 });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await model.close();
  });

  it('GET /jobs/{id}/events streams the progress, then the final state with the answer', async () => {
    const request = probeRequest(model, { budget: 90, concurrency: 2 });
    const { job } = await submit(app, { kind: 'probe', request });
    const response = await app.inject({ method: 'GET', url: `/jobs/${job.id}/events` });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = response.body
      .split('\n\n')
      .filter((block) => block !== '')
      .map((block) => {
        const [event, data] = block.split('\n');
        return { event: event!.replace('event: ', ''), job: JSON.parse(data!.replace('data: ', '')) as JobBody };
      });
    const running = events.filter((e) => e.event === 'running');
    expect(running.length).toBeGreaterThanOrEqual(2);
    const spent = running.map((e) => e.job.progress.queries ?? 0);
    expect(spent).toEqual([...spent].sort((a, b) => a - b));
    expect(spent.at(-1)).toBeGreaterThan(0);
    const last = events.at(-1)!;
    expect(last.event).toBe('succeeded');
    expect(last.job.result).toMatchObject({ method: 'spsa', queries: last.job.progress.queries });
    expect(events.filter((e) => e.event === 'succeeded')).toHaveLength(1);
  });

  it('DELETE cancels a running probe: its queries stop', async () => {
    const request = probeRequest(model, { budget: 2000, concurrency: 2 });
    const { job } = await submit(app, { kind: 'probe', request });
    await waitFor(app, job.id, { until: (j) => (j.progress.queries ?? 0) >= 4 });
    const cancelled = await app.inject({ method: 'DELETE', url: `/jobs/${job.id}` });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json<JobBody>().state).toBe('cancelled');
    // Queries in flight when the cancel came may still arrive; none is sent after them.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = model.requests;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(model.requests).toBe(after);
    expect(after).toBeLessThan(200);
    const read1 = await read(app, job.id);
    expect(read1.job.state).toBe('cancelled');
    expect(read1.job.result).toBeUndefined();
    // Cancelling a finished job changes nothing.
    expect((await app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })).json<JobBody>().state).toBe('cancelled');
  });

  it('a queued job cancelled never runs; the next one does', async () => {
    const first = await submit(app, { kind: 'probe', request: probeRequest(model, { budget: 200, concurrency: 1 }) });
    const second = await submit(app, { kind: 'probe', request: probeRequest(model, { seed: 99 }) });
    const third = await submit(app, { kind: 'probe', request: probeRequest(model, { seed: 100 }) });
    expect((await read(app, second.job.id)).job.state).toBe('queued');
    expect((await app.inject({ method: 'DELETE', url: `/jobs/${second.job.id}` })).json<JobBody>().state).toBe('cancelled');
    await app.inject({ method: 'DELETE', url: `/jobs/${first.job.id}` });
    const done = await waitFor(app, third.job.id);
    expect(done.job.state).toBe('succeeded');
    const never = await read(app, second.job.id);
    expect(never.job.state).toBe('cancelled');
    expect(never.job.startedAt).toBeUndefined();
  });
});

describe('in-process jobs: idempotency keys, expiry, bounds, API keys', () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('the same Idempotency-Key and body return the same job; another body is refused (422)', async () => {
    app = buildTestApp();
    const body = { kind: 'compute', endpoint: 'grad', request: LECTURE_F };
    const first = await submit(app, body, { 'idempotency-key': 'retry-1' });
    const again = await submit(app, body, { 'idempotency-key': 'retry-1' });
    expect(again.status).toBe(202);
    expect(again.job.id).toBe(first.job.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const other = await submit(app, { ...body, endpoint: 'hessian' }, { 'idempotency-key': 'retry-1' });
    expect(other.status).toBe(422);
    expect(other.job).toMatchObject({ code: 'idempotency_conflict', status: 422 });
    const fresh = await submit(app, body, { 'idempotency-key': 'retry-2' });
    expect(fresh.job.id).not.toBe(first.job.id);
  });

  it('a finished job is kept JOBS_RESULT_TTL_SECONDS, then removed (404), its Idempotency-Key with it', async () => {
    app = buildTestApp({ JOBS_RESULT_TTL_SECONDS: 1 });
    const body = { kind: 'compute', endpoint: 'eval', request: LECTURE_F };
    const { job } = await submit(app, body, { 'idempotency-key': 'k' });
    const done = await waitFor(app, job.id);
    expect(Date.parse(done.job.expiresAt!) - Date.parse(done.job.finishedAt!)).toBe(1000);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await read(app, job.id)).status).toBe(404);
    const again = await submit(app, body, { 'idempotency-key': 'k' });
    expect(again.job.id).not.toBe(job.id);
  });

  it('past JOBS_MAX_QUEUED waiting jobs a submission gets 503 overloaded', async () => {
    const model = await sineModel(200);
    try {
      app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], JOBS_MAX_QUEUED: 2, JOBS_CONCURRENCY_PROBE: 1 });
      const body = { kind: 'probe', request: probeRequest(model) };
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await submit(app, body)).status);
      // One runs, two wait, the fourth is refused.
      expect(statuses).toEqual([202, 202, 202, 503]);
      const metrics = await app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/^adjoint_queued_jobs 2$/m);
      const refused = await submit(app, body);
      expect(refused.job).toMatchObject({ code: 'overloaded' });
      expect(refused.headers['retry-after']).toBeDefined();
    } finally {
      await app?.close();
      app = undefined;
      await model.close();
    }
  });

  it('past JOBS_MAX_BYTES of bodies and kept answers in memory a submission gets 503 overloaded', async () => {
    app = buildTestApp({ JOBS_MAX_BYTES: 9000 });
    const x = Array.from({ length: 300 }, (_, i) => i / 7);
    const body = { kind: 'compute', endpoint: 'grad', request: { expr: 'sum(x * x)', at: { x } } };
    expect(JSON.stringify(body.request).length).toBeGreaterThan(4500);
    expect(JSON.stringify(body.request).length).toBeLessThan(9000);
    const first = await submit(app, body);
    expect(first.status).toBe(202);
    const second = await submit(app, body);
    expect(second.status).toBe(503);
    expect(second.job).toMatchObject({ code: 'overloaded' });
    expect(JSON.stringify(second.job)).toContain('JOBS_MAX_BYTES');
    // The kept answer (the gradient 2x) is what the first job holds now.
    const done = await waitFor(app, first.job.id);
    expect((done.job.result as { gradient: { x: number[] } }).gradient.x).toEqual(x.map((v) => 2 * v));
  });

  it('a probe job has its own time limit (JOBS_PROBE_MAX_DURATION_MS), not the synchronous PROBE_MAX_DURATION_MS', async () => {
    const model = await sineModel(300);
    try {
      app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], PROBE_MAX_DURATION_MS: 2000, JOBS_PROBE_MAX_DURATION_MS: 60_000 });
      // About 40 queries two at a time, 300 ms each: some 6 s. Each may take seconds (timeoutMs as
      // long as the whole synchronous probe, whose deadline comes first), so that a loaded machine
      // answering one query slowly does not fail the job.
      const request = probeRequest(model, { budget: 45, concurrency: 2, timeoutMs: 2000 });
      const sync = await app.inject({ method: 'POST', url: '/probe', payload: request });
      expect(sync.statusCode).toBe(504);
      expect(sync.json()).toMatchObject({ code: 'probe_timeout' });
      expect(sync.json<{ detail: string }>().detail).toContain('PROBE_MAX_DURATION_MS = 2000 ms');
      const done = await waitFor(app, (await submit(app, { kind: 'probe', request })).job.id);
      expect(done.job.state).toBe('succeeded');
      expect(Date.parse(done.job.finishedAt!) - Date.parse(done.job.startedAt!)).toBeGreaterThan(2000);
      await app.close();
      app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], PROBE_MAX_DURATION_MS: 2000, JOBS_PROBE_MAX_DURATION_MS: 200 });
      const short = await waitFor(app, (await submit(app, { kind: 'probe', request: { ...request, timeoutMs: 200 } })).job.id);
      expect(short.job.state).toBe('failed');
      expect(short.job.problem).toMatchObject({ code: 'probe_timeout', status: 504 });
      expect(JSON.stringify(short.job.problem)).toContain('JOBS_PROBE_MAX_DURATION_MS = 200 ms');
    } finally {
      await app?.close();
      app = undefined;
      await model.close();
    }
  });

  it('a web page of a CORS origin may submit with an Idempotency-Key, read Location, and cancel', async () => {
    const page = 'https://course.example';
    app = buildTestApp({ CORS_ORIGINS: [page] });
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/jobs/AAAAAAAAAAAAAAAAAAAAAA',
      headers: { origin: page, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'idempotency-key, content-type' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(String(preflight.headers['access-control-allow-methods']).split(', ')).toContain('DELETE');
    expect(String(preflight.headers['access-control-allow-headers']).split(', ')).toContain('idempotency-key');
    const submitted = await submit(app, { kind: 'compute', endpoint: 'eval', request: LECTURE_F }, { origin: page, 'idempotency-key': 'page-1' });
    expect(submitted.headers['access-control-allow-origin']).toBe(page);
    expect(String(submitted.headers['access-control-expose-headers']).split(',').map((h) => h.trim())).toEqual(expect.arrayContaining(['location', 'idempotent-replayed']));
  });

  it('with API keys a job is seen only with the key that submitted it', async () => {
    app = buildTestApp({ API_KEYS: [{ id: 'alice', sha256: sha256Hex('alice-key') }, { id: 'bob', sha256: sha256Hex('bob-key') }] });
    const alice = { authorization: 'Bearer alice-key' };
    const bob = { authorization: 'Bearer bob-key' };
    expect((await submit(app, { kind: 'compute', endpoint: 'grad', request: LECTURE_F })).status).toBe(401);
    const { job } = await submit(app, { kind: 'compute', endpoint: 'grad', request: LECTURE_F }, alice);
    expect((await waitFor(app, job.id, { headers: alice })).job.state).toBe('succeeded');
    expect((await read(app, job.id, bob)).status).toBe(404);
    expect((await read(app, job.id)).status).toBe(401);
    expect((await app.inject({ method: 'DELETE', url: `/jobs/${job.id}`, headers: bob })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/jobs/${job.id}/events`, headers: bob })).statusCode).toBe(404);
    // The same Idempotency-Key under another API key is another job.
    const a = await submit(app, { kind: 'compute', endpoint: 'eval', request: LECTURE_F }, { ...alice, 'idempotency-key': 'same' });
    const b = await submit(app, { kind: 'compute', endpoint: 'grad', request: LECTURE_F }, { ...bob, 'idempotency-key': 'same' });
    expect(b.status).toBe(202);
    expect(b.job.id).not.toBe(a.job.id);
  });
});
