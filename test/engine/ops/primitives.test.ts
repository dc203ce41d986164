// Every primitive is one op-table entry with every part: kernel, rules, cost, words, scalar code
// (elementwise ops), and how the languages call it. A primitive missing a part fails here, and
// so does one the languages cannot call by the name its entry exposes. Then the two primitives
// added as the example of "Adding a primitive" (atan2, hypot) and norm at the edges of float64.

import { describe, expect, it } from 'vitest';
import { compilePlan } from '../../../src/engine/ir/compile.js';
import { Builder } from '../../../src/engine/ir/builder.js';
import { interpret, makePlan } from '../../../src/engine/ir/evaluate.js';
import { lowerGraph } from '../../../src/engine/ir/from-json.js';
import { parseProgram } from '../../../src/engine/lang/index.js';
import { lowerProgram } from '../../../src/engine/lang/lower.js';
import { describeFunctions } from '../../../src/engine/ops/catalog.js';
import { FUNCTIONS } from '../../../src/engine/ops/functions.js';
import { ENTRIES, conventions, nonFiniteHint } from '../../../src/engine/ops/table.js';
import type { AttrsOf, OpName } from '../../../src/engine/ops/types.js';
import { BINARY_NAMES, UNARY_NAMES } from '../../../src/engine/tensor/elementwise.js';
import type { Shape, Tensor } from '../../../src/engine/tensor/tensor.js';
import { gradAndHvp, jvp, vjp, type OpCase } from '../harness.js';

const OP_NAMES = Object.keys(ENTRIES) as OpName[];
const ELEMENTWISE = new Set<string>([...UNARY_NAMES, ...BINARY_NAMES, 'where']);

/** Argument shapes an exposed primitive accepts: square matrices fit every one of them. */
function argShapes(op: OpName): Shape[] {
  const arity = ENTRIES[op].arity;
  return Array.from({ length: arity === 'variadic' ? 2 : arity }, () => [3, 3]);
}

/** Build `source` over inputs of the given shapes, as the expression language does. */
function buildSource(source: string, shapes: readonly Shape[]): Builder {
  const b = new Builder({ optimize: false });
  shapes.forEach((s, i) => b.input(`a${i}`, s));
  lowerProgram(b, parseProgram(source));
  return b;
}

function sameBits(a: Tensor, b: Tensor): boolean {
  return a.data.length === b.data.length && a.data.every((v, i) => Object.is(v, b.data[i]));
}

describe('every op-table entry', () => {
  it.each(OP_NAMES)('%s has a kernel, rules for every argument, a cost, words and a language decision', (op) => {
    const def = ENTRIES[op];
    expect(typeof def.impl).toBe('function');
    expect(typeof def.shape).toBe('function');
    expect(typeof def.jvp).toBe('function');
    expect(typeof def.cost).toBe('function');
    if (Array.isArray(def.vjp)) expect(def.vjp.length, 'one VJP rule (or null) per argument').toBe(def.arity);
    else expect(typeof def.vjp).toBe('function');
    expect(def.doc.value.length).toBeGreaterThan(0);
    expect(def.doc.derivative.length).toBeGreaterThan(0);
    expect(def.language, 'language: an exposure or null, never missing').not.toBeUndefined();
    expect(def.scalar, 'scalar: code or null, never missing').not.toBeUndefined();
    if (def.convention !== undefined) expect(conventions()).toContain(def.convention);
    expect(nonFiniteHint(op)).toBe(def.hint);
    expect(nonFiniteHint(op, 'derivative')).toBe(def.derivativeHint);
  });

  it.each(OP_NAMES)('%s has scalar code exactly when it is elementwise', (op) => {
    expect(ENTRIES[op].scalar !== null).toBe(ELEMENTWISE.has(op));
  });

  it.each(OP_NAMES.filter((op) => ENTRIES[op].language !== null))('%s is a function of the languages, by its own name', (op) => {
    const def = ENTRIES[op];
    const f = FUNCTIONS.get(op);
    expect(f, `FUNCTIONS has ${op}`).toBeDefined();
    expect(f!.composite).toBe(false);
    expect(f!.tensors).toBe(def.arity === 'variadic' ? 'list' : def.arity);
    expect(f!.statics).toEqual(def.language!.statics);
    // The expression language resolves the name and lowers the call to this very primitive.
    const shapes = argShapes(op);
    const b = buildSource(`${op}(${shapes.map((_, i) => `a${i}`).join(', ')})`, shapes);
    expect(b.nodes.at(-1)!.op).toBe(op);
    // So does the graph front end.
    const g = new Builder({ optimize: false });
    shapes.forEach((s, i) => g.input(`a${i}`, s));
    lowerGraph(g, { nodes: [{ id: 'out', op, args: shapes.map((_, i) => `a${i}`) }], output: 'out' });
    expect(g.nodes.at(-1)!.op).toBe(op);
    expect(describeFunctions().ops.find((o) => o.name === op)?.value).toBe(def.doc.value);
  });

  it('the functions of the languages are the exposed primitives plus composites, never a primitive twice', () => {
    const exposed = OP_NAMES.filter((op) => ENTRIES[op].language !== null);
    const primitives = [...FUNCTIONS.values()].filter((f) => !f.composite).map((f) => f.name);
    expect(primitives).toEqual(exposed);
  });

  it('hints and conventions come from the entries', () => {
    expect(nonFiniteHint('log')).toBe('log of a negative number or of 0');
    expect(nonFiniteHint('cholesky')).toBe('the Cholesky factor of a matrix that is not positive definite');
    expect(nonFiniteHint('add')).toBeUndefined();
    expect(nonFiniteHint('sqrt', 'derivative')).toBe('the derivative of sqrt is infinite at 0');
    expect(nonFiniteHint('atan2', 'derivative')).toBe('the derivative of atan2 is NaN at the origin');
    expect(nonFiniteHint('toString')).toBeUndefined();
    expect(nonFiniteHint('__proto__')).toBeUndefined();
    expect(new Set(conventions()).size).toBe(conventions().length);
    expect(describeFunctions().conventions).toEqual(conventions());
  });
});

// Values where kernels and scalar code could part: signed zeros, infinities, NaN, the extremes.
const SPECIAL = [0, -0, 1, -1, 0.5, -2.5, 3, 1e-300, -1e-300, 5e-324, 1e300, -1e300, Number.MAX_VALUE, Infinity, -Infinity, NaN];

describe('compiled plans and the interpreter', () => {
  const elementwise = OP_NAMES.filter((op) => ENTRIES[op].scalar !== null);

  it.each(elementwise)('agree bit for bit on %s over special values (scalar code against the kernel)', (op) => {
    const arity = ENTRIES[op].arity as number;
    // Every combination of special values, one scalar step per combination.
    const b = new Builder({ optimize: false });
    const xs = Array.from({ length: arity }, (_, k) => b.input(`x${k}`, []));
    const outs: number[] = [];
    const tuples: number[][] = [];
    const walk = (prefix: number[]): void => {
      if (prefix.length === arity) {
        tuples.push(prefix);
        return;
      }
      for (const v of arity === 3 ? SPECIAL.slice(0, 6) : SPECIAL) walk([...prefix, v]);
    };
    walk([]);
    const consts = new Map<string, Tensor>();
    tuples.forEach((tuple, t) => {
      const args = tuple.map((v, k) => {
        const name = `c${t}_${k}`;
        consts.set(name, { shape: [], data: Float64Array.of(v) });
        return b.input(name, []);
      });
      outs.push(b.apply(op, args, {} as AttrsOf<typeof op>));
    });
    xs.forEach((x, k) => consts.set(`x${k}`, { shape: [], data: Float64Array.of(k + 0.5) }));
    const plan = makePlan(b, outs);
    const interpreted = interpret(plan, consts);
    const runner = compilePlan(plan);
    expect(runner.source).toContain('const s'); // the steps did compile to scalar code
    const compiled = runner(consts);
    interpreted.forEach((t, i) => expect(sameBits(compiled[i]!, t), `${op}(${tuples[i]!.join(', ')})`).toBe(true));
  });
});

const scalar = (v: number): Tensor => ({ shape: [], data: Float64Array.of(v) });

/** Value and gradient of `source` at scalar inputs a0, a1, ... */
function valueAndGradient(op: OpName, args: number[]): { value: number; grad: number[] } {
  const c: OpCase = { op, args: args.map(() => ({ shape: [] })) };
  const values = args.map(scalar);
  const { grad } = gradAndHvp(c, values, scalar(1), values.map(() => scalar(0)));
  const b = buildSource(`${op}(${args.map((_, i) => `a${i}`).join(', ')})`, args.map(() => []));
  const bindings = new Map(args.map((v, i) => [`a${i}`, scalar(v)] as const));
  const value = interpret(makePlan(b, [b.nodes.length - 1]), bindings)[0]!.data[0]!;
  return { value, grad: grad.map((g) => g.data[0]!) };
}

describe('atan2(y, x)', () => {
  it('is Math.atan2 at the origin (signed zeros), with NaN derivatives there as in PyTorch', () => {
    const cases: [number, number, number][] = [
      [0, 0, 0],
      [-0, 0, -0],
      [0, -0, Math.PI],
      [-0, -0, -Math.PI],
    ];
    for (const [y, x, want] of cases) {
      const { value, grad } = valueAndGradient('atan2', [y, x]);
      expect(Object.is(value, want), `atan2(${y}, ${x}) = ${value}`).toBe(true);
      expect(grad.every(Number.isNaN), `gradient at the origin: ${grad}`).toBe(true);
    }
  });

  it('has the closed-form gradient (x, -y) / (x² + y²), without overflow or underflow', () => {
    for (const [y, x] of [
      [1, 2],
      [-3, 0.5],
      [2, -1],
      [1e200, 1e200],
      [1e-200, 1e-200],
      [1e300, -1e-300],
    ] as const) {
      const { value, grad } = valueAndGradient('atan2', [y, x]);
      expect(value).toBe(Math.atan2(y, x));
      const r = Math.hypot(y, x);
      const want = [x / r / r, -y / r / r];
      grad.forEach((g, i) => expect(Math.abs(g - want[i]!), `∂/∂${'yx'[i]} at (${y}, ${x}): ${g}`).toBeLessThanOrEqual(1e-14 * Math.abs(want[i]!)));
    }
    const { grad } = valueAndGradient('atan2', [1e200, 1e200]);
    expect(grad[0]! / (0.5e-200)).toBeCloseTo(1, 14); // PyTorch's x / (x² + y²) gives 0 here
  });
});

describe('hypot(x, y)', () => {
  it('is 0 at the origin, with NaN derivatives there as in PyTorch', () => {
    for (const [x, y] of [
      [0, 0],
      [-0, 0],
      [0, -0],
      [-0, -0],
    ]) {
      const { value, grad } = valueAndGradient('hypot', [x!, y!]);
      expect(Object.is(value, 0)).toBe(true);
      expect(grad.every(Number.isNaN)).toBe(true);
    }
  });

  it('has the gradient (x, y) / hypot(x, y), at 1e200 and at 1e-200 too', () => {
    for (const s of [1, 1e200, 1e-200]) {
      const { value, grad } = valueAndGradient('hypot', [3 * s, -4 * s]);
      expect(value / (5 * s)).toBeCloseTo(1, 15);
      expect(grad[0]).toBeCloseTo(0.6, 15);
      expect(grad[1]).toBeCloseTo(-0.8, 15);
    }
    const big = valueAndGradient('hypot', [1e200, 1e200]);
    expect(big.value / 1.4142135623730951e200).toBeCloseTo(1, 15);
    big.grad.forEach((g) => expect(g).toBeCloseTo(Math.SQRT1_2, 15));
  });
});

describe('norm at the edges of float64', () => {
  for (const s of [1e200, 1e-200]) {
    it(`norm([${s}, ${s}]) = ${Math.SQRT2 * s} with gradient [0.7071, 0.7071]`, () => {
      const x: Tensor = { shape: [2], data: Float64Array.of(s, s) };
      const c: OpCase = { op: 'norm', args: [{ shape: [2] }], attrs: { axes: [-1], keepdims: false } };
      const { grad } = gradAndHvp(c, [x], scalar(1), [{ shape: [2], data: new Float64Array(2) }]);
      const b = buildSource('norm(a0)', [[2]]);
      const value = interpret(makePlan(b, [b.nodes.length - 1]), new Map([['a0', x]]))[0]!.data[0]!;
      expect(value / (Math.SQRT2 * s)).toBeCloseTo(1, 15);
      [...grad[0]!.data].forEach((g) => expect(g).toBeCloseTo(Math.SQRT1_2, 15));
      // Reverse mode alone, with a cotangent of 2: twice the gradient.
      const [adjoint] = vjp(c, [x], scalar(2));
      [...adjoint!.data].forEach((g) => expect(g).toBeCloseTo(2 * Math.SQRT1_2, 15));
    });
  }

  it('keeps norm(0) = 0 with gradient 0', () => {
    const c: OpCase = { op: 'norm', args: [{ shape: [2] }], attrs: { axes: [-1], keepdims: false } };
    const zero: Tensor = { shape: [2], data: new Float64Array(2) };
    const { grad } = gradAndHvp(c, [zero], scalar(1), [zero]);
    expect([...grad[0]!.data]).toEqual([0, 0]);
  });
});

/** The adjugate by its definition: adj(A)_ij = (-1)^(i+j) det(A without row j and column i), by Laplace expansion. */
function cofactorAdjugate(a: number[][]): number[][] {
  const detOf = (m: number[][]): number =>
    m.length === 0 ? 1 : m[0]!.reduce((s, v, j) => s + (j % 2 === 0 ? 1 : -1) * v * detOf(m.slice(1).map((row) => row.filter((_, c) => c !== j))), 0);
  const n = a.length;
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => ((i + j) % 2 === 0 ? 1 : -1) * detOf(a.filter((_, r) => r !== j).map((row) => row.filter((_, c) => c !== i)))),
  );
}

function matrixTensor(rows: number[][]): Tensor {
  return { shape: [rows.length, rows.length], data: Float64Array.from(rows.flat()) };
}

describe('adjugate, and det at singular matrices', () => {
  const singular = [
    [[1, 2], [2, 4]],
    [[1, 2, 3], [2, 4, 6], [1, 1, 1]],
    [[0, 0, 0], [1, 2, 3], [4, 5, 6]],
    [[2, -1, 0, 1], [1, 0, 1, 1], [3, -1, 1, 2], [0, 1, 5, 2]], // row 3 = row 1 + row 2
    [[0, 0], [0, 0]],
    [[1, 2, 3], [2, 4, 6], [3, 6, 9]], // rank 1: every cofactor is 0
  ];
  const regular = [
    [[2, 1], [1, 3]],
    [[4, -2, 1], [3, 6, -4], [2, 1, 8]],
    [[7]],
  ];

  it.each([...singular, ...regular].map((a) => [JSON.stringify(a), a] as const))('adjugate(%s) is the transposed matrix of cofactors', (_name, a) => {
    const b = buildSource('adjugate(a0)', [[a.length, a.length]]);
    const got = interpret(makePlan(b, [b.nodes.length - 1]), new Map([['a0', matrixTensor(a)]]))[0]!;
    const want = cofactorAdjugate(a).flat();
    [...got.data].forEach((v, i) => expect(Math.abs(v - want[i]!), `entry ${i}: ${v} vs ${want[i]}`).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(want[i]!))));
  });

  it.each(singular.map((a) => [JSON.stringify(a), a] as const))("det's gradient at the singular %s is adj(A)ᵀ, finite, in both modes", (_name, a) => {
    const n = a.length;
    const c: OpCase = { op: 'det', args: [{ shape: [n, n] }] };
    const x = matrixTensor(a);
    const want = cofactorAdjugate(a);
    const wantT = want[0]!.map((_, j) => want.map((row) => row[j]!)).flat();
    const [adjoint] = vjp(c, [x], scalar(1));
    [...adjoint!.data].forEach((g, i) => expect(Math.abs(g - wantT[i]!), `∂det/∂A[${i}] = ${g}, cofactor ${wantT[i]}`).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(wantT[i]!))));
    // Forward mode: the directional derivative along E_ij is the (i, j) cofactor.
    for (let i = 0; i < n * n; i++) {
      const e: Tensor = { shape: [n, n], data: new Float64Array(n * n) };
      e.data[i] = 1;
      const t = jvp(c, [x], [e]);
      expect(Math.abs(t.data[0]! - wantT[i]!), `forward mode along E${i}`).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(wantT[i]!)));
    }
  });
});

