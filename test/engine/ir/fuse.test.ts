// Fused elementwise loops in compiled plans: bit for bit what the interpreter computes, on random
// elementwise programs over mixed shapes (same-shape tensors, scalars, one-element tensors,
// broadcast ones that must not be fused, values used inside and outside a loop, outputs inside a
// loop, NaN and infinities); one loop and no intermediate arrays for the lecture's gradient; no
// request text in the generated source.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Builder } from '../../../src/engine/ir/builder.js';
import { compilePlan } from '../../../src/engine/ir/compile.js';
import { MAX_LOOP_MEMBERS } from '../../../src/engine/ir/fuse.js';
import { interpret, makePlan, type Plan } from '../../../src/engine/ir/evaluate.js';
import type { NodeId } from '../../../src/engine/ir/graph.js';
import { grad } from '../../../src/engine/ad/differentiate.js';
import { Engine } from '../../../src/engine/engine.js';
import { readPoint } from '../../../src/service/request.js';
import { BINARY_NAMES, UNARY_NAMES } from '../../../src/engine/tensor/elementwise.js';
import { sizeOf, type Shape, type Tensor } from '../../../src/engine/tensor/tensor.js';

function sameBits(a: Tensor, b: Tensor): boolean {
  if (a.shape.join() !== b.shape.join() || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (!Object.is(a.data[i], b.data[i])) return false;
  return true;
}

function expectSame(plan: Plan, bindings: Map<string, Tensor>): string {
  const interpreted = interpret(plan, bindings);
  const runner = compilePlan(plan);
  const compiled = runner(bindings);
  expect(compiled.length).toBe(interpreted.length);
  compiled.forEach((t, i) => expect(sameBits(t, interpreted[i]!), `output ${i}\n${runner.source}`).toBe(true));
  return runner.source;
}

const count = (source: string, text: string): number => source.split(text).length - 1;

/** A loop shape [m, n] and shapes around it: some fuse (same size, one element), some broadcast. */
function inputShapes(m: number, n: number): Record<string, Shape> {
  return {
    a: [m, n],
    b: [m, n],
    c: [1, m, n], // as many elements, one more dim: read at i
    s: [], // a number
    one: [1, 1], // one element: read once
    row: [n], // broadcast along rows: not fused
    col: [m, 1], // broadcast along columns: not fused
  };
}

const SPECIAL = [0, -0, 1, -1, 2, 0.5, 3, 1e308, -1e308, 5e-324, NaN, Infinity, -Infinity];
const value = fc.oneof(fc.constantFrom(...SPECIAL), fc.double({ min: -4, max: 4, noNaN: true }));

type Step =
  | { kind: 'unary'; op: number; x: number }
  | { kind: 'binary'; op: number; x: number; y: number }
  | { kind: 'where'; c: number; x: number; y: number }
  | { kind: 'sum'; x: number; keep: boolean; last: boolean }
  | { kind: 'broadcast'; x: number };

const pick = fc.nat({ max: 1000 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('unary' as const), op: pick, x: pick }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('binary' as const), op: pick, x: pick, y: pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('where' as const), c: pick, x: pick, y: pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sum' as const), x: pick, keep: fc.boolean(), last: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('broadcast' as const), x: pick }) },
);

/** Build a random program; steps whose shapes do not fit are skipped. Later nodes are picked more often. */
function build(shapes: Record<string, Shape>, steps: readonly Step[], outputPicks: readonly number[]): { b: Builder; outputs: NodeId[] } {
  const b = new Builder({ optimize: false });
  const nodes: NodeId[] = Object.entries(shapes).map(([name, shape]) => b.input(name, shape));
  const at = (k: number): NodeId => {
    // Mostly one of the last few nodes, so chains form.
    const recent = k % 4 !== 0;
    const n = nodes.length;
    return recent ? nodes[n - 1 - ((k >> 1) % Math.min(n, 4))]! : nodes[(k >> 1) % n]!;
  };
  for (const s of steps) {
    try {
      switch (s.kind) {
        case 'unary':
          nodes.push(b.un(UNARY_NAMES[s.op % UNARY_NAMES.length]!, at(s.x)));
          break;
        case 'binary':
          nodes.push(b.bin(BINARY_NAMES[s.op % BINARY_NAMES.length]!, at(s.x), at(s.y)));
          break;
        case 'where':
          nodes.push(b.where(at(s.c), at(s.x), at(s.y)));
          break;
        case 'sum': {
          const x = at(s.x);
          const rank = b.shapeOf(x).length;
          if (rank === 0) continue;
          nodes.push(b.sum(x, s.last ? [-1] : Array.from({ length: rank }, (_, i) => i - rank), s.keep));
          break;
        }
        case 'broadcast': {
          const x = at(s.x);
          if (sizeOf(b.shapeOf(x)) !== 1) continue;
          nodes.push(b.broadcastTo(b.reshape(x, b.shapeOf(x), [1, 1]), shapes.a!));
          break;
        }
      }
    } catch {
      // shapes that do not broadcast: skip the step
    }
  }
  const outputs = [nodes.at(-1)!, ...outputPicks.map((k) => nodes[k % nodes.length]!)];
  return { b, outputs };
}

function bindings(shapes: Record<string, Shape>, values: readonly number[]): Map<string, Tensor> {
  let k = 0;
  const next = (): number => values[k++ % values.length]!;
  return new Map(
    Object.entries(shapes).map(([name, shape]) => {
      const data = new Float64Array(sizeOf(shape));
      for (let i = 0; i < data.length; i++) data[i] = next();
      return [name, { shape, data }];
    }),
  );
}

/** A random elementwise program: its steps, which of them are outputs, and the input values. */
const program = [
  fc.array(step, { minLength: 5, maxLength: 40, size: 'max' }),
  fc.array(pick, { maxLength: 6 }),
  fc.array(value, { minLength: 1, maxLength: 40 }),
] as const;

describe('fused loops', () => {
  it('compute bit for bit what the interpreter computes, on random elementwise programs', () => {
    fc.assert(
      fc.property(
        ...program,
        (steps, outputPicks, values) => {
          const shapes = inputShapes(3, 4);
          const { b, outputs } = build(shapes, steps, outputPicks);
          expectSame(makePlan(b, outputs), bindings(shapes, values));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('compute the same bits once V8 has optimised the loops (long loops, many runs)', () => {
    fc.assert(
      fc.property(
        ...program,
        (steps, outputPicks, values) => {
          const shapes = inputShapes(16, 63);
          const { b, outputs } = build(shapes, steps, outputPicks);
          const plan = makePlan(b, outputs);
          const inputs = bindings(shapes, values);
          const interpreted = interpret(plan, inputs);
          const runner = compilePlan(plan);
          for (let k = 0; k < 40; k++) runner(inputs);
          runner(inputs).forEach((t, i) => expect(sameBits(t, interpreted[i]!), `output ${i}`).toBe(true));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('keep apart what would need itself: a loop value reduced, then used by a later member', () => {
    // g1 = {e = exp(-a)}; w = sum(e) depends on g1; g2 = {t = sin(x), u = t * w, v = e + u,
    // z = v * w}: e cannot join g2 (g2 reads w, which needs e), so it is written out.
    const b = new Builder({ optimize: false });
    const a = b.input('a', [5]);
    const x = b.input('x', [5]);
    const e = b.un('exp', b.neg(a));
    const w = b.sum(e, [-1], false);
    const t = b.un('sin', x);
    const u = b.mul(t, w);
    const v = b.add(e, u);
    const z = b.mul(v, w); // reads w again: after the loop that makes it
    const plan = makePlan(b, [z]);
    const values = new Map<string, Tensor>([
      ['a', { shape: [5], data: Float64Array.of(0, 1, -1, 2, NaN) }],
      ['x', { shape: [5], data: Float64Array.of(3, -0, Infinity, 0.5, 1) }],
    ]);
    const source = expectSame(plan, values);
    expect(count(source, 'for (')).toBe(2);
  });

  it('turn the reverse pass of the lecture function over 1e5 points into one loop, writing only what is used outside it', () => {
    const engine = new Engine();
    const n = 100_000;
    const at = { qz_7: Array.from({ length: n }, (_, i) => Math.cos(i) * 3) };
    const expr = 'sum(sqrt(qz_7^2 + exp(qz_7^2)) + cos(qz_7^2 + exp(qz_7^2)))';
    const point = readPoint(engine, { expr, at }, at, ['at']);
    const plan = point.prepared.gradientProgram(point.wrt).plan;
    const source = expectSame(plan, point.inputs);
    expect(count(source, 'for (')).toBe(1);
    // Two arrays: the summand (for the sum) and the gradient (an output); no kernel for any member.
    expect(count(source, 'new Float64Array')).toBe(2);
    expect(count(source, 'K[')).toBe(1); // the sum
    expect(source).not.toContain('qz_7');
    expect(source).toMatch(/^[\w\s"();=[\],.+\-*/<>!?:{}]*$/);
  });

  it('carry no request text: input names stay out of the source', () => {
    const b = new Builder({ optimize: false });
    const names = ['constructor', 'x$1', '"); globalThis.pwnedFuse = 1; ("', 'toString'];
    const ins = names.map((name) => b.input(name, [6]));
    const one = b.input('k"]; pwnedFuse(', [1]);
    let acc = ins[0]!;
    for (const i of ins.slice(1)) acc = b.add(b.mul(acc, i), b.un('tanh', i));
    const out = b.div(acc, one);
    const plan = makePlan(b, [out, acc]);
    const values = new Map<string, Tensor>(names.map((name, k) => [name, { shape: [6], data: Float64Array.from({ length: 6 }, (_, i) => i - k) }]));
    values.set('k"]; pwnedFuse(', { shape: [1], data: Float64Array.of(0.25) });
    const source = expectSame(plan, values);
    for (const name of [...names, 'pwnedFuse', 'x$1']) expect(source).not.toContain(name);
    expect(count(source, 'for (')).toBe(1);
    expect((globalThis as Record<string, unknown>).pwnedFuse).toBeUndefined();
  });

  it('allocate no intermediate arrays: only the values used outside the loop are written', () => {
    const b = new Builder({ optimize: false });
    const x = b.input('x', [2, 3]);
    const s = b.input('s', []);
    let y = x;
    for (let k = 0; k < 50; k++) y = b.add(b.mul(b.un('sin', y), s), x);
    const plan = makePlan(b, [y]);
    const data = Float64Array.of(0.1, -2, 3, NaN, -Infinity, 0);
    const source = expectSame(
      plan,
      new Map([
        ['x', { shape: [2, 3], data }],
        ['s', { shape: [], data: Float64Array.of(0.9) }],
      ]),
    );
    expect(count(source, 'for (')).toBe(1);
    expect(count(source, 'new Float64Array')).toBe(1);
    expect(count(source, 'K[')).toBe(0);
    // One line per member inside the loop: bounded source.
    expect(source.split('\n').length).toBeLessThan(3 * 150 + 30);
  });

  it('put a step in the loop of its consumers, not of its producer, when the consumers cannot join the producer', () => {
    // A layer's tanh, a product through it, and the reverse pass's (1 - h²) * g: 1 - h² goes
    // with its consumer (after the product), so the forward loop writes only h.
    const b = new Builder({ optimize: false });
    const x = b.input('x', [4, 3]);
    const w = b.input('w', [3, 3]);
    const h = b.un('tanh', b.mul(x, b.scalar(2)));
    const m = b.matmul(h, w);
    const out = b.mul(m, b.sub(b.scalar(1), b.mul(h, h)));
    const plan = makePlan(b, [out]);
    const source = expectSame(
      plan,
      new Map([
        ['x', { shape: [4, 3], data: Float64Array.from({ length: 12 }, (_, i) => i / 4 - 1.5) }],
        ['w', { shape: [3, 3], data: Float64Array.from({ length: 9 }, (_, i) => (i % 4) - 1) }],
      ]),
    );
    expect(count(source, 'for (')).toBe(2);
    expect(count(source, 'new Float64Array')).toBe(2);
  });

  it('report where a NaN first arose as interpreted plans do (the report re-runs the plan interpreted)', () => {
    const engine = new Engine();
    const at = { x: [-1, 2, 0, 3, 4] };
    const point = readPoint(engine, { expr: 'sum(sqrt(x * x - 1) * exp(-x) + x)', at }, at, ['at']);
    const job = grad(point.prepared, point.inputs, point.wrt);
    const first = job.run();
    const plan = point.prepared.gradientProgram(point.wrt).plan;
    expect(plan.compiled.runner).toBeUndefined();
    job.run();
    const compiled = job.run();
    expect(plan.compiled.runner!.source).toContain('for (');
    expect(compiled.warnings).toEqual(first.warnings);
    expect(compiled.warnings.some((w) => w.code === 'non_finite')).toBe(true);
    expect(sameBits(compiled.gradient.get('x')!, first.gradient.get('x')!)).toBe(true);
  });

  it('leave a lone elementwise step to its kernel, and split loops past MAX_LOOP_MEMBERS', () => {
    const b = new Builder({ optimize: false });
    const x = b.input('x', [2, 2]);
    const w = b.input('w', [2, 2]);
    const lone = b.un('tanh', b.matmul(x, w));
    let y = b.matmul(lone, w);
    const chain = 2 * MAX_LOOP_MEMBERS + 100;
    for (let k = 0; k < chain; k++) y = b.un(k % 2 ? 'sin' : 'atan', y);
    const plan = makePlan(b, [y]);
    const data = Float64Array.of(0.5, -1, 2, NaN);
    const source = expectSame(
      plan,
      new Map([
        ['x', { shape: [2, 2], data }],
        ['w', { shape: [2, 2], data: Float64Array.of(1, 2, -3, 0.25) }],
      ]),
    );
    expect(count(source, 'K[')).toBe(3); // two products and the tanh
    expect(source.match(/^L\d+\(/gm)).toHaveLength(3); // three loops run
    expect(count(source, 'for (')).toBe(2); // two of the same form share a function
    for (const loop of source.split('function L').slice(1)) expect(count(loop, 'Math.')).toBeLessThanOrEqual(MAX_LOOP_MEMBERS);
  });

  it('leave broadcasting steps to their kernels, and fuse around them', () => {
    const b = new Builder({ optimize: false });
    const x = b.input('x', [3, 4]);
    const row = b.input('row', [4]);
    const e = b.un('exp', b.neg(x));
    const biased = b.add(e, row); // general broadcasting: a kernel
    const out = b.un('tanh', b.mul(biased, e));
    const plan = makePlan(b, [out]);
    const source = expectSame(
      plan,
      new Map([
        ['x', { shape: [3, 4], data: Float64Array.from({ length: 12 }, (_, i) => i / 3 - 2) }],
        ['row', { shape: [4], data: Float64Array.of(1, NaN, -1, Infinity) }],
      ]),
    );
    expect(count(source, 'K[')).toBe(1);
    expect(count(source, 'for (')).toBe(2);
  });
});
