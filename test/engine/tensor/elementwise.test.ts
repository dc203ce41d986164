import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENTRIES } from '../../../src/engine/ops/table.js';
import { BINARY_NAMES, UNARY_NAMES, broadcastTo, fill, where } from '../../../src/engine/tensor/index.js';
import type { BinaryName, Tensor, UnaryName } from '../../../src/engine/tensor/index.js';

// The kernels are generated from the op table's scalar code: reached through the entries.
type Kernel = (args: readonly Tensor[], attrs: object, shape: readonly number[]) => Tensor;
const unary = (name: UnaryName, x: Tensor): Tensor => (ENTRIES[name].impl as Kernel)([x], {}, x.shape);
const binary = (name: BinaryName, a: Tensor, b: Tensor): Tensor => (ENTRIES[name].impl as Kernel)([a, b], {}, []);
import { broadcastRead, count, expectClose, naiveBinary, naiveBroadcastShape, randomTensor, tensor, unravel } from './reference.js';

// References written independently of the kernels (the textbook formulas).
const unaryReference: Record<UnaryName, (v: number) => number> = {
  neg: (v) => -v,
  abs: (v) => (v < 0 ? -v : v),
  sign: (v) => (v > 0 ? 1 : v < 0 ? -1 : v),
  exp: Math.exp,
  log: Math.log,
  log1p: (v) => Math.log1p(v),
  expm1: (v) => Math.expm1(v),
  sqrt: Math.sqrt,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  asin: Math.asin,
  acos: Math.acos,
  atan: Math.atan,
  sinh: (v) => (Math.exp(v) - Math.exp(-v)) / 2,
  cosh: (v) => (Math.exp(v) + Math.exp(-v)) / 2,
  tanh: (v) => (Math.exp(2 * v) - 1) / (Math.exp(2 * v) + 1),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  relu: (v) => (v > 0 ? v : 0),
  softplus: (v) => Math.log(1 + Math.exp(v)),
};

/** atan2(y, x) by quadrant, signed zeros as in C; the infinite cases are tested on their own. */
function atan2Reference(y: number, x: number): number {
  if (!Number.isFinite(y) || !Number.isFinite(x)) return Math.atan2(y, x);
  const negative = (v: number): boolean => v < 0 || Object.is(v, -0);
  if (x > 0) return Math.atan(y / x);
  if (negative(x)) return y === 0 ? (negative(y) ? -Math.PI : Math.PI) : Math.atan(y / x) + (y > 0 ? Math.PI : -Math.PI);
  return y > 0 ? Math.PI / 2 : y < 0 ? -Math.PI / 2 : y;
}

const binaryReference: Record<BinaryName, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a > b ? a : b),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a < b ? a : b),
  atan2: atan2Reference,
  hypot: (a, b) => (Math.abs(a) === Infinity || Math.abs(b) === Infinity ? Infinity : Math.sqrt(a * a + b * b)),
  lt: (a, b) => Number(a < b),
  le: (a, b) => Number(a <= b),
  gt: (a, b) => Number(a > b),
  ge: (a, b) => Number(a >= b),
  eq: (a, b) => Number(a === b),
  ne: (a, b) => Number(a !== b),
};

describe('unary', () => {
  const x = tensor([2, 3], [-0.9, -0.3, 0, 0.2, 0.5, 0.95]);

  it.each(UNARY_NAMES)('%s matches its formula on (-1, 1)', (name) => {
    const expected = tensor(x.shape, [...x.data].map(unaryReference[name]));
    expectClose(unary(name, x), expected, 1e-13, 1e-15);
  });

  it('returns a fresh tensor and leaves the input alone', () => {
    const before = x.data.slice();
    const y = unary('exp', x);
    expect(y.data).not.toBe(x.data);
    expect(y.shape).not.toBe(x.shape);
    expect(x.data).toEqual(before);
  });

  it('sigmoid and softplus are stable for large |x|', () => {
    const big = tensor([6], [-1000, -40, -1, 1, 40, 1000]);
    const s = unary('sigmoid', big).data;
    expect(s[0]).toBe(0);
    expect(s[1]! / Math.exp(-40)).toBeCloseTo(1, 12);
    expect(s[5]).toBe(1);
    expect(s[2]! + s[3]!).toBeCloseTo(1, 15);
    const sp = unary('softplus', big).data;
    expect(sp[0]).toBe(0);
    expect(sp[1]! / Math.exp(-40)).toBeCloseTo(1, 12);
    expect(sp[4]).toBeCloseTo(40, 12);
    expect(sp[5]).toBe(1000);
  });

  it('keeps NaN and handles signed zeros and infinities', () => {
    const special = tensor([4], [NaN, -0, Infinity, -Infinity]);
    expect([...unary('relu', special).data]).toEqual([NaN, 0, Infinity, 0]);
    expect([...unary('sigmoid', special).data]).toEqual([NaN, 0.5, 1, 0]);
    expect([...unary('softplus', special).data]).toEqual([NaN, Math.LN2, Infinity, 0]);
    expect(Object.is(unary('sign', special).data[1], -0)).toBe(true);
  });

  it('works on scalars and empty tensors', () => {
    expect(unary('exp', tensor([], [0]))).toEqual({ shape: [], data: Float64Array.of(1) });
    expect(unary('exp', tensor([0, 3], []))).toEqual({ shape: [0, 3], data: new Float64Array(0) });
  });
});

describe('binary', () => {
  it.each(BINARY_NAMES)('%s broadcasts [3,1] with [4], [2,1,3] with [5,1], scalars', (name) => {
    const f = binaryReference[name];
    const cases: [Tensor, Tensor][] = [
      [randomTensor([3, 1], 1), randomTensor([4], 2)],
      [randomTensor([4], 3), randomTensor([3, 1], 4)],
      [randomTensor([2, 1, 3], 5), randomTensor([5, 1], 6)],
      [randomTensor([], 7), randomTensor([2, 3], 8)],
      [randomTensor([2, 3], 9), randomTensor([], 10)],
      [randomTensor([1, 1], 11), randomTensor([3], 12)],
      [randomTensor([2, 3], 13), randomTensor([2, 3], 14)],
      [randomTensor([4, 3], 15), randomTensor([3], 16)],
    ];
    for (const [a, b] of cases) {
      const aPos = name === 'pow' ? tensor(a.shape, [...a.data].map(Math.abs)) : a;
      expectClose(binary(name, aPos, b), naiveBinary(f, aPos, b), 1e-15, 0);
    }
  });

  it('atan2 has the signed-zero and infinite cases of C and PyTorch', () => {
    const y = tensor([8], [0, -0, 0, -0, 1, -1, Infinity, -Infinity]);
    const x = tensor([8], [0, 0, -0, -0, -Infinity, -Infinity, Infinity, -Infinity]);
    const got = [...binary('atan2', y, x).data];
    const want = [0, -0, Math.PI, -Math.PI, Math.PI, -Math.PI, Math.PI / 4, (-3 * Math.PI) / 4];
    got.forEach((v, i) => expect(Object.is(v, want[i]), `case ${i}: ${v}`).toBe(true));
    expect(binary('atan2', tensor([1], [1e300]), tensor([1], [1e-300])).data[0]).toBe(Math.PI / 2);
  });

  it('hypot neither overflows nor underflows, and hypot(±Infinity, NaN) = Infinity', () => {
    const a = tensor([6], [1e200, 1e-200, 3e307, 0, Infinity, NaN]);
    const b = tensor([6], [1e200, 1e-200, 4e307, -0, NaN, 1]);
    const got = [...binary('hypot', a, b).data];
    expect(got[0]! / (Math.SQRT2 * 1e200)).toBeCloseTo(1, 15);
    expect(got[1]! / (Math.SQRT2 * 1e-200)).toBeCloseTo(1, 15);
    expect(got[2]! / 5e307).toBeCloseTo(1, 15);
    expect(Object.is(got[3], 0)).toBe(true);
    expect(got[4]).toBe(Infinity);
    expect(got[5]).toBeNaN();
  });

  it('gives the broadcast shape', () => {
    expect(binary('add', randomTensor([3, 1], 1), randomTensor([4], 2)).shape).toEqual([3, 4]);
    expect(binary('mul', randomTensor([2, 1, 3], 1), randomTensor([5, 1], 2)).shape).toEqual([2, 5, 3]);
    expect(binary('sub', randomTensor([], 1), randomTensor([2, 2], 2)).shape).toEqual([2, 2]);
    expect(binary('sub', randomTensor([1], 1), randomTensor([], 2)).shape).toEqual([1]);
  });

  it('handles zero-size dims', () => {
    expect(binary('add', tensor([0, 3], []), randomTensor([3], 1))).toEqual({ shape: [0, 3], data: new Float64Array(0) });
    expect(binary('add', tensor([0], []), randomTensor([1], 1)).shape).toEqual([0]);
    expect(binary('mul', tensor([2, 0], []), randomTensor([2, 1], 1)).shape).toEqual([2, 0]);
    expect(binary('mul', tensor([], [3]), tensor([0], [])).shape).toEqual([0]);
  });

  it('throws RangeError on shapes that do not broadcast', () => {
    expect(() => binary('add', randomTensor([3], 1), randomTensor([4], 2))).toThrow(RangeError);
    expect(() => binary('add', randomTensor([2, 3], 1), randomTensor([3, 3], 2))).toThrow(RangeError);
  });

  it('comparisons give 1 and 0, NaN compares unequal', () => {
    const a = tensor([4], [1, 2, NaN, 3]);
    const b = tensor([4], [2, 2, NaN, 1]);
    expect([...binary('lt', a, b).data]).toEqual([1, 0, 0, 0]);
    expect([...binary('le', a, b).data]).toEqual([1, 1, 0, 0]);
    expect([...binary('eq', a, b).data]).toEqual([0, 1, 0, 0]);
    expect([...binary('ne', a, b).data]).toEqual([1, 0, 1, 1]);
    expect([...binary('maximum', a, b).data]).toEqual([2, 2, NaN, 3]);
  });

  it('pow agrees with Math.pow at its fast-path exponents (2, 0.5, 1) and others, special values included', () => {
    const values = [-Infinity, -3, -1.5, -1, -0, 0, 1e-300, 0.3, 1, 2.5, 1e200, Infinity, NaN];
    const base = tensor([values.length], values);
    for (const e of [2, 0.5, 1, 3, -1, 0]) {
      const got = binary('pow', base, tensor([], [e])).data;
      values.forEach((v, i) => {
        const want = Math.pow(v, e);
        // x*x and sqrt are correctly rounded; Math.pow may differ in the last bit.
        if (Number.isFinite(want) && want !== 0) expect(got[i]! / want).toBeCloseTo(1, 15);
        else expect(Object.is(got[i], want)).toBe(true);
      });
    }
    // Through the broadcasting path too: a column of exponents against rows.
    const exps = tensor([3, 1], [2, 0.5, 1]);
    expectClose(binary('pow', base, exps), naiveBinary(Math.pow, base, exps), 1e-15, 0);
  });

  it('agrees with a naive index walk on random broadcasting shapes (property)', () => {
    const pool = [-2, -1, -0.5, -0, 0, 0.5, 1, 2, 3.25, NaN, Infinity, -Infinity];
    const shapes = fc
      .array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 4 })
      .chain((full) =>
        fc.tuple(
          fc.constant(full),
          fc.integer({ min: 0, max: full.length }),
          fc.integer({ min: 0, max: full.length }),
          fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
          fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
        ),
      )
      .map(([full, dropA, dropB, onesA, onesB]) => {
        const a = full.map((d, i) => (onesA[i] ? 1 : d)).slice(dropA);
        const b = full.map((d, i) => (onesB[i] ? 1 : d)).slice(dropB);
        return [a, b] as const;
      });
    fc.assert(
      fc.property(shapes, fc.constantFrom(...BINARY_NAMES), fc.integer(), (shapesAB, name, seed) => {
        const [sa, sb] = shapesAB;
        const pick = (shape: number[], s: number): Tensor => {
          const r = randomTensor(shape, s);
          return tensor(shape, [...r.data].map((v) => (v < -0.5 ? pool[Math.floor((v + 1) * 24)]! : v)));
        };
        const a = pick(sa, seed);
        const b = pick(sb, seed + 1);
        expectClose(binary(name, a, b), naiveBinary(binaryReference[name], a, b), 1e-15, 0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('where', () => {
  it('selects with three-way broadcasting, NaN counts as true', () => {
    const cond = tensor([3, 1], [1, 0, NaN]);
    const a = randomTensor([4], 1);
    const b = randomTensor([2, 1, 1], 2);
    const got = where(cond, a, b);
    const shape = naiveBroadcastShape(naiveBroadcastShape(cond.shape, a.shape), b.shape);
    expect(got.shape).toEqual([2, 3, 4]);
    for (let i = 0; i < count(shape); i++) {
      const index = unravel(i, shape);
      const want = broadcastRead(cond, index) !== 0 ? broadcastRead(a, index) : broadcastRead(b, index);
      expect(got.data[i]).toBe(want);
    }
  });

  it('same shapes, scalars, and empty', () => {
    const got = where(tensor([3], [0, 1, 0]), tensor([3], [1, 2, 3]), tensor([3], [4, 5, 6]));
    expect([...got.data]).toEqual([4, 2, 6]);
    expect([...where(tensor([], [0]), tensor([], [1]), tensor([1], [2])).data]).toEqual([2]);
    expect(where(tensor([0], []), tensor([], [1]), tensor([], [2])).shape).toEqual([0]);
  });
});

describe('broadcastTo and fill', () => {
  it('broadcastTo repeats along new and size-1 axes', () => {
    const x = tensor([2, 1], [1, 2]);
    expect(broadcastTo(x, [3, 2, 2])).toEqual({ shape: [3, 2, 2], data: Float64Array.from([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]) });
    expect(broadcastTo(tensor([], [7]), [2])).toEqual({ shape: [2], data: Float64Array.of(7, 7) });
    expect(broadcastTo(x, [2, 0]).shape).toEqual([2, 0]);
    const y = randomTensor([2, 3], 5);
    const same = broadcastTo(y, [2, 3]);
    expect(same.data).toEqual(y.data);
    expect(same.data).not.toBe(y.data);
  });

  it('broadcastTo rejects a shape x does not broadcast to', () => {
    expect(() => broadcastTo(tensor([2], [1, 2]), [3])).toThrow(RangeError);
    expect(() => broadcastTo(tensor([2, 1], [1, 2]), [2])).toThrow(RangeError);
  });

  it('fill', () => {
    expect(fill([2, 2], 3)).toEqual({ shape: [2, 2], data: Float64Array.of(3, 3, 3, 3) });
    expect(fill([], -1)).toEqual({ shape: [], data: Float64Array.of(-1) });
    expect(() => fill([-1], 0)).toThrow(RangeError);
  });
});
