// MessagePack bodies and answers (issue 24, "tensors without text"): every differentiation
// endpoint answers the same float64 bits for a MessagePack request as for its JSON twin, tensors
// travel as bins, the limits hold as they do for JSON, and a malformed body is a 400 with a code.

import { decode, encode } from '@msgpack/msgpack';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { scanMsgpack } from '../../src/service/msgpack-decode.js';
import { prefersMsgpack } from '../../src/service/msgpack-answer.js';
import { buildTestApp } from '../helpers.js';

const MAX_ITEMS = 20_000;
const LIMITS = { BODY_MAX_ITEMS: MAX_ITEMS, RATE_LIMIT_MAX: 0, MAX_EVENT_LOOP_DELAY_MS: 0 };

let inline: App;
let onWorker: App;
beforeAll(async () => {
  inline = buildTestApp({ ...LIMITS, WORKERS: 0 });
  // Bodies from 64 KiB on are parsed on a body worker; computations run on a compute worker (answers serialised there).
  onWorker = buildTestApp({ ...LIMITS, WORKERS: 1, BODY_WORKER_THRESHOLD_BYTES: 64 * 1024 });
  await Promise.all([inline.ready(), onWorker.ready()]);
}, 60_000);
afterAll(() => Promise.all([inline.close(), onWorker.close()]));

function values(n: number, seed: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37 + seed) * 10 ** ((i % 7) - 3);
  return x;
}
const bytesOf = (x: Float64Array): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const asBase64 = (x: Float64Array) => ({ dtype: 'float64', shape: [x.length], data: Buffer.from(bytesOf(x)).toString('base64') });
const asBin = (x: Float64Array) => ({ dtype: 'float64', shape: [x.length], data: bytesOf(x) });

async function postJson(app: App, url: string, body: unknown): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
}
async function postMsgpack(app: App, url: string, body: Uint8Array, type = 'application/msgpack', accept = 'application/msgpack'): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, headers: { 'content-type': type, accept }, payload: Buffer.from(body) });
}

/**
 * An answer with every tensor as hex of its float64 bytes (base64 from JSON, bins from MessagePack)
 * and every number as the hex of its bits: equal forms mean bit-identical answers.
 */
function canonical(value: unknown): unknown {
  const bits = (n: number) => Buffer.from(new Float64Array([n]).buffer).toString('hex');
  if (typeof value === 'number') return `f:${bits(value)}`;
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  if (record.dtype === 'float64' && Array.isArray(record.shape)) {
    const data = record.data;
    const hex = data instanceof Uint8Array ? Buffer.from(data).toString('hex') : Buffer.from(String(data), 'base64').toString('hex');
    return { tensor: record.shape, hex };
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, canonical(v)]));
}

const X = values(300, 1);
const Y = values(300, 2);
const T = values(300, 3);
const SCALAR = 'sum(sin(x) * y) + sum(x * x * tanh(y))';
const VECTOR = 'sin(x) * y + exp(x / 10)';
const CASES: [string, Record<string, unknown>][] = [
  ['/eval', { expr: SCALAR }],
  ['/grad', { expr: SCALAR }],
  ['/jvp', { expr: VECTOR, tangents: { x: 'T', y: 'T' } }],
  ['/vjp', { expr: VECTOR, cotangent: 'T' }],
  ['/jacobian', { expr: VECTOR }],
  ['/hessian', { expr: 'sum(sin(x) * y)' }],
  ['/hvp', { expr: SCALAR, vector: { x: 'T', y: 'T' } }],
  ['/check', { expr: SCALAR, seed: 7 }],
];

/** The request with its tensors (X, Y, and T where 'T' stands) written by `write`. */
function requestWith(extra: Record<string, unknown>, write: (x: Float64Array) => unknown): Record<string, unknown> {
  const fill = (v: unknown): unknown => (v === 'T' ? write(T) : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, w]) => [k, fill(w)])) : v);
  return { ...(fill(extra) as Record<string, unknown>), at: { x: write(X), y: write(Y) } };
}

describe('every differentiation endpoint answers MessagePack with the bits of its JSON answer', () => {
  for (const [url, extra] of CASES) {
    it(url, async () => {
      const json = await postJson(inline, url, { ...requestWith(extra, asBase64), encoding: 'base64' });
      expect(json.statusCode, json.body).toBe(200);
      for (const app of [inline, onWorker]) {
        const packed = await postMsgpack(app, url, encode(requestWith(extra, asBin)));
        expect(packed.statusCode, packed.body).toBe(200);
        expect(packed.headers['content-type']).toMatch(/^application\/msgpack/);
        const answer = decode(packed.rawPayload);
        expect(canonical(answer)).toEqual(canonical(json.json()));
      }
    });
  }

  it('reads nested arrays and non-finite floats as plain MessagePack numbers', async () => {
    const res = await postMsgpack(inline, '/eval', encode({ expr: 'x * 2', at: { x: [1.5, NaN, -Infinity] } }));
    expect(res.statusCode, res.body).toBe(200);
    const answer = decode(res.rawPayload) as { value: { data: Uint8Array; shape: number[] } };
    expect(answer.value.shape).toEqual([3]);
    const data = answer.value.data;
    const out = new Float64Array(new Uint8Array(data).buffer);
    expect(out[0]).toBe(3);
    expect(out[1]).toBeNaN();
    expect(out[2]).toBe(-Infinity);
  });
});

describe('a large tensor', () => {
  const big = values(250_000, 5); // 2 MB of bin: parsed on the body worker
  for (const which of ['inline', 'onWorker'] as const) {
    it(`round-trips through /eval bit for bit (${which})`, async () => {
      const app = which === 'inline' ? inline : onWorker;
      const res = await postMsgpack(app, '/eval', encode({ expr: 'x', at: { x: asBin(big) } }));
      expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
      const answer = decode(res.rawPayload) as { value: { data: Uint8Array } };
      expect(Buffer.from(answer.value.data).equals(Buffer.from(bytesOf(big)))).toBe(true);
      // The same request as JSON base64 answers the same bytes.
      const json = await postJson(app, '/eval', { expr: 'x', at: { x: asBase64(big) }, encoding: 'base64' });
      expect(Buffer.from(json.json().value.data, 'base64').equals(Buffer.from(answer.value.data))).toBe(true);
    }, 60_000);
  }

  it('is read from an unaligned bin', async () => {
    // A one-character expr puts the bin at an odd offset in the body.
    const body = encode({ e: 'x', expr: 'x', at: { x: asBin(X) } });
    const at = Buffer.from(body).indexOf(Buffer.from(bytesOf(X)));
    expect(at % 8).not.toBe(0);
    const { e: _e, ...request } = decode(body) as Record<string, unknown>;
    const res = await postMsgpack(inline, '/eval', encode(request));
    expect(res.statusCode, res.body).toBe(200);
    expect(Buffer.from((decode(res.rawPayload) as { value: { data: Uint8Array } }).value.data).equals(Buffer.from(bytesOf(X)))).toBe(true);
  });
});

describe('malformed and hostile MessagePack bodies', () => {
  async function problem(app: App, body: Uint8Array, status: number, code: string) {
    const res = await postMsgpack(app, '/grad', body);
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const json = res.json();
    expect(json.code).toBe(code);
    return json as { detail: string; errors?: { path: string; message: string }[] };
  }

  it('a truncated body is a 400 invalid_msgpack', async () => {
    const whole = encode({ expr: 'sum(x)', at: { x: asBin(X) } });
    for (const cut of [1, 10, whole.length - 1]) {
      const json = await problem(inline, whole.subarray(0, cut), 400, 'invalid_msgpack');
      expect(json.detail).toMatch(/not valid MessagePack/);
    }
  });

  it('trailing bytes, unused byte 0xc1, extension types and an empty body are 400 invalid_msgpack', async () => {
    const whole = encode({ expr: 'sum(x)', at: { x: 1 } });
    await problem(inline, Buffer.concat([whole, Buffer.from([0x01])]), 400, 'invalid_msgpack');
    await problem(inline, Buffer.from([0xc1]), 400, 'invalid_msgpack');
    await problem(inline, Buffer.from([0x81, 0xa1, 0x61, 0xd4, 0x01, 0x00]), 400, 'invalid_msgpack');
    await problem(inline, new Uint8Array(0), 400, 'invalid_msgpack');
  });

  it('huge declared lengths are refused before anything is built', async () => {
    // A str32, a bin32, an array32 and a map32 each declaring 4 GiB - 1, in a few bytes.
    for (const head of [0xdb, 0xc6, 0xdd, 0xdf]) {
      await problem(inline, Buffer.from([0x81, 0xa1, 0x61, head, 0xff, 0xff, 0xff, 0xff]), head >= 0xdd ? 413 : 400, head >= 0xdd ? 'limit_exceeded' : 'invalid_msgpack');
    }
    // Below the item limit, an array declaring more items than the bytes left is a 400.
    await problem(inline, Buffer.from([0xdc, 0x03, 0xe8, 0x01]), 400, 'invalid_msgpack');
  });

  it('a tensor whose bin length does not match its shape is refused at its path, as its base64 twin is', async () => {
    const bad = { dtype: 'float64', shape: [4], data: new Uint8Array(24) };
    const json = await problem(inline, encode({ expr: 'sum(x)', at: { x: bad } }), 400, 'validation_error');
    expect(json.detail).toContain('at.x.data holds 24 bytes, but shape [4] needs 32');
    const twin = await postJson(inline, '/grad', { expr: 'sum(x)', at: { x: { dtype: 'float64', shape: [4], data: Buffer.alloc(24).toString('base64') } } });
    expect(twin.statusCode).toBe(400);
    expect(twin.json().code).toBe('validation_error');
    expect(twin.json().errors[0].path).toBe(json.errors![0]!.path);
  });

  it('too many items is a 413, as too many commas are in JSON', async () => {
    const json = await problem(inline, encode({ expr: 'sum(x)', at: { x: Array.from({ length: MAX_ITEMS + 1 }, () => 1) } }), 413, 'limit_exceeded');
    expect(json.detail).toContain('BODY_MAX_ITEMS');
  });

  it('nesting past the depth bound is a 413; deep nesting is never a 5xx', async () => {
    const deep = (n: number) => Buffer.concat([Buffer.from([0x81, 0xa1, 0x61]), Buffer.alloc(n, 0x91), Buffer.from([0x01])]);
    const json = await problem(inline, deep(10_000), 413, 'limit_exceeded');
    expect(json.detail).toMatch(/deep/);
    const shallow = await postMsgpack(inline, '/grad', deep(100));
    expect(shallow.statusCode).toBe(400);
  });

  it('__proto__ keys and constructor.prototype are refused with where, as in JSON', async () => {
    // { expr, at: { x: 1, __proto__: { y: 1 } } } written by hand (an encoder skips __proto__).
    const proto = Buffer.concat([
      Buffer.from([0x82]),
      Buffer.from(encode('expr')), Buffer.from(encode('sum(x)')),
      Buffer.from(encode('at')), Buffer.from([0x82]), Buffer.from(encode('x')), Buffer.from([0x01]),
      Buffer.from(encode('__proto__')), Buffer.from(encode({ y: 1 })),
    ]);
    const json = await problem(inline, proto, 400, 'validation_error');
    expect(json.errors).toEqual([{ path: 'at.__proto__', message: '`__proto__` keys are not accepted' }]);
    const ctor = encode({ expr: 'sum(x)', at: { x: 1 }, points: [{ constructor: { prototype: { y: 1 } } }] });
    const second = await problem(inline, ctor, 400, 'validation_error');
    expect(second.errors).toEqual([{ path: 'points.0.constructor.prototype', message: '`constructor.prototype` keys are not accepted' }]);
    // The same as the JSON path says.
    const twin = await inline.inject({ method: 'POST', url: '/grad', headers: { 'content-type': 'application/json' }, payload: '{"expr":"sum(x)","at":{"x":1},"points":[{"constructor":{"prototype":{"y":1}}}]}' });
    expect(twin.json().errors).toEqual(second.errors);
    // A constructor key alone is a name like any other.
    const fine = await postMsgpack(inline, '/grad', encode({ expr: 'sum(x)', at: { x: 1 }, wrt: ['x'], encoding: 'json', extra: undefined }));
    expect(fine.statusCode).toBe(200);
  });

  it('the problem is the same on the body worker', async () => {
    const big = values(20_000, 9);
    const bad = encode({ expr: 'sum(x)', at: { x: { dtype: 'float64', shape: [20_001], data: bytesOf(big) } } });
    expect(bad.length).toBeGreaterThan(64 * 1024);
    const res = await postMsgpack(onWorker, '/grad', bad);
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0].path).toBe('at.x.data');
    const truncated = await postMsgpack(onWorker, '/grad', bad.subarray(0, bad.length - 1));
    expect(truncated.json().code).toBe('invalid_msgpack');
  });

  it('another content type is still a 415', async () => {
    const res = await inline.inject({ method: 'POST', url: '/grad', headers: { 'content-type': 'application/cbor' }, payload: Buffer.from([0xa0]) });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('unsupported_media_type');
  });

  it('the scan counts items without building (unit)', () => {
    expect(() => scanMsgpack(encode([1, [2, 3], { a: 4 }]), 6)).not.toThrow();
    expect(() => scanMsgpack(encode([1, [2, 3], { a: 4 }]), 5)).toThrow(/BODY_MAX_ITEMS/);
  });
});

describe('content negotiation', () => {
  const body = { expr: 'sum(x * x)', at: { x: [1, 2] } };
  it.each([
    ['application/msgpack', true],
    ['application/x-msgpack', true],
    ['application/vnd.msgpack', true],
    ['application/json, application/msgpack', true],
    ['application/json;q=1, application/msgpack;q=0.5', false],
    ['application/msgpack;q=0', false],
    ['*/*', false],
    [undefined, false],
  ])('Accept %s → msgpack %s', async (accept, msgpack) => {
    expect(prefersMsgpack(accept)).toBe(msgpack);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (accept !== undefined) headers.accept = accept;
    const res = await inline.inject({ method: 'POST', url: '/grad', headers, payload: JSON.stringify(body) });
    expect(res.statusCode).toBe(200);
    if (msgpack) {
      expect(res.headers['content-type']).toBe('application/msgpack');
      const answer = decode(res.rawPayload) as { gradient: { x: { data: Uint8Array } } };
      expect(Array.from(new Float64Array(new Uint8Array(answer.gradient.x.data).buffer))).toEqual([2, 4]);
    } else {
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json().gradient.x).toEqual([2, 4]);
    }
  });

  it('a msgpack body may ask for a JSON answer; problems stay problem+json', async () => {
    const res = await postMsgpack(inline, '/grad', encode(body), 'application/vnd.msgpack', 'application/json');
    expect(res.statusCode).toBe(200);
    expect(res.json().gradient.x).toEqual([2, 4]);
    const bad = await postMsgpack(inline, '/grad', encode({ expr: 'sum(x', at: { x: 1 } }));
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(bad.json().code).toBe('parse_error');
  });
});
