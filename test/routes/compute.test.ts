// Heavy work runs on worker threads with a hard time limit, so the event loop keeps answering.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

// About ten 400×400 inverses: a second or so of arithmetic, from a tiny request.
const HEAVY = {
  expr: 'A = outer(x, x) / 400 + eye(400)\nB = inv(A)\nC = inv(B + A)\nD = inv(C + B)\nE = inv(D + C)\nF = inv(E + D)\nG = inv(F + E)\nH = inv(G + F)\nI = inv(H + G)\nsum(inv(I + H))',
  at: { x: Array.from({ length: 400 }, (_, i) => Math.sin(i)) },
};

describe('the worker pool', () => {
  let app: App;
  let inline: App;
  beforeAll(async () => {
    // A loaded machine may take over a minute for a large function's Hessian (its limit is tested
    // below), the more so on a worker at a lower priority (WORKER_NICE, tested in hostile-costs).
    app = buildTestApp({ WORKERS: 1, INLINE_FLOPS: 0, WORK_TIMEOUT_MS: 300_000, WORKER_NICE: 0 });
    inline = buildTestApp();
    await Promise.all([app.ready(), inline.ready()]);
  });
  afterAll(() => Promise.all([app.close(), inline.close()]));

  /** The request goes to a worker, and its answer is the one the event loop gives. */
  async function expectSameOnWorker(url: string, body: object, status = 200): Promise<void> {
    const before = app.compute.jobs().offloaded;
    const a = await app.inject({ method: 'POST', url, payload: body });
    const b = await inline.inject({ method: 'POST', url, payload: body });
    expect(app.compute.jobs().offloaded, url).toBe(before + 1);
    expect(a.statusCode, url).toBe(status);
    expect(a.body, url).toEqual(b.body);
  }

  it('answers on a worker what it answers inline, errors included', async () => {
    await expectSameOnWorker('/grad', { expr: 'sum(tanh(W @ x))', at: { W: [[1, 2], [3, 4]], x: [0.1, -0.2] } });
    await expectSameOnWorker('/grad', { expr: 'y = x^2\nlog(y - 10)', at: { x: 1 } });
    const bad = await app.inject({ method: 'POST', url: '/grad', payload: { expr: 'x @ x', at: { x: [[1, 2]] } } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ code: 'shape_mismatch' });
  });

  it('traces on a worker what it traces inline', async () => {
    await expectSameOnWorker('/trace', { expr: 'h = tanh(W @ x)\nsum(h^2)', at: { W: [[1, 2], [3, 4]], x: [0.1, -0.2] }, mode: 'both' });
  });

  it('plans a large function on a worker, so parsing and differentiating it do not stall the event loop', async () => {
    const n = 3000;
    const nodes = Array.from({ length: n }, (_, i) => ({ id: `n${i}`, op: 'sin', args: [i === 0 ? 'x' : `n${i - 1}`] }));
    const body = { graph: { nodes, output: `n${n - 1}` }, at: { x: 0.5 } };
    const cached = app.compute.engine.cachedFunctions;
    for (const [url, extra] of [['/hessian', {}], ['/trace', { mode: 'both' }], ['/analyze', {}], ['/graph', { format: 'dot' }]] as const) {
      await expectSameOnWorker(url, { ...body, ...extra });
    }
    // ... and never prepared on the event loop's engine.
    expect(app.compute.engine.cachedFunctions).toBe(cached);
  }, 180_000); // 9 s alone; past 60 s at a load average of 20

  it('lays out graph pictures on a worker', async () => {
    const before = app.compute.jobs().offloaded;
    const res = await app.inject({ method: 'POST', url: '/graph', payload: { expr: 'sqrt(x^2 + exp(x^2))', format: 'svg' } });
    expect(app.compute.jobs().offloaded).toBe(before + 1);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('image/svg+xml');
    expect(res.body).toContain('<svg');
  });

  it('grades a class on a worker, with the answer it gives inline', async () => {
    await expectSameOnWorker('/grade', {
      reference: { expr: 'sin(x^2)' },
      seed: 3,
      submissions: [
        { id: 'right', answers: { derivative: { x: '2*x*cos(x^2)' } } },
        { id: 'wrong', answers: { derivative: { x: 'cos(x^2)' } } },
      ],
    });
  });

  it('keeps the event loop free while a heavy request computes', async () => {
    let heavyDone = false;
    const heavy = app.inject({ method: 'POST', url: '/eval', payload: HEAVY }).finally(() => void (heavyDone = true));
    await new Promise((r) => setTimeout(r, 50));
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    // Answered while the heavy computation (over a second) was still going: the order says so, not
    // a clock a loaded machine can stretch (computed on the event loop, it would have ended first).
    expect(heavyDone).toBe(false);
    const result = await heavy;
    expect(result.statusCode).toBe(200);
  });
});

describe('the time limit', () => {
  // A limit of seconds, so that a loaded machine still serves small offloaded work (and starts a
  // worker) within it, and a computation far past it: twenty 2000×2000 products, seconds each.
  const LIMIT_MS = 2000;
  const FAR_PAST = { expr: `A = eye(2000)\nsum(A${' @ A'.repeat(20)})`, at: {} };
  let app: App;
  beforeAll(async () => {
    app = buildTestApp({ WORKERS: 1, INLINE_FLOPS: 100_000, WORK_TIMEOUT_MS: LIMIT_MS, MAX_FLOPS: 1e13, WORKER_NICE: 0 });
    await app.ready();
  });
  afterAll(() => app.close());

  it('stops a computation past WORK_TIMEOUT_MS with 503 timeout, and the next request is served', async () => {
    const slow = await app.inject({ method: 'POST', url: '/eval', payload: FAR_PAST });
    expect(slow.statusCode).toBe(503);
    expect(slow.json()).toMatchObject({ code: 'timeout' });
    // Small work runs inline at once; offloaded work resumes once the stopped worker is replaced
    // (the limit counts a new worker's start-up, which under tsx can itself take a while).
    const next = await app.inject({ method: 'POST', url: '/grad', payload: { expr: 'x^2', at: { x: 3 } } });
    expect(next.json()).toEqual({ value: 9, gradient: { x: 6 } });
    const offloaded = { expr: 'sum(A @ A)', at: { A: [[1, 2], [3, 4]] }, points: Array.from({ length: 200 }, () => ({ A: [[1, 2], [3, 4]] })) };
    let status = 0;
    for (const until = Date.now() + 40_000; Date.now() < until && status !== 200; ) {
      status = (await app.inject({ method: 'POST', url: '/eval', payload: { expr: offloaded.expr, points: offloaded.points } })).statusCode;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  });
});
