// Large request bodies off the event loop (issue 20, item 7): a body of BODY_WORKER_THRESHOLD_BYTES
// or more is parsed, and its encoded arrays decoded, on a body worker thread. The answer is the one
// a body parsed on the event loop gets, byte for byte (nested JSON, base64, gzip); every refusal
// keeps its status, code, detail and path; the event loop keeps turning while large bodies are
// parsed; and the bytes of all bodies in flight are bounded by BODY_MAX_INFLIGHT_BYTES (503 with
// Retry-After past it, given back when each answer is sent), gzip bombs included.

import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { decodeEncodedArrays } from '../../src/service/body-decode.js';
import { buildTestApp } from '../helpers.js';

const THRESHOLD = 64 * 1024;
const MAX_ITEMS = 20_000;
const MAX_ELEMENTS = 300_000;
// No 503 for a delayed event loop (loading the test's modules delays it): these tests are about bodies.
const LIMITS = { BODY_MAX_ITEMS: MAX_ITEMS, MAX_TENSOR_ELEMENTS: MAX_ELEMENTS, MAX_EVENT_LOOP_DELAY_MS: 0 };

/** Registers a route that says what the parsed body holds: which `data` members arrived decoded, and the body written back as JSON. */
function withEcho(app: App): App {
  app.post('/body-echo', async (request) => {
    const at = (request.body as { at?: Record<string, { data?: unknown }> }).at ?? {};
    const decoded = Object.keys(at).filter((name) => at[name]?.data instanceof Float64Array);
    return { decoded, json: JSON.stringify(request.body) };
  });
  return app;
}

let onWorker: App;
let inline: App;
beforeAll(async () => {
  onWorker = withEcho(buildTestApp({ ...LIMITS, WORKERS: 1, BODY_WORKER_THRESHOLD_BYTES: THRESHOLD }));
  // The same limits, every body parsed on the event loop.
  inline = withEcho(buildTestApp({ ...LIMITS, WORKERS: 0 }));
  await Promise.all([onWorker.ready(), inline.ready()]);
}, 60_000);
afterAll(() => Promise.all([onWorker.close(), inline.close()]));

/** Deterministic values, some not finite (their bits travel in base64). */
function values(n: number, seed: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37 + seed) * 10 ** ((i % 7) - 3);
  x[n >> 1] = NaN;
  x[n >> 2] = -Infinity;
  return x;
}
const base64Of = (x: Float64Array): string => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
const encoded = (x: Float64Array, shape = [x.length]) => ({ dtype: 'float64', shape, data: base64Of(x) });

const X = values(100_000, 1);
const BASE64 = JSON.stringify({ expr: 'sum(x * x) + sum(sin(y))', at: { x: encoded(X), y: encoded(values(20_000, 2)) } });
const BASE64_ANSWER = JSON.stringify({ expr: 'x * 2', at: { x: encoded(X) }, encoding: 'base64' });
const NESTED = JSON.stringify({ expr: 'sum(x * x)', at: { x: Array.from(values(15_000, 3).map((v) => (Number.isFinite(v) ? v : 0))) } });
const GRAPH = JSON.stringify({
  graph: {
    nodes: [
      { id: 'c', op: 'const', attrs: { value: encoded(values(20_000, 4)) } },
      { id: 'p', op: 'mul', args: ['x', 'c'] },
      { id: 's', op: 'sum', args: ['p'] },
    ],
    output: 's',
  },
  at: { x: encoded(values(20_000, 5)) },
});

interface Exchange {
  status: number;
  type: string | undefined;
  body: string;
}

async function post(app: App, url: string, payload: string | Buffer, headers: Record<string, string> = {}): Promise<Exchange> {
  const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload });
  return { status: res.statusCode, type: res.headers['content-type'] as string | undefined, body: res.body };
}

/** The answers of both apps to the same request, and how many bodies the worker app parsed on its worker meanwhile. */
async function both(url: string, payload: string | Buffer, headers: Record<string, string> = {}) {
  const before = onWorker.bodies.parsedOnWorkers();
  const [worker, here] = await Promise.all([post(onWorker, url, payload, headers), post(inline, url, payload, headers)]);
  return { worker, here, parsedOnWorker: onWorker.bodies.parsedOnWorkers() - before };
}

describe('a large body parsed on a worker', () => {
  it.each([
    ['base64 arrays', '/grad', BASE64],
    ['base64 arrays, answered in base64', '/eval', BASE64_ANSWER],
    ['nested JSON arrays', '/grad', NESTED],
    ['a graph with a large encoded constant', '/grad', GRAPH],
  ])('gives the answer a body parsed on the event loop gets, byte for byte: %s', async (_what, url, body) => {
    expect(Buffer.byteLength(body)).toBeGreaterThanOrEqual(THRESHOLD);
    const { worker, here, parsedOnWorker } = await both(url, body);
    expect(parsedOnWorker).toBe(1);
    expect(here.status).toBe(200);
    expect(worker).toEqual(here);
  });

  it('gives the same answer for a gzip body (its decompressed size past the threshold)', async () => {
    const zipped = gzipSync(BASE64);
    expect(zipped.length).toBeLessThan(BASE64.length);
    const { worker, here, parsedOnWorker } = await both('/grad', zipped, { 'content-encoding': 'gzip' });
    expect(parsedOnWorker).toBe(1);
    expect(here.status).toBe(200);
    expect(worker).toEqual(here);
    expect(worker).toEqual((await both('/grad', BASE64)).here);
  });

  it('hands the route its encoded arrays decoded, and JSON.stringify writes the body back as it was sent', async () => {
    const { worker, here } = await both('/body-echo', BASE64);
    expect(JSON.parse(worker.body)).toEqual({ decoded: ['x', 'y'], json: BASE64 });
    expect(JSON.parse(here.body)).toEqual({ decoded: [], json: BASE64 });
  });

  it('leaves base64 whose last character carries stray bits as text (written back unchanged), with the same answer', async () => {
    // 20,000 float64s are 160,000 bytes: base64 ends with "==", and the character before carries 4 unused bits.
    const data = base64Of(values(20_000, 6));
    expect(data.endsWith('==')).toBe(true);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const stray = `${data.slice(0, -3)}${alphabet[alphabet.indexOf(data.at(-3)!) | 1]}==`;
    expect(stray).not.toBe(data);
    expect(Buffer.from(stray, 'base64').equals(Buffer.from(data, 'base64'))).toBe(true);
    const body = JSON.stringify({ expr: 'sum(x)', at: { x: { dtype: 'float64', shape: [20_000], data: stray } } });
    const echo = await both('/body-echo', body);
    expect(JSON.parse(echo.worker.body)).toEqual({ decoded: [], json: body });
    const { worker, here } = await both('/eval', body);
    expect(here.status).toBe(200);
    expect(worker).toEqual(here);
  });
});

describe('decodeEncodedArrays (what the body worker does after parsing)', () => {
  const MIN = 16;
  it('decodes every long, valid, canonical encoded array wherever it sits, and only those', () => {
    const a = values(40, 11);
    const b = values(1, 12); // 12 characters of base64
    const bad = { dtype: 'float64', shape: [40], data: `${base64Of(a).slice(0, 100)}-${base64Of(a).slice(101)}` };
    const extraKey = { ...encoded(a), note: 'x' };
    const tooMany = encoded(values(60, 13));
    const value = JSON.parse(JSON.stringify({ at: { a: encoded(a), b: encoded(b) }, points: [[{ deep: encoded(a) }]], bad, extraKey, tooMany })) as Record<string, unknown>;
    const decoded = decodeEncodedArrays(value, 50, MIN);
    expect(decoded).toHaveLength(2);
    const at = value.at as Record<string, { data: unknown }>;
    expect(at.a!.data).toEqual(a);
    expect(typeof at.b!.data).toBe('string'); // shorter than MIN characters
    expect(((value.points as { deep: { data: unknown } }[][])[0]![0]!.deep.data as Float64Array).buffer).not.toBe((at.a!.data as Float64Array).buffer);
    // Left as text for the request layer to refuse, at its own path.
    expect(typeof (value.bad as { data: unknown }).data).toBe('string');
    expect(typeof (value.extraKey as { data: unknown }).data).toBe('string');
    expect(typeof (value.tooMany as { data: unknown }).data).toBe('string');
  });

  it('keeps NaN, infinities and signed zeros bit for bit', () => {
    const x = new Float64Array([NaN, -0, Infinity, -Infinity, 5e-324, Number.MAX_VALUE, 0, 1]);
    const value = JSON.parse(JSON.stringify({ x: encoded(x) })) as { x: { data: Float64Array } };
    decodeEncodedArrays(value, 100, MIN);
    expect(Buffer.from(value.x.data.buffer).equals(Buffer.from(x.buffer))).toBe(true);
  });
});

describe('a large body refused on a worker', () => {
  const withData = (data: string, shape = [X.length]) => JSON.stringify({ expr: 'sum(x)', at: { x: { dtype: 'float64', shape, data } } });
  const data = base64Of(X);
  const at = (i: number, c: string) => data.slice(0, i) + c + data.slice(i + 1);
  const items = JSON.stringify({ expr: 'sum(x)', at: { x: Array.from({ length: MAX_ITEMS + 5 }, (_, i) => (i % 10) + 0.123456789) } });
  const bomb = Buffer.concat(Array.from({ length: 8 }, () => gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20))));

  it.each([
    ['malformed JSON', 400, 'invalid_json', BASE64.slice(0, -1)],
    ['a base64url character', 400, 'validation_error', withData(at(123_457, '-'))],
    ['a character outside base64', 400, 'validation_error', withData(at(98_765, '*'))],
    ['padding inside the text', 400, 'validation_error', withData(at(4000, '='))],
    ['data of the wrong length for its shape', 400, 'validation_error', withData(data, [X.length + 1])],
    ['more elements than MAX_TENSOR_ELEMENTS', 422, 'limit_exceeded', withData(base64Of(values(MAX_ELEMENTS + 1, 7)), [MAX_ELEMENTS + 1])],
    ['more commas than BODY_MAX_ITEMS', 413, 'limit_exceeded', items],
    ['a __proto__ key', 400, 'validation_error', `{"__proto__":{"polluted":1},${BASE64.slice(1)}`],
    ['a constructor.prototype key deep inside', 400, 'validation_error', BASE64.replace('"at":{', '"at":{"k":[[{"constructor":{"prototype":1}}]],')],
  ])('%s: the same status, code, detail and path as on the event loop', async (_what, status, code, body) => {
    expect(Buffer.byteLength(body)).toBeGreaterThanOrEqual(THRESHOLD);
    const { worker, here } = await both('/grad', body);
    expect(here.status).toBe(status);
    expect(JSON.parse(here.body)).toMatchObject({ status, code });
    expect(worker).toEqual(here);
  });

  it('names where a bad character is, on a worker as on the event loop', async () => {
    const { worker } = await both('/grad', withData(at(123_457, '-')));
    expect(JSON.parse(worker.body).detail).toContain('at.x.data has "-" at character 123457');
  });

  it('a gzip bomb: 413 as soon as it decompresses past BODY_LIMIT, as on the event loop', async () => {
    const { worker, here } = await both('/grad', bomb, { 'content-encoding': 'gzip' });
    expect(here.status).toBe(413);
    expect(worker).toEqual(here);
  });
});

describe('the event loop while large bodies are parsed', () => {
  // The default configuration (BODY_WORKER_THRESHOLD_BYTES 1 MiB), with a worker.
  let app: App;
  beforeAll(async () => {
    app = buildTestApp({ WORKERS: 1, MAX_EVENT_LOOP_DELAY_MS: 0 });
    await app.ready();
  }, 60_000);
  afterAll(() => app.close());

  it('keeps turning: timers fire throughout, and the loop is stalled for a small part of the time it takes', async () => {
    // Three bodies of 2,000,000 float64s (21 MB of base64 each): parsing and decoding each holds
    // the event loop for a large part of a second; here they are parsed on the worker, while a
    // 1 ms timer counts the loop's turns and adds up the gaps of more than 50 ms (stalls).
    const bodies = [1, 2, 3].map((seed) => Buffer.from(JSON.stringify({ expr: 'sum(x)', at: { x: encoded(values(2_000_000, seed)) } })));
    const before = app.bodies.parsedOnWorkers();
    let ticks = 0;
    let stalled = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      if (now - last > 50) stalled += now - last;
      last = now;
      ticks++;
    }, 1);
    const started = performance.now();
    const answers = await Promise.all(bodies.map((body) => post(app, '/eval', body)));
    const took = performance.now() - started;
    clearInterval(timer);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(app.bodies.parsedOnWorkers() - before).toBe(3);
    // Generous bounds: parsed on the event loop, the three bodies stall it for most of `took`.
    expect(ticks).toBeGreaterThan(10);
    expect(stalled).toBeLessThan(took / 2);
  }, 120_000);
});

describe('BODY_MAX_INFLIGHT_BYTES', () => {
  const BUDGET = 1_000_000;
  let app: App;
  let port: number;
  beforeAll(async () => {
    app = buildTestApp({ BODY_MAX_INFLIGHT_BYTES: BUDGET, BODY_LIMIT: 2_000_000, MAX_EVENT_LOOP_DELAY_MS: 0 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
  });
  afterAll(() => app.close());

  const BODY = JSON.stringify({ expr: 'sum(x)', at: { x: encoded(values(80_000, 8)) } });

  /** A POST /eval sent on its own connection, its body in two parts (`first` bytes, then the rest when `more` resolves); its status and problem code. */
  async function send(body: string, first: number, more: Promise<void> = Promise.resolve()) {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined);
    const closed = once(socket, 'close');
    socket.write(`POST /eval HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`);
    socket.write(body.slice(0, first));
    await more;
    if (!socket.destroyed) socket.end(body.slice(first));
    await closed;
    const text = Buffer.concat(received).toString('latin1');
    const status = Number(text.split(' ')[1]);
    const retryAfter = /^retry-after: *(\d+)/im.exec(text)?.[1];
    const problem = text.includes('application/problem+json') ? (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { code: string }) : undefined;
    return { status, code: problem?.code, retryAfter };
  }

  async function until(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !condition(); i++) await sleep(10);
    expect(condition()).toBe(true);
  }

  it('refuses a large body with 503 and Retry-After while others hold the budget, and takes it once they are answered', async () => {
    expect(BODY.length).toBeGreaterThan(BUDGET / 2);
    let release!: () => void;
    const later = new Promise<void>((resolve) => (release = resolve));
    // The first body arrives in part and is held there: its bytes count.
    const first = send(BODY, 600_000, later);
    await until(() => app.bodies.budget.held >= 600_000);
    const second = await send(BODY, BODY.length);
    expect(second).toEqual({ status: 503, code: 'overloaded', retryAfter: '2' });
    release();
    expect(await first).toMatchObject({ status: 200 });
    // Given back when the answers were sent.
    await until(() => app.bodies.budget.held === 0);
    expect(await send(BODY, BODY.length)).toMatchObject({ status: 200 });
    await until(() => app.bodies.budget.held === 0);
  });

  it('bounds a burst of gzip bombs: each refused with 413 or 503 (with Retry-After), all bytes given back after', async () => {
    const bomb = Buffer.concat(Array.from({ length: 4 }, () => gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20))));
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, app.bodies.budget.held)), 1);
    const answers = await Promise.all(
      Array.from({ length: 16 }, () =>
        app.inject({ method: 'POST', url: '/eval', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: bomb }),
      ),
    );
    clearInterval(watch);
    for (const res of answers) {
      const problem = res.json<{ code: string }>();
      expect([413, 503]).toContain(res.statusCode);
      expect(problem.code).toBe(res.statusCode === 413 ? 'limit_exceeded' : 'overloaded');
      if (res.statusCode === 503) expect(res.headers['retry-after']).toBeDefined();
    }
    // Never past the budget by more than one decompressed chunk per body.
    expect(most).toBeLessThanOrEqual(BUDGET + 16 * 64 * 1024);
    await until(() => app.bodies.budget.held === 0);
  });

  it('lets small bodies through whatever large ones hold', async () => {
    let release!: () => void;
    const later = new Promise<void>((resolve) => (release = resolve));
    const large = send(BODY, 600_000, later);
    await until(() => app.bodies.budget.held >= 600_000);
    const small = await app.inject({ method: 'POST', url: '/eval', headers: { 'content-type': 'application/json' }, payload: { expr: 'x + 1', at: { x: 1 } } });
    expect(small.statusCode).toBe(200);
    release();
    expect(await large).toMatchObject({ status: 200 });
  });
});
