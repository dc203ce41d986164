// The compact array encoding: {"dtype": "float64", "shape": [...], "data": base64 of little-endian
// float64} accepted wherever a tensor goes in, and answers in it with `"encoding": "base64"`, on the
// event loop's thread and on a worker thread (the same bits as the nested-array answers).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EncodedArraySchema } from '../../routes/schemas.js';
import { toTensor } from '../../src/engine/values.js';
import type { App } from '../../src/app.js';
import { buildTestApp } from '../helpers.js';

/** Encode row-major float64 elements as the service expects them (written independently of the service). */
function encode(shape: number[], values: number[]): { dtype: 'float64'; shape: number[]; data: string } {
  const bytes = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => bytes.writeDoubleLE(v, 8 * i));
  return { dtype: 'float64', shape, data: bytes.toString('base64') };
}

type Nested = number | Nested[];

/** An encoded array decoded into nested arrays of numbers (independently of the service). */
function decode(e: { dtype: string; shape: number[]; data: string }): Nested {
  const bytes = Buffer.from(e.data, 'base64');
  const flat: number[] = [];
  for (let i = 0; i < bytes.length; i += 8) flat.push(bytes.readDoubleLE(i));
  const nest = (dim: number, offset: number): Nested => {
    if (dim === e.shape.length) return flat[offset]!;
    const stride = e.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: e.shape[dim]! }, (_, i) => nest(dim + 1, offset + i * stride));
  };
  return nest(0, 0);
}

function isEncoded(v: unknown): v is { dtype: string; shape: number[]; data: string } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'dtype' in v && 'data' in v;
}

/** An answer with every encoded array decoded (checked against its schema), and -0 as 0 (as JSON answers write it). */
function decodeAnswer(v: unknown): unknown {
  if (isEncoded(v)) {
    expect(EncodedArraySchema.safeParse(v).success).toBe(true);
    return zeros(decode(v));
  }
  if (Array.isArray(v)) return v.map(decodeAnswer);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeAnswer(x)]));
  return v;
}
const zeros = (v: Nested): Nested => (Array.isArray(v) ? v.map(zeros) : Object.is(v, -0) ? 0 : v);

/** A JSON answer with "NaN", "Infinity", "-Infinity" as numbers. */
function numbers(v: unknown): unknown {
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (Array.isArray(v)) return v.map(numbers);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, numbers(x)]));
  return v;
}

/** Every number bit for bit (Object.is: NaN is NaN, 0 is not -0), every key in the same order. */
function expectSameBits(a: unknown, b: unknown, path = 'answer'): void {
  if (typeof a === 'number' || typeof b === 'number') {
    expect(Object.is(a, b), `${path}: ${String(a)} vs ${String(b)}`).toBe(true);
    return;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    expect(Array.isArray(a) && Array.isArray(b), path).toBe(true);
    expect((a as unknown[]).length, path).toBe((b as unknown[]).length);
    (a as unknown[]).forEach((x, i) => expectSameBits(x, (b as unknown[])[i], `${path}[${i}]`));
    return;
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    expect(Object.keys(a), path).toEqual(Object.keys(b));
    for (const k of Object.keys(a)) expectSameBits((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    return;
  }
  expect(a, path).toEqual(b);
}

/** A little random generator, so the matrix is the same every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

// Non-finite values and answers: log at -1 (NaN), 0 (-Infinity), 1 and 2; 1/x at 0 (Infinity).
const NON_FINITE = { x: [-1, 0, 1, 2] };
const CASES: [string, string, Record<string, unknown>][] = [
  ['/eval', 'eval', { expr: 'log(x)', at: NON_FINITE }],
  ['/eval', 'eval of a matrix', { expr: 'W @ x', at: { W: [[1, 2], [3, 4], [5, 6]], x: [0.5, -0.25] } }],
  ['/eval', 'eval of a scalar', { expr: 'sum(x)', at: { x: [1, 2] } }],
  ['/grad', 'grad', { expr: 'sum(log(x) + 1 / x)', at: NON_FINITE }],
  ['/grad', 'grad, several points', { expr: 'sum(x * x)', points: [{ x: [1, 2] }, { x: [-3, 0.5] }] }],
  ['/jacobian', 'jacobian', { expr: 'log(x) * x', at: NON_FINITE }],
  ['/jacobian', 'jacobian, forward', { expr: 'tanh(W @ x)', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] }, mode: 'forward' }],
  ['/jvp', 'jvp', { expr: 'tanh(W @ x)', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] }, tangents: { x: [1, 0] } }],
  ['/vjp', 'vjp', { expr: 'tanh(W @ x)', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] }, cotangent: [1, -1] }],
  ['/hessian', 'hessian', { expr: 'x @ M @ x', at: { x: [1, 2], M: [[1, 2], [3, 4]] } }],
  ['/hvp', 'hvp', { expr: 'x @ M @ x', at: { x: [1, 2], M: [[1, 2], [3, 4]] }, wrt: ['x'], vector: { x: [1, 0] } }],
  ['/check', 'check', { expr: 'sum(sin(x) * x)', at: { x: [0.5, 1.5] } }],
  ['/trace', 'trace (the lecture\'s tables)', { expr: 'sum(log(x) * x)', at: NON_FINITE, tangents: { x: [1, 0, 2, 1] } }],
];

const CONFIGS = [
  { label: 'inline', config: { WORKERS: 0 } },
  { label: 'on a worker thread', config: { WORKERS: 1, INLINE_FLOPS: 0, INLINE_ANSWER_ELEMENTS: 0, INLINE_PLAN_NODES: 0 } },
];

for (const { label, config } of CONFIGS) {
  describe(`"encoding": "base64", ${label}`, () => {
    let app: App;
    beforeAll(() => {
      // The 250×250 nested-array request holds the event loop for a while: no 503 for the next test.
      app = buildTestApp({ ...config, BODY_LIMIT: 16 * 1024 * 1024, MAX_EVENT_LOOP_DELAY_MS: 0 });
    });
    afterAll(async () => {
      await app.close();
    });
    const post = async (url: string, payload: object) => {
      const res = await app.inject({ method: 'POST', url, payload });
      return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
    };

    for (const [url, name, body] of CASES) {
      it(`${name}: the same bits as the nested-array answer`, async () => {
        const json = await post(url, body);
        const base64 = await post(url, { ...body, encoding: 'base64' });
        expect(json.status).toBe(200);
        expect(base64.status).toBe(200);
        expectSameBits(numbers(decodeAnswer(base64.body)), numbers(json.body));
        expect(await post(url, { ...body, encoding: 'json' })).toEqual(json);
      });
    }

    it('keeps scalars as numbers and encodes every tensor of rank ≥ 1', async () => {
      const { body } = await post('/grad', { expr: 'sum(log(x))', at: { x: encode([3], [1, 2, 4]) }, encoding: 'base64' });
      expect(body).toEqual({ value: Math.log(8), gradient: { x: encode([3], [1, 0.5, 0.25]) } });
      const evaluated = await post('/eval', { expr: 'x', at: { x: encode([2, 0], []) }, encoding: 'base64' });
      expect(evaluated.body).toEqual({ value: { dtype: 'float64', shape: [2, 0], data: '' }, shape: [2, 0] });
    });

    it('keeps NaN, Infinity and -0 bits in both directions', async () => {
      const { body } = await post('/eval', { expr: 'x', at: { x: encode([4], [NaN, Infinity, -Infinity, -0]) }, encoding: 'base64' });
      const [nan, inf, minf, zero] = decode(body.value as never) as number[];
      expect([nan, inf, minf]).toEqual([NaN, Infinity, -Infinity]);
      expect(Object.is(zero, -0)).toBe(true);
      const json = await post('/eval', { expr: 'x', at: { x: encode([4], [NaN, Infinity, -Infinity, -0]) } });
      expect(json.body.value).toEqual(['NaN', 'Infinity', '-Infinity', 0]);
    });

    it('a 250×250 matrix in base64 gives the same gradient as in nested arrays', async () => {
      const next = random(12);
      const rows = Array.from({ length: 250 }, () => Array.from({ length: 250 }, next));
      const x = Array.from({ length: 250 }, next);
      const request = { expr: 'sum(tanh(W @ x))', wrt: ['W', 'x'] };
      const nested = await post('/grad', { ...request, at: { W: rows, x } });
      const encoded = await post('/grad', { ...request, at: { W: encode([250, 250], rows.flat()), x: encode([250], x) } });
      expect(nested.status).toBe(200);
      expectSameBits(encoded.body, nested.body);
      const both = await post('/grad', { ...request, at: { W: encode([250, 250], rows.flat()), x: encode([250], x) }, encoding: 'base64' });
      expectSameBits(numbers(decodeAnswer(both.body)), numbers(nested.body));
    });

    it(label === 'inline' ? 'computed every answer inline' : 'computed the answers on a worker thread', () => {
      const jobs = app.compute.jobs();
      if (label === 'inline') expect(jobs.offloaded).toBe(0);
      else expect(jobs.offloaded).toBeGreaterThan(CASES.length);
    });

    it('takes encoded arrays for tangents, cotangents, vectors and points', async () => {
      const at = { W: encode([2, 2], [1, 2, 3, 4]), x: encode([2], [0.1, 0.2]) };
      const plain = { W: [[1, 2], [3, 4]], x: [0.1, 0.2] };
      for (const [url, extra, plainExtra] of [
        ['/jvp', { tangents: { x: encode([2], [1, 0]) } }, { tangents: { x: [1, 0] } }],
        ['/vjp', { cotangent: encode([2], [1, -1]) }, { cotangent: [1, -1] }],
        ['/hvp', { vector: { x: encode([2], [1, 0]) }, wrt: ['x'] }, { vector: { x: [1, 0] }, wrt: ['x'] }],
      ] as const) {
        const expr = url === '/hvp' ? 'sum(tanh(W @ x))' : 'tanh(W @ x)';
        const encoded = await post(url, { expr, at, ...extra });
        const nested = await post(url, { expr, at: plain, ...plainExtra });
        expect(encoded.status, url).toBe(200);
        expect(encoded.body, url).toEqual(nested.body);
      }
      const graph = (value: unknown) => ({
        graph: { nodes: [{ id: 'c', op: 'const', attrs: { value } }, { id: 'f', op: 'mul', args: ['x', 'c'] }, { id: 's', op: 'sum', args: ['f'] }], output: 's' },
        at: { x: encode([2], [1, 2]) },
      });
      const constant = await post('/grad', graph(encode([2], [3, -4])));
      expect(constant.status, JSON.stringify(constant.body)).toBe(200);
      expect(constant.body).toEqual((await post('/grad', graph([3, -4]))).body);
      expect(constant.body).toEqual({ value: -5, gradient: { x: [3, -4] } });
      const points = await post('/grad', { expr: 'sum(x * x)', points: [{ x: encode([2], [1, 2]) }, { x: [3, 4] }] });
      expect(points.body).toEqual({ results: [{ value: 5, gradient: { x: [2, 4] } }, { value: 25, gradient: { x: [6, 8] } }] });
    });
  });
}

describe('refusals of an encoded array', () => {
  let app: App;
  beforeAll(() => {
    app = buildTestApp({ MAX_TENSOR_ELEMENTS: 1000 });
  });
  afterAll(async () => {
    await app.close();
  });
  const good = encode([2], [1, 2]);
  const refusals: [string, Record<string, unknown>, number, string, string, RegExp][] = [
    ['a dtype other than float64', { at: { x: { ...good, dtype: 'float32' } } }, 400, 'validation_error', 'at.x.dtype', /must be "float64"/],
    ['no dtype', { at: { x: { shape: [2], data: good.data } } }, 400, 'validation_error', 'at.x.dtype', /must be "float64".*got undefined/],
    ['an unknown key', { at: { x: { ...good, order: 'C' } } }, 400, 'validation_error', 'at.x.order', /not a key of an encoded array/],
    ['a shape that is not an array', { at: { x: { ...good, shape: 2 } } }, 400, 'validation_error', 'at.x.shape', /must be an array of whole numbers/],
    ['a fractional dimension', { at: { x: { ...good, shape: [1.5] } } }, 400, 'validation_error', 'at.x.shape.0', /at\.x\.shape\[0\] must be a whole number ≥ 0.*got 1\.5/],
    ['a negative dimension', { at: { x: { ...good, shape: [2, -1] } } }, 400, 'validation_error', 'at.x.shape.1', /at\.x\.shape\[1\] must be a whole number ≥ 0.*got -1/],
    ['a dimension given as a string', { at: { x: { ...good, shape: ['2'] } } }, 400, 'validation_error', 'at.x.shape.0', /whole number ≥ 0.*got "2"/],
    ['too many elements', { at: { x: { dtype: 'float64', shape: [1001], data: '' } } }, 422, 'limit_exceeded', 'at.x.shape', /1001 elements, more than the limit of 1000/],
    ['a shape and data of different lengths', { at: { x: { ...good, shape: [3] } } }, 400, 'validation_error', 'at.x.data', /holds 16 bytes, but shape \[3\] needs 24/],
    ['float32 data', { at: { x: { ...good, data: Buffer.from(new Float32Array([1, 2]).buffer).toString('base64') } } }, 400, 'validation_error', 'at.x.data', /holds 8 bytes, but shape \[2\] needs 16/],
    ['base64url characters', { at: { x: { ...good, data: good.data.replace('A', '-') } } }, 400, 'validation_error', 'at.x.data', /"-" at character 0.*standard alphabet/],
    ['"=" before the padding', { at: { x: { ...good, data: `${good.data.slice(0, 4)}=${good.data.slice(5)}` } } }, 400, 'validation_error', 'at.x.data', /"=" at character 4.*padded with "="/],
    ['a space inside the data', { at: { x: { ...good, data: `${good.data.slice(0, 8)} ${good.data.slice(9)}` } } }, 400, 'validation_error', 'at.x.data', /" " at character 8/],
    ['three padding characters', { at: { x: { dtype: 'float64', shape: [], data: 'AAAAAAAAAA===' } } }, 400, 'validation_error', 'at.x.data', /not a multiple of 4/],
    ['"=" inside the last group', { at: { x: { ...good, data: `${good.data.slice(0, -4)}A=A=` } } }, 400, 'validation_error', 'at.x.data', /"=" at character 21/],
    ['unpadded base64', { at: { x: { ...good, data: good.data.replace(/=+$/, '') } } }, 400, 'validation_error', 'at.x.data', /not a multiple of 4.*padded/],
    ['data that is not a string', { at: { x: { ...good, data: [1, 2] } } }, 400, 'validation_error', 'at.x.data', /must be a base64 string/],
    ['a bad tangent', { tangents: { x: { ...good, dtype: 'int64' } } }, 400, 'validation_error', 'tangents.x.dtype', /must be "float64"/],
    ['a bad point', { at: undefined, points: [{ x: good }, { x: { ...good, shape: [4] } }] }, 400, 'validation_error', 'points.1.x.data', /points\[1\]\.x\.data holds 16 bytes, but shape \[4\] needs 32/],
    ['a cotangent of the wrong shape', { cotangent: encode([3], [1, 2, 3]) }, 422, 'shape_mismatch', 'cotangent', /has shape \[3\], but the output has shape \[2\]/],
  ];
  for (const [name, fields, status, code, path, message] of refusals) {
    it(`refuses ${name} at ${path}`, async () => {
      const url = 'tangents' in fields ? '/jvp' : 'cotangent' in fields ? '/vjp' : '/eval';
      const res = await app.inject({ method: 'POST', url, payload: { expr: 'x * 2', at: { x: good }, ...fields } });
      const body = JSON.parse(res.body) as { code: string; detail: string; errors?: { path: string; message: string }[] };
      expect(res.statusCode, res.body).toBe(status);
      expect(body.code).toBe(code);
      expect(body.detail).toMatch(message);
      if (body.errors) expect(body.errors[0]!.path).toBe(path);
      else expect(body).toMatchObject({ path });
    });
  }

  it('refuses an unknown encoding', async () => {
    const res = await app.inject({ method: 'POST', url: '/grad', payload: { expr: 'sum(x)', at: { x: [1] }, encoding: 'base85' } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toMatch(/encoding/);
  });
});

describe('the default body limits', () => {
  let app: App;
  beforeAll(async () => {
    // The defaults, as a deployment gets them (BODY_LIMIT, BODY_MAX_ITEMS, MAX_TENSOR_ELEMENTS).
    app = buildTestApp();
    await app.ready();
  });
  afterAll(() => app.close());

  it('admit a base64 tensor of MAX_TENSOR_ELEMENTS elements', async () => {
    const n = 4_000_000;
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = (i % 1000) / 1000;
    const x = { dtype: 'float64', shape: [n], data: Buffer.from(values.buffer).toString('base64') };
    const res = await app.inject({ method: 'POST', url: '/eval', payload: { expr: 'sum(x)', at: { x } } });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
    // 4000 runs of 0, 0.001, …, 0.999: each run sums to 499.5.
    expect(JSON.parse(res.body).value).toBeCloseTo(4000 * 499.5, 6);
  });

  it('refuse a nested array of more numbers than 1 MiB of JSON can hold, naming base64, before parsing it', async () => {
    const payload = `{"expr":"sum(x)","at":{"x":[${'0,'.repeat(600_000)}0]}}`;
    const res = await app.inject({ method: 'POST', url: '/eval', headers: { 'content-type': 'application/json' }, payload });
    expect(res.statusCode).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'limit_exceeded', detail: expect.stringMatching(/more than 524288 commas.*BODY_MAX_ITEMS.*base64/) });
  });

  it('count commas up to BODY_MAX_ITEMS exactly', async () => {
    const limited = buildTestApp({ BODY_MAX_ITEMS: 4 });
    try {
      // {"expr":…,"at":{"x":[1,2,3]}}: one comma between the members, two in the array.
      const three = await limited.inject({ method: 'POST', url: '/eval', payload: { expr: 'sum(x)', at: { x: [1, 2, 3] } } });
      const four = await limited.inject({ method: 'POST', url: '/eval', payload: { expr: 'sum(x)', at: { x: [1, 2, 3, 4] } } });
      const five = await limited.inject({ method: 'POST', url: '/eval', payload: { expr: 'sum(x)', at: { x: [1, 2, 3, 4, 5] } } });
      expect([three.statusCode, four.statusCode, five.statusCode]).toEqual([200, 200, 413]);
    } finally {
      await limited.close();
    }
  });
});

describe('the base64 reader refuses any character out of place', () => {
  it('for every position and every character outside the standard alphabet (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double(), { minLength: 1, maxLength: 40 }),
        fc.nat(),
        fc.constantFrom('-', '_', ' ', '\n', '*', '=', '.', 'é', '\u0000'),
        (values, at, character) => {
          const { data } = encode([values.length], values);
          const i = at % data.length;
          if (data[i] === character) return;
          const corrupted = data.slice(0, i) + character + data.slice(i + 1);
          // A trailing "=" where padding may stand is padding, not a mistake, when the bytes still add up.
          if (character === '=' && i >= data.length - 2 && /^[A-Za-z0-9+/]*=*$/.test(corrupted)) return;
          expect(() => toTensor({ dtype: 'float64', shape: [values.length], data: corrupted }, ['x'])).toThrow(/x\.data/);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
