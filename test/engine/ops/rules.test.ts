// Every primitive's derivative rules, driven by the op table: JVPs against central differences,
// the dot-product test ⟨v, J u⟩ = ⟨Jᵀ v, u⟩ between forward and reverse mode, batched passes
// against single ones, and second order (Hessian-vector products against differences of
// gradients, and the symmetry of the Hessian).

import { describe, expect, it } from 'vitest';
import { Random } from '../../../src/engine/random.js';
import { UNARY_NAMES } from '../../../src/engine/tensor/elementwise.js';
import type { OpName } from '../../../src/engine/ops/types.js';
import type { Tensor } from '../../../src/engine/tensor/tensor.js';
import { axpy, dot, evaluate, gradAndHvp, jvp, maxAbs, maxAbsDiff, OPS, randomTensor, vjp, type Domain, type OpCase } from '../harness.js';

const unaryDomain: Partial<Record<string, Domain>> = {
  log: 'positive',
  sqrt: 'positive',
  log1p: 'positive',
  asin: 'unit',
  acos: 'unit',
  abs: 'nonzero',
  sign: 'nonzero',
  relu: 'nonzero',
  tan: 'unit',
};

const smoothBinary = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const;
const comparisons = ['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const;

const CASES: OpCase[] = [
  ...UNARY_NAMES.map((op): OpCase => ({ op, args: [{ shape: [2, 3], domain: unaryDomain[op] ?? 'any' }] })),
  ...smoothBinary.flatMap((op): OpCase[] => [
    { op, args: [{ shape: [2, 3] }, { shape: [3], domain: op === 'div' ? 'nonzero' : 'any' }], label: '[2,3] with [3]' },
    { op, args: [{ shape: [3, 1] }, { shape: [1, 4], domain: op === 'div' ? 'nonzero' : 'any' }], label: '[3,1] with [1,4]' },
    { op, args: [{ shape: [] }, { shape: [2], domain: op === 'div' ? 'nonzero' : 'any' }], label: 'scalar with [2]' },
  ]),
  { op: 'pow', args: [{ shape: [2, 3], domain: 'positive' }, { shape: [3] }] },
  ...(['atan2', 'hypot'] as const).flatMap((op): OpCase[] => [
    { op, args: [{ shape: [2, 3], domain: 'nonzero' }, { shape: [3], domain: 'nonzero' }], label: '[2,3] with [3]' },
    { op, args: [{ shape: [], domain: 'nonzero' }, { shape: [2] }], label: 'scalar with [2]' },
  ]),
  { op: 'pow', args: [{ shape: [3], domain: 'positive' }, { shape: [] }] },
  { op: 'prod', args: [{ shape: [2, 3], domain: 'someZeros' }], attrs: { axes: [-1], keepdims: false }, label: 'one zero per row' },
  { op: 'prod', args: [{ shape: [4, 2], domain: 'someZeros' }], attrs: { axes: [-2], keepdims: false }, label: 'zeros: one and two per column' },
  { op: 'prod', args: [{ shape: [6], domain: 'someZeros' }], attrs: { axes: [-1], keepdims: true }, label: 'two zeros' },
  ...comparisons.map((op): OpCase => ({ op, args: [{ shape: [2, 3] }, { shape: [3] }] })),
  { op: 'where', args: [{ shape: [2, 3], domain: 'binary', constant: true }, { shape: [3] }, { shape: [2, 1] }] },
  ...(['sum', 'prod', 'max', 'min', 'logsumexp', 'norm'] as const).flatMap((op): OpCase[] => [
    { op, args: [{ shape: [2, 3, 4], domain: op === 'prod' ? 'nonzero' : 'any' }], attrs: { axes: [-1], keepdims: false }, label: 'last axis' },
    { op, args: [{ shape: [2, 3, 4], domain: op === 'prod' ? 'nonzero' : 'any' }], attrs: { axes: [-3, -1], keepdims: true }, label: 'two axes, keepdims' },
    { op, args: [{ shape: [3, 2], domain: op === 'prod' ? 'nonzero' : 'any' }], attrs: { axes: [-2, -1], keepdims: false }, label: 'all axes' },
  ]),
  { op: 'reshape', args: [{ shape: [2, 3] }], attrs: { from: [2, 3], to: [3, 2] } },
  { op: 'reshape', args: [{ shape: [4, 2, 3] }], attrs: { from: [2, 3], to: [6] }, label: 'with a leading dim' },
  { op: 'broadcast_to', args: [{ shape: [3, 1] }], attrs: { shape: [3, 4] } },
  { op: 'broadcast_to', args: [{ shape: [2, 1, 3] }], attrs: { shape: [4, 3] }, label: 'with a leading dim' },
  { op: 'permute', args: [{ shape: [2, 3, 4] }], attrs: { perm: [2, 0, 1] } },
  { op: 'permute', args: [{ shape: [2, 3, 4] }], attrs: { perm: [1, 0] }, label: 'last two' },
  { op: 'slice', args: [{ shape: [5, 4] }], attrs: { starts: [1, 3], steps: [2, -1], counts: [2, 3] } },
  { op: 'scatter', args: [{ shape: [2, 3] }], attrs: { shape: [5, 4], starts: [1, 3], steps: [2, -1] } },
  { op: 'concat', args: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }], attrs: { axis: -1 } },
  { op: 'concat', args: [{ shape: [1, 3] }, { shape: [2, 3] }], attrs: { axis: -2 }, label: 'first axis' },
  { op: 'diag_part', args: [{ shape: [3, 3] }] },
  { op: 'diag_part', args: [{ shape: [2, 3, 3] }], label: 'batched' },
  { op: 'diag_embed', args: [{ shape: [3] }] },
  { op: 'diag_embed', args: [{ shape: [2, 3] }], label: 'batched' },
  { op: 'matmul', args: [{ shape: [2, 3] }, { shape: [3, 4] }], attrs: { vectors: 'none' } },
  { op: 'matmul', args: [{ shape: [2, 2, 3] }, { shape: [3, 4] }], attrs: { vectors: 'none' }, label: 'batched left' },
  { op: 'matmul', args: [{ shape: [3, 4] }, { shape: [2, 4, 5] }], attrs: { vectors: 'none' }, label: 'batched right' },
  // NumPy's 1-D operands: matrix @ vector, vector @ matrix, vector @ vector, and with batches.
  { op: 'matmul', args: [{ shape: [2, 3] }, { shape: [3] }], attrs: { vectors: 'right' }, label: 'matrix @ vector' },
  { op: 'matmul', args: [{ shape: [3] }, { shape: [3, 4] }], attrs: { vectors: 'left' }, label: 'vector @ matrix' },
  { op: 'matmul', args: [{ shape: [3] }, { shape: [3] }], attrs: { vectors: 'both' }, label: 'vector @ vector' },
  { op: 'matmul', args: [{ shape: [2, 2, 3] }, { shape: [3] }], attrs: { vectors: 'right' }, label: 'batched matrices @ vector' },
  { op: 'matmul', args: [{ shape: [3] }, { shape: [2, 3, 4] }], attrs: { vectors: 'left' }, label: 'vector @ batched matrices' },
  { op: 'matmul', args: [{ shape: [2, 3] }, { shape: [2, 3] }], attrs: { vectors: 'both' }, label: 'batched vectors @ batched vectors' },
  { op: 'matmul', args: [{ shape: [2, 1, 3] }, { shape: [4, 3, 2] }], attrs: { vectors: 'left' }, label: 'batched vectors @ batched matrices, broadcasting' },
  { op: 'solve', args: [{ shape: [3, 3], domain: 'wellConditioned' }, { shape: [3, 2] }] },
  { op: 'solve', args: [{ shape: [2, 3, 3], domain: 'wellConditioned' }, { shape: [3, 1] }], label: 'batched' },
  { op: 'solve', args: [{ shape: [3, 3], domain: 'wellConditioned' }, { shape: [3] }], attrs: { vector: true }, label: 'vector' },
  { op: 'solve', args: [{ shape: [2, 3, 3], domain: 'wellConditioned' }, { shape: [3] }], attrs: { vector: true }, label: 'batched, vector' },
  { op: 'solve', args: [{ shape: [3, 3], domain: 'wellConditioned' }, { shape: [2, 3] }], attrs: { vector: true }, label: 'batched vectors' },
  { op: 'trisolve', args: [{ shape: [3, 3], domain: 'wellConditioned' }, { shape: [3, 2] }], attrs: { lower: true }, label: 'lower' },
  { op: 'trisolve', args: [{ shape: [3, 3], domain: 'wellConditioned' }, { shape: [3, 2] }], attrs: { lower: false }, label: 'upper' },
  { op: 'trisolve', args: [{ shape: [2, 3, 3], domain: 'wellConditioned' }, { shape: [3, 1] }], attrs: { lower: true }, label: 'batched' },
  { op: 'trisolve', args: [{ shape: [3, 3], domain: 'wellConditioned' }, { shape: [3] }], attrs: { lower: true, vector: true }, label: 'lower, vector' },
  { op: 'trisolve', args: [{ shape: [2, 3, 3], domain: 'wellConditioned' }, { shape: [3] }], attrs: { lower: false, vector: true }, label: 'upper, batched, vector' },
  { op: 'inv', args: [{ shape: [3, 3], domain: 'wellConditioned' }] },
  { op: 'inv', args: [{ shape: [2, 2, 2], domain: 'wellConditioned' }], label: 'batched' },
  { op: 'det', args: [{ shape: [3, 3], domain: 'wellConditioned' }] },
  { op: 'logdet', args: [{ shape: [3, 3], domain: 'wellConditioned' }] },
  { op: 'adjugate', args: [{ shape: [3, 3], domain: 'wellConditioned' }] },
  { op: 'adjugate', args: [{ shape: [2, 2, 2], domain: 'wellConditioned' }], label: 'batched' },
  { op: 'cholesky', args: [{ shape: [3, 3], domain: 'spd' }] },
  { op: 'cholesky', args: [{ shape: [2, 2, 2], domain: 'spd' }], label: 'batched' },
];

const name = (c: OpCase): string => `${c.op}${c.label ? ` (${c.label})` : ''}`;

function setup(c: OpCase, seed: number) {
  const random = new Random(seed);
  const values = c.args.map((spec) => randomTensor(random, spec));
  const free = c.args.flatMap((spec, i) => (spec.constant ? [] : [i]));
  const direction = (): Tensor[] => free.map((i) => randomTensor(random, { shape: c.args[i]!.shape }));
  const out = evaluate(c, values);
  return { random, values, free, direction, out };
}

/** f(x + h u) - f(x - h u) over 2h, with u split over the free args. */
function centralDifference(c: OpCase, values: readonly Tensor[], free: readonly number[], us: readonly Tensor[], h: number): Tensor {
  const moved = (sign: number) =>
    evaluate(
      c,
      values.map((v, i) => {
        const k = free.indexOf(i);
        return k < 0 ? v : axpy(sign * h, us[k]!, v);
      }),
    );
  const plus = moved(1);
  const minus = moved(-1);
  return { shape: plus.shape, data: plus.data.map((v, i) => (v - minus.data[i]!) / (2 * h)) };
}

describe('the op table', () => {
  it('has a derivative test case for every primitive', () => {
    const covered = new Set<OpName>(CASES.map((c) => c.op));
    const missing = (Object.keys(OPS) as OpName[]).filter((op) => op !== 'input' && op !== 'const' && !covered.has(op));
    expect(missing).toEqual([]);
  });

  it('documents every primitive in words', () => {
    for (const [op, def] of Object.entries(OPS)) {
      expect(def.doc.value.length, op).toBeGreaterThan(0);
      expect(def.doc.derivative.length, op).toBeGreaterThan(0);
    }
  });
});

describe.each(CASES.map((c) => [name(c), c] as const))('%s', (_label, c) => {
  it('forward mode agrees with central differences', () => {
    for (const seed of [1, 2]) {
      const { values, free, direction } = setup(c, seed);
      const us = direction();
      const fd = centralDifference(c, values, free, us, 1e-6);
      const ad = jvp(c, values, us);
      expect(ad.shape).toEqual(fd.shape);
      expect(maxAbsDiff(ad, fd)).toBeLessThan(1e-6 * (1 + maxAbs(fd)));
    }
  });

  it('reverse mode is the transpose of forward mode: ⟨v, J u⟩ = ⟨Jᵀ v, u⟩', () => {
    for (const seed of [3, 4]) {
      const { random, values, direction, out } = setup(c, seed);
      const us = direction();
      const v = randomTensor(random, { shape: out.shape });
      const forward = dot(v, jvp(c, values, us));
      const reverse = vjp(c, values, v).reduce((s, adj, k) => s + dot(adj, us[k]!), 0);
      expect(Math.abs(forward - reverse)).toBeLessThan(1e-10 * (1 + Math.abs(forward)));
    }
  });

  it('a batch of tangents and of cotangents gives what single passes give', () => {
    const { random, values, free, out } = setup(c, 5);
    const batch = 3;
    const stacks = free.map((i) => randomTensor(random, { shape: [batch, ...c.args[i]!.shape] }));
    const cotangents = randomTensor(random, { shape: [batch, ...out.shape] });
    const forward = jvp(c, values, stacks, [batch]);
    const reverse = vjp(c, values, cotangents, [batch]);
    const row = (t: Tensor, k: number): Tensor => {
      const size = t.data.length / batch;
      return { shape: t.shape.slice(1), data: t.data.slice(k * size, (k + 1) * size) };
    };
    for (let k = 0; k < batch; k++) {
      expect(maxAbsDiff(row(forward, k), jvp(c, values, stacks.map((s) => row(s, k))))).toBeLessThan(1e-12);
      const single = vjp(c, values, row(cotangents, k));
      reverse.forEach((adj, j) => expect(maxAbsDiff(row(adj, k), single[j]!)).toBeLessThan(1e-12));
    }
  });

  it('second order: Hessian-vector products match differences of gradients, and H is symmetric', () => {
    const { random, values, free, direction, out } = setup(c, 6);
    const w = randomTensor(random, { shape: out.shape });
    const u1 = direction();
    const u2 = direction();
    const h = 1e-5;
    const first = gradAndHvp(c, values, w, u1);
    const shifted = (sign: number) =>
      gradAndHvp(
        c,
        values.map((v, i) => (free.indexOf(i) < 0 ? v : axpy(sign * h, u1[free.indexOf(i)]!, v))),
        w,
        u1,
      ).grad;
    const plus = shifted(1);
    const minus = shifted(-1);
    first.hvp.forEach((hv, k) => {
      const fd = { shape: hv.shape, data: plus[k]!.data.map((p, i) => (p - minus[k]!.data[i]!) / (2 * h)) };
      expect(maxAbsDiff(hv, fd)).toBeLessThan(1e-5 * (1 + maxAbs(fd)));
    });
    const second = gradAndHvp(c, values, w, u2);
    const a = first.hvp.reduce((s, hv, k) => s + dot(hv, u2[k]!), 0);
    const b = second.hvp.reduce((s, hv, k) => s + dot(hv, u1[k]!), 0);
    expect(Math.abs(a - b)).toBeLessThan(1e-9 * (1 + Math.abs(a)));
  });
});

describe('property: elementwise ops at random broadcasting shapes', () => {
  it('satisfy the dot-product test and agree with central differences', async () => {
    const fc = (await import('fast-check')).default;
    // An output shape, and two argument shapes that broadcast to it (dims dropped from the left or set to 1).
    const shapes = fc
      .array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 3 })
      .chain((out) =>
        fc.tuple(
          fc.constant(out),
          ...[0, 1].map(() =>
            fc.tuple(fc.integer({ min: 0, max: out.length }), fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length })).map(([drop, ones]) =>
              out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)),
            ),
          ),
        ),
      );
    const ops = fc.constantFrom('add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'where');
    fc.assert(
      fc.property(shapes, ops, fc.integer({ min: 0, max: 1e6 }), ([, a, b], op, seed) => {
        const c: OpCase =
          op === 'where'
            ? { op: 'where', args: [{ shape: a, domain: 'binary', constant: true }, { shape: b }, { shape: a }] }
            : { op: op as OpName, args: [{ shape: a, domain: op === 'pow' ? 'positive' : 'any' }, { shape: b, domain: op === 'div' ? 'nonzero' : 'any' }] };
        const { random, values, free, direction, out } = setup(c, seed);
        const us = direction();
        const v = randomTensor(random, { shape: out.shape });
        const ad = jvp(c, values, us);
        const forward = dot(v, ad);
        const reverse = vjp(c, values, v).reduce((s, adj, k) => s + dot(adj, us[k]!), 0);
        expect(Math.abs(forward - reverse)).toBeLessThan(1e-10 * (1 + Math.abs(forward)));
        const fd = centralDifference(c, values, free, us, 1e-6);
        expect(maxAbsDiff(ad, fd)).toBeLessThan(1e-5 * (1 + maxAbs(fd)));
      }),
      { numRuns: 150 },
    );
  });
});
