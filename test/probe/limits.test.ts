// What bounds a whole probe (issue 9): a hard deadline from the request's arrival, after which
// every query in flight is aborted and every evaluation cancelled; one allowance of
// floating-point operations per probe (PROBE_MAX_FLOPS); the bytes of request bodies it sends
// (PROBE_MAX_OUTBOUND_BYTES); and the queries per minute of all one client's probes
// (PROBE_CLIENT_QUERIES_PER_MINUTE). Scaled down: short deadlines, small limits.

import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Evaluator, EvaluationOptions } from '../../src/probe/black-box.js';
import { BodyTemplate } from '../../src/probe/body-template.js';
import { ClientQuotas, MAX_NUMBER_CHARACTERS, plannedOutboundBytes } from '../../src/probe/limits.js';
import { planQueries } from '../../src/probe/plan.js';
import { Prober, type ProberOptions, type ProbeMethod, type ProbeRequest } from '../../src/probe/probe.js';
import { Random } from '../../src/engine/random.js';
import type { App } from '../../src/service/app.js';
import type { Config } from '../../src/service/config.js';
import { ProbeError } from '../../src/probe/errors.js';
import { toHttpProblem, type HttpProblem } from '../../src/service/problem.js';
import { probeClientOf } from '../../routes/probe.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel, type Respond } from './fake-model.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// "It did not wait": an evaluation that is not cancelled takes SLOW_MS (past the test's timeout);
// an answer within PROMPT_MS of when it was due, generous on a loaded 2-core machine, cannot have
// waited for one. Timing itself belongs in the benchmarks.
const SLOW_MS = 60_000;
const PROMPT_MS = 10_000;

/** A Prober with generous limits except those given. */
function proberWith(evaluator: Evaluator, overrides: Partial<ProberOptions> = {}): Prober {
  return new Prober({
    allowedOrigins: [],
    maxConcurrency: 8,
    maxOutgoing: 64,
    maxBudget: 10_000,
    maxResponseBytes: 1_048_576,
    defaultTimeoutMs: 5000,
    maxDurationMs: 120_000,
    maxTensorElements: 1_000_000,
    maxElements: 50_000_000,
    maxFlops: 20e9,
    maxOutboundBytes: 64 * 1_048_576,
    clientQueriesPerMinute: 20_000,
    evaluator,
    ...overrides,
  });
}

/** Runs a probe and answers the problem the service makes of its error (or fails the test if it answers). */
async function refusal(run: Promise<unknown>): Promise<HttpProblem> {
  try {
    await run;
  } catch (error) {
    if (error instanceof ProbeError) return toHttpProblem(error);
    throw error;
  }
  throw new Error('the probe answered; a problem was expected');
}

/**
 * An evaluator whose evaluations of `eval` take `evalMs(call)` ms (the vjp answers at once), and
 * which records how many started, finished, and were cancelled through their signal.
 */
function recordingEvaluator(evalMs: (call: number) => number) {
  const log = { started: 0, finished: 0, aborted: 0, lastStartedAt: 0 };
  const evaluator: Evaluator = {
    run: (op, request, options?: EvaluationOptions) => {
      if (op === 'vjp') {
        const x = (request.at as Record<string, number[]>).x!;
        return Promise.resolve({ vjp: { x: x.map(() => 1) } });
      }
      const call = ++log.started;
      log.lastStartedAt = Date.now();
      const x = (request.at as Record<string, number[]>).x!;
      return new Promise((resolve, reject) => {
        options?.signal?.throwIfAborted();
        const abort = () => {
          clearTimeout(timer);
          log.aborted++;
          reject(options!.signal!.reason);
        };
        const timer = setTimeout(() => {
          options?.signal?.removeEventListener('abort', abort);
          log.finished++;
          resolve({ value: x.reduce((a, b) => a + b, 0), shape: [] });
        }, evalMs(call));
        options?.signal?.addEventListener('abort', abort, { once: true });
      });
    },
  };
  return { evaluator, log };
}

describe('the deadline of a whole probe', () => {
  it('answers 504 at PROBE_MAX_DURATION_MS and cancels every evaluation in flight', async () => {
    // f(x) answers at once, every later evaluation would take a minute.
    const { evaluator, log } = recordingEvaluator((call) => (call === 1 ? 0 : SLOW_MS));
    const prober = proberWith(evaluator, { maxDurationMs: 400, defaultTimeoutMs: SLOW_MS });
    const started = Date.now();
    const problem = await refusal(prober.probe({ target: { expr: 'sum(x)' }, at: [1, 2, 3, 4, 5, 6, 7, 8], method: 'central', concurrency: 4 }));
    const elapsed = Date.now() - started;
    expect(problem.status).toBe(504);
    expect(problem.code).toBe('probe_timeout');
    expect(problem.detail).toMatch(/PROBE_MAX_DURATION_MS = 400 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(400 + PROMPT_MS);
    // f(x), then `concurrency` evaluations in flight: each of those was cancelled, none finished.
    expect(log.started).toBe(5);
    expect(log.finished).toBe(1);
    expect(log.aborted).toBe(4);
    expect(problem.extra.queries).toBe(5);
    await sleep(300);
    expect(log.started).toBe(5);
  });

  it('counts from the request’s arrival, not from when the probe starts', async () => {
    const { evaluator, log } = recordingEvaluator(() => SLOW_MS);
    const prober = proberWith(evaluator, { maxDurationMs: 2 * PROMPT_MS, defaultTimeoutMs: SLOW_MS });
    const started = Date.now();
    const problem = await refusal(prober.probe({ target: { expr: 'sum(x)' }, at: [1, 2], method: 'central' }, { receivedAt: started - 2 * PROMPT_MS + 200 }));
    expect(problem.status).toBe(504);
    // 200 ms were left of the 20 s: counted from the probe's start it would have taken 20 s.
    expect(Date.now() - started).toBeLessThan(PROMPT_MS);
    expect(log.aborted).toBe(1);
  });

  it('stops when the client leaves, cancelling the evaluations', async () => {
    const { evaluator, log } = recordingEvaluator((call) => (call === 1 ? 0 : SLOW_MS));
    const prober = proberWith(evaluator, { defaultTimeoutMs: SLOW_MS });
    const leave = new AbortController();
    setTimeout(() => leave.abort(), 200);
    const started = Date.now();
    const problem = await refusal(prober.probe({ target: { expr: 'sum(x)' }, at: [1, 2, 3], method: 'central', concurrency: 8 }, { signal: leave.signal }));
    expect(problem.detail).toMatch(/client closed the connection/);
    expect(Date.now() - started).toBeLessThan(200 + PROMPT_MS);
    expect(log.aborted).toBe(log.started - 1);
  });

  it('does not refuse a probe because PROBE_DEFAULT_TIMEOUT_MS is longer than PROBE_MAX_DURATION_MS', async () => {
    const { evaluator } = recordingEvaluator(() => 0);
    const prober = proberWith(evaluator, { defaultTimeoutMs: 5000, maxDurationMs: 1000 });
    const answer = await prober.probe({ target: { expr: 'sum(x)' }, at: [1, 2], method: 'central' });
    expect(answer.queries).toBe(5);
    const refused = await refusal(prober.probe({ target: { expr: 'sum(x)' }, at: [1, 2], method: 'central', timeoutMs: 2000 }));
    expect(refused.detail).toMatch(/timeoutMs 2000 is more than .* PROBE_MAX_DURATION_MS of 1000/);
  });

  describe('on worker threads (the issue’s reproduction, scaled down)', () => {
    let app: App | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });

    it('answers at the deadline, not when the evaluation ends, and the worker stops computing', async () => {
      // One worker; every job offloaded. Each evaluation of the target takes seconds on a worker.
      app = buildTestApp({ WORKERS: 1, INLINE_FLOPS: 0, PROBE_MAX_DURATION_MS: 1000, PROBE_MAX_FLOPS: 1e15 });
      const cheap = { method: 'POST', url: '/eval', payload: { expr: 'sum(x)', at: { x: [1, 2] } } } as const;
      expect((await app.inject(cheap)).statusCode).toBe(200); // the worker is up
      // The one thread, which will be computing the target when the deadline comes.
      const [thread] = (app.compute as unknown as { pool: { threads: import('node:worker_threads').Worker[] } }).pool.threads;
      let exited = false;
      thread!.once('exit', () => void (exited = true));
      const started = Date.now();
      const response = await app.inject({
        method: 'POST',
        url: '/probe',
        payload: { target: { expr: 'sum(eye(2000) @ eye(2000)) + sum(x)' }, at: [1, 2, 3, 4, 5, 6, 7, 8], method: 'central', concurrency: 8 },
      });
      const elapsed = Date.now() - started;
      expect(response.statusCode, response.body).toBe(504);
      expect(response.json()).toMatchObject({ code: 'probe_timeout', queries: 1 });
      expect(elapsed).toBeGreaterThanOrEqual(990);
      expect(elapsed).toBeLessThan(1000 + PROMPT_MS);
      // The evaluation (about 1.6e10 flops, several seconds) was stopped, not waited for: its thread
      // was terminated (observed, not timed: a loaded machine makes every duration longer) ...
      await vi.waitFor(() => expect(exited).toBe(true), { timeout: PROMPT_MS, interval: 20 });
      // ... the one worker is free for another job (on a new thread) ...
      expect((await app.inject(cheap)).statusCode).toBe(200);
      // ... and nothing computes any more.
      await sleep(200);
      const cpu = process.cpuUsage();
      await sleep(1000);
      const used = process.cpuUsage(cpu);
      expect((used.user + used.system) / 1000).toBeLessThan(400);
    });
  });

  describe('of an HTTP target', () => {
    let model: FakeModel | undefined;
    let app: App | undefined;
    afterEach(async () => {
      await app?.close();
      await model?.close();
      app = model = undefined;
    });

    it('closes the connections of the queries in flight', async () => {
      let closedEarly = 0;
      model = await serveModel((input, { count, request }) => {
        if (count > 1) request.socket.once('close', () => closedEarly++);
        return { delayMs: count === 1 ? 0 : SLOW_MS, json: { logits: [(input as number[])[0]!] } };
      });
      // Seconds, so that a loaded machine has sent the four queries before the deadline.
      app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], PROBE_MAX_DURATION_MS: 4000 });
      const started = Date.now();
      const response = await app.inject({
        method: 'POST',
        url: '/probe',
        payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, at: [1, 2, 3, 4], method: 'central', concurrency: 4 },
      });
      expect(response.statusCode).toBe(504);
      expect(Date.now() - started).toBeLessThan(4000 + PROMPT_MS);
      expect(response.json().queries).toBe(5);
      await sleep(200);
      expect(model.requests).toBe(5);
      // The model sees each close when a loaded machine gets round to it.
      await vi.waitFor(() => expect(closedEarly).toBe(4), { timeout: PROMPT_MS });
    });

    it('counts from the request’s arrival: a slowly sent body uses up part of the time', async () => {
      // Most of the time limit passes before the rest of the body is sent: seconds, so that the two
      // outcomes stay apart on a loaded machine.
      const LIMIT_MS = 6000;
      model = await serveModel((input) => ({ delayMs: SLOW_MS, json: { logits: [(input as number[])[0]!] } }));
      app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], PROBE_MAX_DURATION_MS: LIMIT_MS, PROBE_DEFAULT_TIMEOUT_MS: SLOW_MS });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      const body = JSON.stringify({ target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, at: [1], method: 'forward' });
      const socket = connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      const started = Date.now();
      socket.write(`POST /probe HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`);
      socket.write(body.slice(0, 10));
      await sleep(0.8 * LIMIT_MS);
      socket.write(body.slice(10));
      let text = '';
      socket.on('data', (chunk: Buffer) => void (text += chunk.toString('utf8')));
      await new Promise((resolve) => socket.once('close', resolve));
      const elapsed = Date.now() - started;
      expect(text).toMatch(/^HTTP\/1\.1 504/);
      // 6 s from the first byte, not 6 s after the body had arrived (10.8 s).
      expect(elapsed).toBeGreaterThanOrEqual(LIMIT_MS - 50);
      expect(elapsed).toBeLessThan(1.5 * LIMIT_MS);
    });
  });
});

describe('PROBE_MAX_FLOPS: one allowance of work per probe', () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  // Each evaluation of this target is estimated at about 2·200³ = 1.6e7 flops.
  const heavy = 'sum(eye(200) @ eye(200)) + sum(x)';

  it('refuses, after one evaluation, a plan whose evaluations together would pass it, and says what would fit', async () => {
    app = buildTestApp({ PROBE_MAX_FLOPS: 2e8 });
    const run = vi.spyOn(app.compute, 'run');
    const at = [1, 2, 3, 4, 5, 6, 7, 8];
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: heavy }, at, method: 'central' } });
    expect(response.statusCode).toBe(422);
    const problem = response.json() as { code: string; detail: string; queries: number };
    expect(problem).toMatchObject({ code: 'limit_exceeded', queries: 1 });
    expect(problem.detail).toMatch(/The 17 planned evaluations of target\.expr, at about 1\.6\de\+7 floating-point operations each, .*PROBE_MAX_FLOPS of 2\.00e\+8/);
    // f(x) and the exact gradient, nothing more: refused before spending the allowance.
    expect(run.mock.calls.map(([op]) => op)).toEqual(['eval', 'vjp']);
    // Every evaluation had the probe's signal and its one allowance.
    const allowances = new Set(run.mock.calls.map(([, , options]) => options?.allowance));
    expect(allowances.size).toBe(1);
    expect(run.mock.calls.every(([, , options]) => options?.signal instanceof AbortSignal)).toBe(true);

    // The advice is right: a budget it names fits.
    const most = Number(/use spsa or nes with a budget of at most (\d+)/.exec(problem.detail)?.[1]);
    expect(most).toBeGreaterThanOrEqual(5);
    const fits = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: heavy }, at, method: 'spsa', budget: most } });
    expect(fits.statusCode, fits.body).toBe(200);
    const tooMany = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: heavy }, at, method: 'spsa', budget: 2 * most } });
    expect(tooMany.statusCode).toBe(422);
    expect(tooMany.json().detail).toMatch(new RegExp(`lower budget to at most ${most}`));
  });

  it('says what to change when one evaluation leaves too little for the rest (the issue’s reproduction, scaled down)', async () => {
    // One evaluation (about 1.6e7 flops) fits PROBE_MAX_FLOPS; the exact gradient and 16 more do not.
    app = buildTestApp({ PROBE_MAX_FLOPS: 2.5e7 });
    const run = vi.spyOn(app.compute, 'run');
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: heavy }, at: [1, 2, 3, 4, 5, 6, 7, 8], method: 'central', concurrency: 8 } });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      code: 'limit_exceeded',
      queries: 1,
      detail: expect.stringMatching(/17 planned evaluations .* PROBE_MAX_FLOPS of 2\.50e\+7 for one probe; simplify target\.expr or evaluate it on a smaller input$/),
    });
    expect(run.mock.calls.map(([op]) => op)).toEqual(['eval', 'vjp']);
  });

  it('bounds the sum over the probe, not each evaluation: a cheap target is not refused', async () => {
    app = buildTestApp({ PROBE_MAX_FLOPS: 1e8 });
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: 'sum(eye(20) @ eye(20)) + sum(x)' }, at: [1, 2, 3], method: 'central' } });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ queries: 7, exact: [1, 1, 1] });
  });

  it('defaults to MAX_FLOPS’s default, 2e10', () => {
    app = buildTestApp();
    expect(app.config.PROBE_MAX_FLOPS).toBe(20e9);
  });
});

describe('PROBE_MAX_OUTBOUND_BYTES: the request bodies one probe sends', () => {
  const models: FakeModel[] = [];
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    for (const m of models.splice(0)) await m.close();
    app = undefined;
  });

  async function serve(respond: Respond, overrides: Partial<Config> = {}) {
    const bytes: number[] = [];
    const model = await serveModel((input, received) => {
      bytes.push(Number(received.request.headers['content-length']));
      return respond(input, received);
    });
    models.push(model);
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], ...overrides });
    return { model, app, bytes };
  }

  const sumModel: Respond = (input) => ({ json: { logits: [(input as number[]).reduce((a, b) => a + b, 0)] } });

  it('refuses the amplification of a large body template before sending anything (the issue’s reproduction, scaled down)', async () => {
    const { model, app } = await serve(sumModel, { PROBE_MAX_OUTBOUND_BYTES: 1_000_000 });
    const padding = 'x'.repeat(10_000);
    const response = await app.inject({
      method: 'POST',
      url: '/probe',
      payload: { target: { url: model.url, body: { input: '$input', padding }, outputPath: '/logits/0' }, at: [1, 2, 3], method: 'spsa', budget: 1001 },
    });
    expect(response.statusCode).toBe(422);
    const problem = response.json() as { code: string; detail: string; queries: number };
    expect(problem).toMatchObject({ code: 'limit_exceeded', queries: 0 });
    expect(problem.detail).toMatch(/The 901 planned queries would send up to \d+ bytes .* PROBE_MAX_OUTBOUND_BYTES of 1000000/);
    expect(model.requests).toBe(0);
    // What it suggests fits.
    const most = Number(/lower budget to at most (\d+)/.exec(problem.detail)?.[1]);
    expect(most).toBeGreaterThanOrEqual(5);
    expect(most).toBeLessThan(100);
    const fits = await app.inject({
      method: 'POST',
      url: '/probe',
      payload: { target: { url: model.url, body: { input: '$input', padding }, outputPath: '/logits/0' }, at: [1, 2, 3], method: 'spsa', budget: most },
    });
    expect(fits.statusCode, fits.body).toBe(200);
  });

  it.each<[ProbeMethod, unknown, Partial<ProbeRequest>]>([
    ['forward', null, {}],
    ['central', null, {}],
    ['spsa', null, { budget: 41 }],
    ['nes', null, { budget: 41 }],
    ['occlusion', ['a', 'bb', 'ccc', 'dddd'], { mask: '[MASK]' }],
  ])('estimates an upper bound of the bytes %s sends, not far above them', async (method, tokens, extra) => {
    const random = new Random(3);
    const at = tokens ?? Array.from({ length: 30 }, () => Math.round(random.normal() * 1000) / 1000);
    const respond: Respond = (input) => ({ json: { logits: [(input as unknown[]).length] } });
    const { model, app, bytes } = await serve(respond);
    const body = { input: '$input', id: 'model-ü' };
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { url: model.url, body, outputPath: '/logits/0' }, at, method, ...extra } });
    expect(response.statusCode, response.body).toBe(200);
    const sent = bytes.reduce((a, b) => a + b, 0);
    const n = (at as unknown[]).length;
    const plan = planQueries(method, n, extra, 10_000);
    expect(bytes.length).toBe(plan.planned);
    const numbers = tokens === null ? Float64Array.from(at as number[]) : undefined;
    const epsilon = method === 'occlusion' ? undefined : (response.json() as { epsilon: number }).epsilon;
    const estimate = plannedOutboundBytes(BodyTemplate.compile(body)!, method, { json: JSON.stringify(at), numbers, epsilon, mask: extra.mask }, plan.planned);
    expect(estimate.first).toBe(bytes[0]);
    expect(sent).toBeLessThanOrEqual(estimate.total);
    // Exact for forward and central differences; close for the others.
    if (method === 'forward' || method === 'central') expect(estimate.total).toBe(sent);
    expect(estimate.total).toBeLessThan(1.5 * sent);
  });

  it('counts the bytes really sent, retries included, and stops at the bound', async () => {
    const body = { input: '$input', padding: 'x'.repeat(1000) };
    const one = Buffer.byteLength(JSON.stringify({ input: [1], padding: body.padding }));
    // The plan (f(x) and one perturbation) fits; a third body does not.
    const limit = 2 * one + MAX_NUMBER_CHARACTERS + 10;
    // Every answer is 503: the first query is sent again and again, each time with its body.
    const { model, app, bytes } = await serve(() => ({ status: 503, json: {} }), { PROBE_MAX_OUTBOUND_BYTES: limit });
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { url: model.url, body, outputPath: '/logits/0' }, at: [1], method: 'forward', budget: 20 } });
    expect(response.statusCode, response.body).toBe(422);
    expect(response.json()).toMatchObject({ code: 'limit_exceeded', queries: 2, detail: expect.stringMatching(/PROBE_MAX_OUTBOUND_BYTES of \d+ bytes \(\d+ sent so far, retries included\)/) });
    expect(model.requests).toBe(2);
    expect(bytes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(limit);
  });
});

describe('PROBE_CLIENT_QUERIES_PER_MINUTE: all one client’s probes', () => {
  const models: FakeModel[] = [];
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    for (const m of models.splice(0)) await m.close();
    app = undefined;
  });

  async function serve(respond: Respond, overrides: Partial<Config>) {
    const model = await serveModel(respond);
    models.push(model);
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], ...overrides });
    const probe = (from: string, payload: Record<string, unknown>, key?: string) =>
      app!.inject({
        method: 'POST',
        url: '/probe',
        remoteAddress: from,
        ...(key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } }),
        payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, ...payload },
      });
    return { model, probe };
  }

  const sumModel: Respond = (input) => ({ json: { logits: [(input as number[]).reduce((a, b) => a + b, 0)] } });

  it('answers 429 with Retry-After when a probe plans more than the client has left this minute; other clients are not affected', async () => {
    const { model, probe } = await serve(sumModel, { PROBE_CLIENT_QUERIES_PER_MINUTE: 30 });
    const central = { at: [1, 2, 3, 4], method: 'central' }; // 9 queries
    for (let i = 0; i < 3; i++) expect((await probe('10.0.0.1', central)).statusCode).toBe(200);
    const refused = await probe('10.0.0.1', central);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({
      code: 'rate_limited',
      queries: 0,
      detail: expect.stringMatching(/sent or reserved 27 of the 30 queries .*\(PROBE_CLIENT_QUERIES_PER_MINUTE\), and this probe plans 9: send it again in \d+ s/),
    });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(model.requests).toBe(27);
    // What is left still serves a smaller probe, and another client has its own minute.
    expect((await probe('10.0.0.1', { at: [1, 2], method: 'forward' })).statusCode).toBe(200);
    expect((await probe('10.0.0.2', central)).statusCode).toBe(200);
  });

  it('gives back the planned queries a failed probe never sent', async () => {
    // The first query of the first probe fails (500): 8 of its 9 planned queries were never sent.
    const { probe } = await serve((input, received) => (received.count === 1 ? { status: 500, json: {} } : sumModel(input, received)), {
      PROBE_CLIENT_QUERIES_PER_MINUTE: 19,
    });
    const central = { at: [1, 2, 3, 4], method: 'central' };
    expect((await probe('10.0.0.1', central)).statusCode).toBe(502);
    expect((await probe('10.0.0.1', central)).statusCode).toBe(200);
    expect((await probe('10.0.0.1', central)).statusCode).toBe(200);
    expect((await probe('10.0.0.1', central)).statusCode).toBe(429);
  });

  it('refuses with 422 a probe that no minute could serve, and says what would fit', async () => {
    const { model, probe } = await serve(sumModel, { PROBE_CLIENT_QUERIES_PER_MINUTE: 10 });
    const response = await probe('10.0.0.1', { at: [1, 2, 3, 4, 5], method: 'central' });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({ code: 'limit_exceeded', detail: expect.stringMatching(/plans 11 queries, more than .* PROBE_CLIENT_QUERIES_PER_MINUTE of 10 .* use spsa or nes with a budget of at most 10/) });
    expect(model.requests).toBe(0);
  });

  it('is off at 0; an { expr } target is not counted (nothing goes out)', async () => {
    const { probe } = await serve(sumModel, { PROBE_CLIENT_QUERIES_PER_MINUTE: 0 });
    for (let i = 0; i < 3; i++) expect((await probe('10.0.0.1', { at: new Array(20).fill(1), method: 'central' })).statusCode).toBe(200);
    await app!.close();
    app = buildTestApp({ PROBE_CLIENT_QUERIES_PER_MINUTE: 5 });
    const local = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: 'sum(x)' }, at: [1, 2, 3], method: 'central' } });
    expect(local.statusCode).toBe(200);
  });

  it('counts a client by its API key when the request carries one, else by its address', async () => {
    expect(probeClientOf({ ip: '10.0.0.1', apiKeyId: 'team-a' })).toBe('key:team-a');
    expect(probeClientOf({ ip: '10.0.0.1', apiKeyId: undefined })).toBe('ip:10.0.0.1');
    // Two keys behind one address (a proxy) have a minute each.
    const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
    const { probe } = await serve(sumModel, {
      PROBE_CLIENT_QUERIES_PER_MINUTE: 10,
      API_KEYS: [
        { id: 'a', sha256: sha256('key-a') },
        { id: 'b', sha256: sha256('key-b') },
      ],
    });
    const central = { at: [1, 2, 3, 4], method: 'central' }; // 9 queries
    expect((await probe('10.0.0.1', central, 'key-a')).statusCode).toBe(200);
    expect((await probe('10.0.0.1', central, 'key-a')).statusCode).toBe(429);
    expect((await probe('10.0.0.1', central, 'key-b')).statusCode).toBe(200);
  });
});

describe('ClientQuotas', () => {
  it('keeps a fixed window per client, says when it has room again, and gives back unsent queries', () => {
    let now = 1_000_000;
    const quotas = new ClientQuotas(10, 60_000, 100, () => now);
    const a = quotas.admit('a', 6);
    expect(a.ok).toBe(true);
    now += 20_000;
    expect(quotas.admit('a', 5)).toEqual({ ok: false, used: 6, left: 4, retryAfterMs: 40_000 });
    expect(quotas.admit('b', 10).ok).toBe(true);
    if (!a.ok) throw new Error('unreachable');
    expect(quotas.take(a.reservation)).toBe(true); // 7 used
    quotas.refund(a.reservation, 4); // 3 used
    expect(quotas.admit('a', 7).ok).toBe(true);
    expect(quotas.take(a.reservation)).toBe(false);
    // A new window: everything again; a refund to the old one changes nothing.
    now += 40_000;
    expect(quotas.admit('a', 10).ok).toBe(true);
    quotas.refund(a.reservation, 10);
    expect(quotas.admit('a', 1).ok).toBe(false);
  });

  it('forgets closed windows, and never tracks more than maxClients', () => {
    let now = 0;
    const quotas = new ClientQuotas(5, 1000, 3, () => now);
    for (const client of ['a', 'b', 'c']) quotas.admit(client, 5);
    expect(quotas.clients).toBe(3);
    quotas.admit('d', 1); // the oldest window (a's) is forgotten
    expect(quotas.clients).toBe(3);
    expect(quotas.admit('a', 5).ok).toBe(true);
    expect(quotas.admit('c', 1).ok).toBe(false);
    now = 1000;
    expect(quotas.clients).toBe(0);
    for (let i = 0; i < 1000; i++) quotas.admit(`client-${i}`, 1);
    expect(quotas.clients).toBe(3);
  });

  it('is unlimited at 0 and then tracks no one', () => {
    const quotas = new ClientQuotas(0);
    for (let i = 0; i < 100; i++) expect(quotas.admit(`c${i}`, 1e9).ok).toBe(true);
    expect(quotas.clients).toBe(0);
  });
});
