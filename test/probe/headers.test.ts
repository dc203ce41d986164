// Probe target headers (issue 20, item 3): names and values checked as RFC 9110 fields at the door,
// a query the HTTP client refuses or never settles never keeps its place (the server-wide
// semaphore, the client's connection), and every query ends by its timeoutMs whatever undici does.

import type { Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QueryMeter, HttpBlackBox } from '../../src/probe/black-box.js';
import { BodyTemplate } from '../../src/probe/body-template.js';
import { GuardedClient, type Attempt, type TargetClient } from '../../src/probe/client.js';
import { ProbeFailure } from '../../src/probe/failure.js';
import { headerNameProblem, headerValueProblem } from '../../src/probe/headers.js';
import { ProbeError } from '../../src/probe/errors.js';
import { Semaphore } from '../../src/probe/semaphore.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { Bench, serveModel, type FakeModel } from './fake-model.js';

/** Every character a header value may not hold anywhere, named for the test's title. */
const REFUSED_VALUES: [string, string][] = [
  ...Array.from({ length: 0x20 }, (_, c) => c)
    .filter((c) => c !== 0x09)
    .map((c): [string, string] => [`U+${c.toString(16).padStart(4, '0')}`, `a${String.fromCharCode(c)}b`]),
  ['DEL', 'a\u007fb'],
  ['U+2028 (line separator)', 'a\u2028b'],
  ['U+2029 (paragraph separator)', 'a\u2029b'],
  ['obs-text U+0080', 'a\u0080b'],
  ['obs-text é', 'caf\u00e9'],
  ['obs-text U+00FF', '\u00ff'],
  ['an emoji', 'a\u{1F600}'],
  ['a lone surrogate', 'a\ud800'],
  ['a leading space', ' a'],
  ['a trailing space', 'a '],
  ['a leading tab', '\ta'],
  ['a trailing tab', 'a\t'],
  ['only spaces', '   '],
];
const ACCEPTED_VALUES = ['Bearer abc.DEF-123', 'a b', 'a\tb', '', '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', 'x'];
const REFUSED_NAMES = ['x a', 'x:a', 'x\u0001', 'x\u2028', 'caf\u00e9', '(x)', 'x/y', 'x"'];

describe('header fields', () => {
  it.each(REFUSED_VALUES)('refuses a value holding %s', (_, value) => {
    expect(headerValueProblem(value)).toBeDefined();
  });

  it.each(ACCEPTED_VALUES)('accepts the value %j', (value) => {
    expect(headerValueProblem(value)).toBeUndefined();
  });

  it('names the character refused, and refuses reserved and malformed names', () => {
    expect(headerValueProblem('a\u2028b')).toMatch(/U\+2028/);
    expect(headerValueProblem('a\u0001b')).toMatch(/U\+0001/);
    expect(headerValueProblem(' a')).toMatch(/begin or end/);
    for (const name of REFUSED_NAMES) expect(headerNameProblem(name), name).toMatch(/not a valid header name/);
    expect(headerNameProblem('Host')).toMatch(/set by the server/);
    expect(headerNameProblem('X-Api-Key')).toBeUndefined();
  });
});

describe('POST /probe target.headers', () => {
  let model: FakeModel;
  let app: App;
  const received: (string | string[] | undefined)[] = [];
  beforeAll(async () => {
    model = await serveModel((input, { request }) => {
      received.push(request.headers['x-test']);
      return { json: { logits: [3 * (input as number[])[0]!] } };
    });
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], MAX_EVENT_LOOP_DELAY_MS: 0 });
  });
  afterAll(async () => {
    await app.close();
    await model.close();
  });
  const probe = (headers: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/probe',
      payload: { target: { url: model.url, headers, body: { input: '$input' }, outputPath: '/logits/0' }, at: [1], method: 'forward', timeoutMs: 2000 },
    });

  it('answers 400 naming the header for every refused value, and sends nothing', async () => {
    const before = model.requests;
    for (const [what, value] of REFUSED_VALUES) {
      const response = await probe({ 'X-Test': value });
      expect(response.statusCode, what).toBe(400);
      const problem = response.json() as { code: string; errors: { path: string }[] };
      expect(problem.code, what).toBe('validation_error');
      expect(problem.errors[0]!.path, what).toBe('target.headers.X-Test');
    }
    for (const name of REFUSED_NAMES) {
      const response = await probe({ [name]: 'v' });
      expect(response.statusCode, name).toBe(400);
      expect((response.json() as { code: string }).code).toBe('validation_error');
    }
    expect(model.requests).toBe(before);
  });

  it('sends every accepted value as it is', async () => {
    for (const value of ACCEPTED_VALUES) {
      const response = await probe({ 'X-Test': value });
      expect(response.statusCode, `${JSON.stringify(value)}: ${response.body}`).toBe(200);
      expect(received.at(-1)).toBe(value);
    }
  });

  it('is refused when submitted as a job too, before the job exists', async () => {
    const target = { url: model.url, headers: { 'X-Test': 'a\u0001b' }, body: { input: '$input' }, outputPath: '/logits/0' };
    const job = await app.inject({ method: 'POST', url: '/jobs', payload: { kind: 'probe', request: { target, at: [1], method: 'forward' } } });
    expect(job.statusCode).toBe(400);
    expect(job.json()).toMatchObject({ code: 'validation_error', errors: [{ path: 'request.target.headers.X-Test' }] });
    const async = await app.inject({ method: 'POST', url: '/probe?async=true', payload: { target, at: [1], method: 'forward' } });
    expect(async.statusCode).toBe(400);
    expect(async.json()).toMatchObject({ code: 'validation_error', errors: [{ path: expect.stringMatching(/target\.headers\.X-Test$/) }] });
  });

  it('is checked by the prober too (a job’s stored request does not pass the route’s schema)', async () => {
    const refused = app.prober.probe({
      target: { url: model.url, headers: { 'X-Test': 'a\u2028b' }, body: { input: '$input' }, outputPath: '/logits/0' },
      at: [1],
      method: 'forward',
    });
    await expect(refused).rejects.toBeInstanceOf(ProbeError);
    await expect(refused).rejects.toMatchObject({ code: 'validation_error', extra: { header: 'X-Test', errors: [{ path: 'target.headers.X-Test' }] } });
    await expect(refused).rejects.toThrow(/U\+2028/);
  });
});

/** The parts of an HTTP black box over `client`, its places in flight bounded by `outgoing`. */
function boxOver(client: TargetClient, outgoing: Semaphore, signal = new AbortController().signal): HttpBlackBox {
  const template = BodyTemplate.compile({ input: '$input' })!;
  const meter = new QueryMeter(100, 100);
  const quick = { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 };
  return new HttpBlackBox(client, template, { text: '/y', tokens: ['y'] }, meter, signal, Date.now() + 60_000, outgoing, {}, quick);
}

const answering: TargetClient = { send: async () => ({ kind: 'answer', json: { y: 7 } }) satisfies Attempt, close: async () => undefined };

describe('a query the client refuses keeps no place', () => {
  const clients: [string, TargetClient][] = [
    [
      'throws synchronously',
      {
        send: () => {
          throw new ProbeFailure('target_error', 'refused at once');
        },
        close: async () => undefined,
      },
    ],
    ['rejects', { send: async () => Promise.reject(new ProbeFailure('target_error', 'refused later')), close: async () => undefined }],
    ['throws a plain error synchronously', { send: () => { throw new TypeError('invalid header'); }, close: async () => undefined }],
  ];

  it.each(clients)('a client that %s: after more refusals than places, the next query runs at once', async (_, client) => {
    const outgoing = new Semaphore(2);
    const box = boxOver(client, outgoing);
    for (let i = 0; i < 5; i++) await expect(box.logits([i])).rejects.toThrow(/refused|invalid header/);
    expect(outgoing.inUse).toBe(0);
    // Every place is free: two good queries at once on the same semaphore both answer.
    const good = boxOver(answering, outgoing);
    await expect(Promise.all([good.logits([1]), good.logits([2])])).resolves.toEqual([7, 7]);
    expect(outgoing.inUse).toBe(0);
  });

  it('a client that never settles gives its place back when the probe stops', async () => {
    const outgoing = new Semaphore(1);
    const stop = new AbortController();
    const never: TargetClient = { send: () => new Promise<Attempt>(() => undefined), close: async () => undefined };
    const stuck = boxOver(never, outgoing, stop.signal).logits([1]);
    stuck.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(outgoing.inUse).toBe(1);
    stop.abort(new ProbeFailure('timeout', 'stopped'));
    await expect(stuck).rejects.toThrow('stopped');
    expect(outgoing.inUse).toBe(0);
    await expect(boxOver(answering, outgoing).logits([1])).resolves.toBe(7);
  });
});

/** A GuardedClient for 127.0.0.1:`port` sending through `dispatcher` (its own undici Agent when undefined). */
function clientFor(port: number, options: { dispatcher?: Dispatcher; headers?: Record<string, string>; timeoutMs?: number; connections?: number } = {}): GuardedClient {
  return new GuardedClient(
    { url: new URL(`http://127.0.0.1:${port}/predict`), address: '127.0.0.1', family: 4 },
    { method: 'POST', headers: options.headers ?? {}, timeoutMs: options.timeoutMs ?? 300, maxResponseBytes: 1 << 20, connections: options.connections ?? 2, dispatcher: options.dispatcher },
  );
}

/** Resolves to what `promise` settled with, or 'pending' after `ms` (a generous bound: "did not hang"). */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<{ ok: T } | { error: unknown } | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([promise.then((ok) => ({ ok }), (error: unknown) => ({ error })), pending]);
  } finally {
    clearTimeout(timer);
  }
}

describe('GuardedClient: every query ends by its timeoutMs, whatever undici does', () => {
  const bench = new Bench();
  afterEach(() => bench.close());
  const signal = new AbortController().signal;

  it('a dispatcher that throws synchronously: a clear refusal, not a retry', async () => {
    const refusing = { dispatch: () => { throw new TypeError('invalid x-test header'); } } as unknown as Dispatcher;
    const client = clientFor(1, { dispatcher: refusing });
    for (let i = 0; i < 5; i++) {
      const error = await client.send('{}', signal).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(ProbeFailure);
      expect((error as ProbeFailure).kind).toBe('target_error');
      expect((error as ProbeFailure).message).toMatch(/refused to send the query \(invalid x-test header\).*not sent again/);
    }
  });

  it('a dispatcher that rejects with a network error: unreachable (worth one more try)', async () => {
    const failing = {
      dispatch: (_: unknown, handler: { onError(e: Error): void }) => {
        setImmediate(() => handler.onError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
        return true;
      },
    } as unknown as Dispatcher;
    await expect(clientFor(1, { dispatcher: failing }).send('{}', signal)).resolves.toEqual({ kind: 'unreachable', reason: 'ECONNREFUSED' });
  });

  it('a dispatcher that never answers and ignores the signal: a timeout after timeoutMs', async () => {
    const silent = { dispatch: () => true } as unknown as Dispatcher;
    const client = clientFor(1, { dispatcher: silent, timeoutMs: 200 });
    const started = performance.now();
    const outcome = await settledWithin(client.send('{}', signal), 10_000);
    expect(outcome).not.toBe('pending');
    expect((outcome as { error: ProbeFailure }).error).toMatchObject({ kind: 'timeout', message: expect.stringMatching(/within timeoutMs = 200 ms/) });
    // Not before its time limit (timers may fire a millisecond early).
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('undici’s own agent, refusing a header it cannot write more times than it has connections: every query still ends', async () => {
    const { model } = await bench.serve(() => ({ json: { y: 1 } }));
    // Built past the prober's check on purpose: what undici does with such a header.
    const client = clientFor(model.port, { headers: { 'x-test': 'a\u0001b' }, timeoutMs: 300, connections: 2 });
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await settledWithin(client.send('{}', signal), 10_000));
    expect(outcomes).not.toContain('pending');
    for (const outcome of outcomes) expect((outcome as { error: unknown }).error).toBeInstanceOf(ProbeFailure);
    expect((outcomes[0] as { error: ProbeFailure }).error.message).toMatch(/refused to send the query/);
    expect(await settledWithin(client.close(), 10_000)).not.toBe('pending');
    expect(model.requests).toBe(0);
  });

  it('a target that never answers: every probe ends with 504 by its timeoutMs, and the server’s places come back', async () => {
    const { model, app } = await bench.serve((input) => ((input as unknown[])[0] === 'slow' ? { json: { y: 0 }, delayMs: 60_000 } : { json: { logits: [2 * (input as number[])[0]!] } }), {
      PROBE_MAX_OUTGOING: 2,
      MAX_EVENT_LOOP_DELAY_MS: 0,
    });
    const probe = (at: unknown, method: string, timeoutMs = 200) =>
      app.inject({ method: 'POST', url: '/probe', payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, at, method, timeoutMs } });
    // Three probes that hang, one after another: more than PROBE_MAX_OUTGOING.
    for (let i = 0; i < 3; i++) {
      const response = await settledWithin(probe(['slow'], 'occlusion'), 20_000);
      expect(response).not.toBe('pending');
      const { ok } = response as { ok: Awaited<ReturnType<typeof probe>> };
      expect(ok.statusCode).toBe(504);
      expect((ok.json() as { detail: string }).detail).toMatch(/timeoutMs = 200 ms/);
    }
    // Time enough for a loaded machine: held places would keep it waiting past it all the same.
    const good = await probe([1], 'forward', 10_000);
    expect(good.statusCode, good.body).toBe(200);
    expect((good.json() as { gradient: number[] }).gradient[0]).toBeCloseTo(2, 6);
  });
});
