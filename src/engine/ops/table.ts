// The primitives: one table entry per op, siblings side by side. An entry is everything about its
// op: shape rule, kernel call, scalar code for compiled plans, JVP and VJP rules, cost, words,
// convention, non-finite hint, and how the languages call it (functions.ts derives its list of
// primitives from `language`; catalog.ts its conventions). Every derivative rule is written
// with the builder's own differentiable primitives, so derivatives of derivatives need no extra
// code (Hessians are forward-over-reverse). Rules work on trailing dims with negative axes, so a
// stack of tangents (extra leading dims) flows through the same rules: see ops/types.ts.

import type { NodeId } from '../ir/node-id.js';
import { binaryKernel, broadcastTo as broadcastKernel, mapBinary, mapUnary, unaryKernel, where as whereKernel, type BinaryName, type UnaryName } from '../tensor/elementwise.js';
import { cholesky, det, inv, logAbsDet, solve, triangularSolve } from '../tensor/linalg.js';
import { concat, diagEmbed, diagPart, permute, stridedScatter, stridedSlice } from '../tensor/layout.js';
import { matmul, type VectorOperands } from '../tensor/matmul.js';
import { adjugate } from '../tensor/adjugate.js';
import { logsumexp, norm, reduce } from '../tensor/reduce.js';
import { formatShape, reshapeTensor, shapesEqual, sizeOf, type Shape, type Tensor } from '../tensor/tensor.js';
import { broadcastAll, lead, normaliseAxes, reducedShape, requireRank, requireSquare, trailing } from './shapes.js';
import {
  ShapeError,
  type AttrsOf,
  type LanguageExposure,
  type MatmulAttrs,
  type NoAttrs,
  type OpDef,
  type OpName,
  type OpTable,
  type ReduceAttrs,
  type ReduceName,
  type RuleBuilder,
  type RuleContext,
  type SolveAttrs,
  type TriSolveAttrs,
  type StaticParam,
} from './types.js';

// --- conventions shared by several entries (GET /ops lists each sentence once) ------------

const KINKS = "abs'(0) = 0, relu'(0) = 0, sign' = 0 everywhere (subgradient 0 at the kink).";
const TIES = 'At a tie, max, min, maximum and minimum share the derivative equally among the tied elements.';
const PIECEWISE_CONSTANT = 'Comparisons (< <= > >= == !=) and the condition of where have zero derivative.';
const POWER_AND_NORM = "d(x^y)/dx is taken as 0 where y = 0, and d(x^y)/dy = x^y ln x as 0 where x = 0 and y ≥ 0; norm'(0) = 0.";
const EMPTY_AXES =
  'Over an axis of length 0, sum is 0, prod 1, norm 0 and logsumexp -Infinity (mean is 0/0, NaN, with a warning); max and min have no value there and are refused (422 shape_mismatch), as in NumPy, unless their result has no elements either.';
const IEEE = "sqrt, log, division and the like follow IEEE arithmetic: sqrt'(0) is Infinity, with a warning naming the step.";

/** Called by name with its tensors and no keyword arguments. */
const PLAIN: LanguageExposure = { statics: [] };

/** Extras of an elementwise entry: its scalar code (exactly what its kernel computes) and words. */
interface Elementwise<Code> {
  /** The scalar code: compiled plans inline it, and the kernel is a loop generated from it. */
  readonly code: Code;
  /** For a binary op: the code for some constant right operands, hoisted out of the kernel's loop (same bits). */
  readonly constantRight?: ReadonlyMap<number, (a: string) => string>;
  readonly convention?: string;
  readonly hint?: string;
  readonly derivativeHint?: string;
}

function extras({ convention, hint, derivativeHint }: Elementwise<unknown>): { convention?: string; hint?: string; derivativeHint?: string } {
  return {
    ...(convention === undefined ? {} : { convention }),
    ...(hint === undefined ? {} : { hint }),
    ...(derivativeHint === undefined ? {} : { derivativeHint }),
  };
}

/** A JavaScript call `f(a, ...)` as scalar code. */
const call =
  (f: string) =>
  (...args: string[]): string =>
    `${f}(${args.join(', ')})`;

// --- families ---------------------------------------------------------------------------

/**
 * An elementwise function f. `scale(b, t, x, out)` returns t * f'(x) written with primitives; the
 * Jacobian is diagonal, so the same product is the JVP (t a tangent) and the VJP (t a cotangent).
 */
function unaryOp(
  name: UnaryName,
  doc: { value: string; derivative: string },
  scale: ((b: RuleBuilder, t: NodeId, x: NodeId, out: NodeId) => NodeId) | null,
  more: Elementwise<(a: string) => string>,
): OpDef<NoAttrs> {
  // The kernel is the loop generated from the scalar code (tensor/elementwise.ts).
  const kernel = unaryKernel(more.code);
  return {
    arity: 1,
    broadcasts: false,
    shape: ([x]) => x!,
    impl: ([x]) => mapUnary(kernel, x!),
    scalar: ([a]) => more.code(a!),
    language: PLAIN,
    ...extras(more),
    jvp: scale === null ? () => null : ({ b }, [x], [t], out) => (t === null ? null : scale(b, t, x!, out)),
    vjp: [scale === null ? null : ({ b }, g, [x], out) => scale(b, g, x!, out)],
    cost: (_, out) => sizeOf(out),
    doc,
  };
}

/** `dx` and `dy` return the partial derivative factors ∂f/∂x and ∂f/∂y as nodes. */
function binaryOp(
  name: BinaryName,
  doc: { value: string; derivative: string },
  partials: {
    dx: (b: RuleBuilder, x: NodeId, y: NodeId, out: NodeId) => NodeId;
    dy: (b: RuleBuilder, x: NodeId, y: NodeId, out: NodeId) => NodeId;
  } | null,
  more: Elementwise<(a: string, b: string) => string>,
): OpDef<NoAttrs> {
  const kernel = binaryKernel(more.code, more.constantRight);
  return {
    arity: 2,
    broadcasts: true,
    shape: (args) => broadcastAll(args),
    impl: ([x, y]) => mapBinary(name, kernel, x!, y!),
    scalar: ([a, b]) => more.code(a!, b!),
    language: PLAIN,
    ...extras(more),
    jvp:
      partials === null
        ? () => null
        : ({ b }, [x, y], [tx, ty], out) =>
            b.sumOf([
              tx === null ? null : b.mul(tx, partials.dx(b, x!, y!, out)),
              ty === null ? null : b.mul(ty, partials.dy(b, x!, y!, out)),
            ]),
    vjp:
      partials === null
        ? [null, null]
        : [({ b }, g, [x, y], out) => b.mul(g, partials.dx(b, x!, y!, out)), ({ b }, g, [x, y], out) => b.mul(g, partials.dy(b, x!, y!, out))],
    cost: (_, out) => sizeOf(out),
    doc,
  };
}

const comparison = (name: BinaryName, symbol: '<' | '<=' | '>' | '>=' | '==' | '!='): OpDef<NoAttrs> =>
  binaryOp(name, { value: `1 where x ${symbol} y, else 0 (broadcasting)`, derivative: 'zero: a comparison is piecewise constant' }, null, {
    code: (a, b) => `(${a} ${symbol === '==' ? '===' : symbol === '!=' ? '!==' : symbol} ${b} ? 1 : 0)`,
    convention: PIECEWISE_CONSTANT,
  });

/** Reshape a reduction's cotangent or output back to keepdims layout. */
function keepdimsOf(b: RuleBuilder, v: NodeId, xShape: Shape, attrs: ReduceAttrs): NodeId {
  if (attrs.keepdims) return v;
  return b.reshape(v, reducedShape(xShape, attrs.axes, false), reducedShape(xShape, attrs.axes, true));
}

/** Spread a reduction's cotangent back over x's shape. */
function spread(b: RuleBuilder, g: NodeId, x: NodeId, attrs: ReduceAttrs): NodeId {
  const xShape = b.shapeOf(x);
  return b.broadcastTo(keepdimsOf(b, g, xShape, attrs), xShape);
}

function reduceShape([x]: readonly Shape[], attrs: ReduceAttrs): Shape {
  for (const a of attrs.axes) {
    if (!Number.isInteger(a) || a >= 0 || a < -x!.length) throw new ShapeError(`axis ${a} is out of range for shape ${formatShape(x!)}`);
  }
  return reducedShape(x!, attrs.axes, attrs.keepdims);
}

function positiveAxes(rank: number, axes: readonly number[]): number[] {
  return axes.map((a) => a + rank);
}

/** A reduction's keyword arguments (also those of the composite `mean`). */
export const REDUCTION_PARAMS: readonly StaticParam[] = [
  { name: 'axis', kind: 'axes', optional: true, about: 'an axis or a list of axes (default: all)' },
  { name: 'keepdims', kind: 'bool', optional: true, about: 'keep reduced axes with size 1' },
];

/** `name(x, axis=..., keepdims=...)`; reducing no axis is x itself (but norm still takes |x|). */
function reductionLanguage(name: ReduceName): LanguageExposure {
  return {
    statics: REDUCTION_PARAMS,
    lower: (b, [x], s) => {
      const axes = normaliseAxes(s.axis as number[] | undefined, b.shapeOf(x!).length);
      if (axes.length === 0 && name !== 'norm') return x!;
      return b.apply(name, [x!], { axes, keepdims: s.keepdims === true });
    },
  };
}

/**
 * A reduction whose derivative is a weight per element: d out = sum(w * dx) over the reduced
 * axes, and x̄ = spread(ḡ) * w. `weight` returns w (keepdims-broadcastable against x).
 */
function weightedReduction(
  name: ReduceName,
  doc: { value: string; derivative: string },
  kernel: (x: Tensor, axes: number[]) => Tensor,
  weight: (b: RuleBuilder, x: NodeId, outKeep: NodeId, attrs: ReduceAttrs) => NodeId,
  more: { convention?: string; hint?: string } = {},
): OpDef<ReduceAttrs> {
  return {
    arity: 1,
    broadcasts: false,
    shape: reduceShape,
    impl: ([x], attrs, shape) => reshapeTensor(kernel(x!, positiveAxes(x!.shape.length, attrs.axes)), shape),
    jvp: ({ b }, [x], [t], out, attrs) => {
      if (t === null) return null;
      const w = weight(b, x!, keepdimsOf(b, out, b.shapeOf(x!), attrs), attrs);
      return b.sum(b.mul(t, w), attrs.axes, attrs.keepdims);
    },
    vjp: [({ b }, g, [x], out, attrs) => b.mul(spread(b, g, x!, attrs), weight(b, x!, keepdimsOf(b, out, b.shapeOf(x!), attrs), attrs))],
    cost: ([x]) => sizeOf(x!),
    doc,
    scalar: null,
    language: reductionLanguage(name),
    ...more,
  };
}

/**
 * Max and min: the gradient goes to the elements equal to the result, shared equally at a tie.
 * Over an axis of length 0 they have no value (no identity, unlike sum's 0 or prod's 1): refused
 * by the shape rule, as NumPy refuses it, unless the result has no elements either.
 */
const extremum = (name: 'max' | 'min'): OpDef<ReduceAttrs> => ({
  ...extremumReduction(name),
  shape: (args, attrs) => {
    const out = reduceShape(args, attrs);
    if (sizeOf(args[0]!) === 0 && sizeOf(out) > 0) {
      throw new ShapeError(
        `${name} over an empty axis has no value: shape ${formatShape(args[0]!)} has no elements along the axes reduced (NumPy refuses it too; sum is 0, prod 1 and logsumexp -Infinity there)`,
      );
    }
    return out;
  },
});

const extremumReduction = (name: 'max' | 'min'): OpDef<ReduceAttrs> =>
  weightedReduction(
    name,
    {
      value: `the ${name === 'max' ? 'largest' : 'smallest'} element (over axis, or the whole tensor)`,
      derivative: `the cotangent flows to the ${name === 'max' ? 'largest' : 'smallest'} element; at a tie it is shared equally among the tied elements`,
    },
    (x, axes) => reduce(name, x, axes),
    (b, x, outKeep, attrs) => {
      const hit = b.bin('eq', x, outKeep);
      return b.div(hit, b.sum(hit, attrs.axes, true));
    },
    { convention: TIES },
  );

// --- shape-only rules -------------------------------------------------------------------

/** The core ranks of matmul's arguments: 1 for a vector, 2 for a matrix. */
function coreRanks({ vectors }: MatmulAttrs): [number, number] {
  return [vectors === 'left' || vectors === 'both' ? 1 : 2, vectors === 'right' || vectors === 'both' ? 1 : 2];
}

/** A matrix shape as the product reads it: its last two dims swapped when it is transposed. */
function asRead(s: Shape, transposed: boolean | undefined): Shape {
  return transposed === true ? [...lead(s, 2), s.at(-1)!, s.at(-2)!] : s;
}

/** matmul's attributes with only the transposes that are set (so plain products keep `{ vectors }`). */
export function matmulAttrs(vectors: VectorOperands, transA: boolean, transB: boolean): MatmulAttrs {
  return { vectors, ...(transA ? { transA } : {}), ...(transB ? { transB } : {}) };
}

/** solve's and trisolve's attributes with only what is set. */
function solveAttrs<T extends SolveAttrs>(base: T, transposed: boolean): T {
  const { transposed: _was, ...rest } = base;
  return (transposed ? { ...rest, transposed } : rest) as T;
}

function matmulShape([stored, storedB]: readonly Shape[], attrs: MatmulAttrs): Shape {
  const [left, right] = coreRanks(attrs);
  requireRank(stored!, left, 'matmul');
  requireRank(storedB!, right, 'matmul');
  const a = asRead(stored!, attrs.transA);
  const b = asRead(storedB!, attrs.transB);
  const k = a!.at(-1)!;
  const k2 = right === 1 ? b!.at(-1)! : b!.at(-2)!;
  if (k !== k2) {
    throw new ShapeError(`matmul: shapes ${formatShape(a!)} and ${formatShape(b!)} do not fit: ${k} columns on the left, ${k2} rows on the right`);
  }
  return [...broadcastAll([lead(a!, left), lead(b!, right)]), ...(left === 2 ? [a!.at(-2)!] : []), ...(right === 2 ? [b!.at(-1)!] : [])];
}

/** NumPy's matmul, as the languages call it (and the @ operator): a 1-D operand is a vector. */
export function numpyMatmul(b: RuleBuilder, x: NodeId, y: NodeId): NodeId {
  const rx = b.shapeOf(x).length;
  const ry = b.shapeOf(y).length;
  if (rx === 0 || ry === 0) throw new ShapeError('matmul needs tensors of rank at least 1, not scalars: use * to scale');
  return b.matmul(x, y, rx === 1 ? (ry === 1 ? 'both' : 'left') : ry === 1 ? 'right' : 'none');
}

/**
 * A batched tangent of one of matmul's arguments with its batch dims lined up against the
 * other's: padded with size-1 dims to the largest number of leading (non-core) dims. (The forward
 * pass pads to the largest rank, which is the same unless one argument is a vector.)
 */
function alignLeading(ctx: RuleContext, t: NodeId, primals: readonly NodeId[], index: number, attrs: MatmulAttrs): NodeId {
  return alignCores(ctx, t, primals, index, coreRanks(attrs));
}

/** alignLeading for arguments of the given core ranks. */
function alignCores(ctx: RuleContext, t: NodeId, primals: readonly NodeId[], index: number, ranks: readonly number[]): NodeId {
  const { b, batch } = ctx;
  if (batch.length === 0) return t;
  const leading = primals.map((p, i) => b.shapeOf(p).length - ranks[i]!);
  const shape = b.shapeOf(primals[index]!);
  const have = b.shapeOf(t).slice(batch.length);
  const want = [...new Array<number>(Math.max(...leading) - leading[index]!).fill(1), ...shape];
  return shapesEqual(have, want) ? t : b.reshape(t, have, want);
}

/** The outer product u vᵀ of two vectors (their last dims; leading dims broadcast). */
function outerProduct(b: RuleBuilder, u: NodeId, v: NodeId): NodeId {
  const m = b.shapeOf(u).at(-1)!;
  const n = b.shapeOf(v).at(-1)!;
  return b.mul(b.reshape(u, [m], [m, 1]), b.reshape(v, [n], [1, n]));
}

function solveShape([a, c]: readonly Shape[], attrs: SolveAttrs): Shape {
  const n = requireSquare(a!, 'solve');
  const core = attrs.vector === true ? 1 : 2;
  requireRank(c!, core, 'solve');
  if (c!.at(-core) !== n) throw new ShapeError(`solve: A of shape ${formatShape(a!)} and b of shape ${formatShape(c!)} do not fit`);
  return [...broadcastAll([lead(a!, 2), lead(c!, core)]), n, ...(core === 2 ? [c!.at(-1)!] : [])];
}

/** A solve's kernel on a vector right side: the vector as a column (a view), the result back. */
function solveVector(kernel: (a: Tensor, c: Tensor) => Tensor, a: Tensor, c: Tensor, vector: boolean | undefined): Tensor {
  if (vector !== true) return kernel(a, c);
  const x = kernel(a, { shape: [...c.shape, 1], data: c.data });
  return { shape: x.shape.slice(0, -1), data: x.data };
}

/** A batched tangent of a solve's argument lined up against the other's batch dims (see alignLeading). */
function alignSolve(ctx: RuleContext, t: NodeId | null, a: NodeId, c: NodeId, index: number, vector: boolean | undefined): NodeId | null {
  if (t === null || vector !== true) return t;
  return alignCores(ctx, t, [a, c], index, [2, 1]);
}

/** The right side's matrix product M X (X a vector with `vector`). */
function timesSolution(b: RuleBuilder, m: NodeId, x: NodeId, vector: boolean | undefined): NodeId {
  return vector === true ? b.matmul(m, x, 'right') : b.matmul(m, x);
}

/**
 * Ā's outer factor B̄ Xᵀ for a solve (vectors: the outer product), or its transpose X B̄ᵀ for a
 * matrix stored transposed: the product taken in the other order, never a transposed copy.
 */
function solutionOuter(b: RuleBuilder, bBar: NodeId, x: NodeId, vector: boolean | undefined, transposed?: boolean): NodeId {
  const [u, v] = transposed === true ? [x, bBar] : [bBar, x];
  return vector === true ? outerProduct(b, u, v) : b.matmul(u, b.mT(v));
}

/** x, or its matrix transpose when `transposed`. */
function transposeIf(b: RuleBuilder, x: NodeId, transposed: boolean | undefined): NodeId {
  return transposed === true ? b.mT(x) : x;
}

/** Keep the lower (or upper) triangle, diagonal included, of the last two dims. */
function triangle(b: RuleBuilder, x: NodeId, lower: boolean): NodeId {
  const n = b.shapeOf(x).at(-1)!;
  b.checkSize([n, n], 'a triangular mask');
  const data = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (lower ? j <= i : j >= i) data[i * n + j] = 1;
  return b.mul(x, b.constant({ shape: [n, n], data }));
}

function sliceCore(x: Shape, attrs: { starts: readonly number[] }): number {
  const k = attrs.starts.length;
  requireRank(x, k, 'slice');
  return k;
}

/** The Φ mask of the Cholesky rules: ones below the diagonal, one half on it. */
function choleskyMask(b: RuleBuilder, n: number): NodeId {
  // Counted before it is built: a batch of no matrices may still have n of 10⁵.
  b.checkSize([n, n], 'a triangular mask');
  const data = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) data[i * n + j] = 1;
    data[i * n + i] = 0.5;
  }
  return b.constant({ shape: [n, n], data });
}

/** Materialise a zero tangent for ops whose arguments must all be present (concat). */
function tangentOrZeros(ctx: RuleContext, t: NodeId | null, primal: NodeId): NodeId {
  return t ?? ctx.b.zeros([...ctx.batch, ...ctx.b.shapeOf(primal)]);
}

const half = (b: RuleBuilder): NodeId => b.scalar(0.5);
const one = (b: RuleBuilder): NodeId => b.scalar(1);

/**
 * sech² x (tanh's derivative) with full relative accuracy: 1 - tanh² x where |x| < 1/2 (its own
 * derivative, -2 tanh x sech² x, is then exact near 0), else 4e / (1 + e)² with e = e^(-2|x|),
 * which stays accurate where tanh x rounds to ±1 and 1 - tanh² x would be 0 (|x| > 19).
 */
function sech2(b: RuleBuilder, x: NodeId, tanhX: NodeId = b.un('tanh', x)): NodeId {
  const near = b.sub(one(b), b.mul(tanhX, tanhX));
  const size = b.un('abs', x);
  const e = b.un('exp', b.mul(b.scalar(-2), size));
  const onePlus = b.add(one(b), e);
  const far = b.div(b.mul(b.scalar(4), e), b.mul(onePlus, onePlus));
  return b.where(b.bin('lt', size, half(b)), near, far);
}

/**
 * √(1 - x²) for asin' and acos': as √((1 - x)(1 + x)) where |x| ≥ 1/2 (1 - x is exact there,
 * and 1 - x·x near ±1 keeps only the digits x·x does not round away), as √(1 - x·x) below
 * (whose derivative, -2x, stays exact near 0, where that of the product cancels).
 */
function oneMinusSquareRoot(b: RuleBuilder, x: NodeId): NodeId {
  const small = b.bin('lt', b.un('abs', x), half(b));
  return b.un('sqrt', b.where(small, b.sub(one(b), b.mul(x, x)), b.mul(b.sub(one(b), x), b.add(one(b), x))));
}

/**
 * logsumexp's weight, softmax(x) = e^(x - m) / Σ e^(x - m) with m the max: x - m is exact near
 * the max, whereas e^(x - logsumexp x) carries logsumexp's rounding (ε·|logsumexp x|, relative)
 * into every weight. (Its derivative through m is 0 in exact arithmetic and ε-small in floats.)
 */
function softmaxWeight(b: RuleBuilder, x: NodeId, outKeep: NodeId, attrs: ReduceAttrs): NodeId {
  // Over an empty axis max has no value; the weight has no elements either.
  if (sizeOf(b.shapeOf(x)) === 0) return b.un('exp', b.sub(x, outKeep));
  const e = b.un('exp', b.sub(x, b.apply('max', [x], { axes: attrs.axes, keepdims: true })));
  return b.div(e, b.sum(e, attrs.axes, true));
}

// --- the table --------------------------------------------------------------------------

export const OPS = {
  input: {
    arity: 0,
    broadcasts: false,
    shape: () => {
      throw new Error('internal: inputs are created by RuleBuilder.input');
    },
    impl: () => {
      throw new Error('internal: inputs are bound, not computed');
    },
    jvp: () => null,
    vjp: [],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'the value given in `at`', derivative: 'seeded: the tangent given (forward mode); the adjoint accumulated (reverse mode)' },
  },
  const: {
    arity: 0,
    broadcasts: false,
    shape: (_, attrs) => attrs.value.shape,
    impl: (_, attrs) => attrs.value,
    jvp: () => null,
    vjp: [],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'a fixed tensor', derivative: 'zero' },
  },

  // Elementwise, one argument. Conventions at kinks: abs'(0) = 0, relu'(0) = 0, sign' = 0.
  neg: {
    ...unaryOp('neg', { value: 'the negation -x', derivative: 'd(-x) = -dx' }, null, { code: (a) => `(-${a})` }),
    jvp: ({ b }, _, [t]) => (t === null ? null : b.neg(t)),
    vjp: [({ b }, g) => b.neg(g)],
  },
  abs: unaryOp('abs', { value: '|x|', derivative: 'd|x| = sign(x) dx (0 at x = 0)' }, (b, t, x) => b.mul(t, b.un('sign', x)), { code: call('Math.abs'), convention: KINKS }),
  sign: unaryOp('sign', { value: '-1, 0 or 1 by the sign of x', derivative: 'zero (also at 0, by convention)' }, null, { code: call('Math.sign'), convention: KINKS }),
  exp: unaryOp('exp', { value: 'e^x', derivative: 'd e^x = e^x dx' }, (b, t, _x, out) => b.mul(t, out), { code: call('Math.exp'), hint: 'exp overflowed' }),
  log: unaryOp('log', { value: 'natural logarithm ln x', derivative: 'd ln x = dx / x' }, (b, t, x) => b.div(t, x), { code: call('Math.log'), convention: IEEE, hint: 'log of a negative number or of 0' }),
  log1p: unaryOp('log1p', { value: 'ln(1 + x), accurate near 0', derivative: 'dx / (1 + x)' }, (b, t, x) => b.div(t, b.add(one(b), x)), { code: call('Math.log1p'), hint: 'log1p of a number ≤ -1' }),
  expm1: unaryOp('expm1', { value: 'e^x - 1, accurate near 0', derivative: 'e^x dx' }, (b, t, x) => b.mul(t, b.un('exp', x)), { code: call('Math.expm1') }),
  sqrt: unaryOp('sqrt', { value: '√x', derivative: 'd√x = dx / (2√x) (infinite at 0)' }, (b, t, _x, out) => b.div(t, b.mul(b.scalar(2), out)), { code: call('Math.sqrt'), convention: IEEE, hint: 'sqrt of a negative number', derivativeHint: 'the derivative of sqrt is infinite at 0' }),
  sin: unaryOp('sin', { value: 'sin x', derivative: 'd sin x = cos x dx' }, (b, t, x) => b.mul(t, b.un('cos', x)), { code: call('Math.sin') }),
  cos: unaryOp('cos', { value: 'cos x', derivative: 'd cos x = -sin x dx' }, (b, t, x) => b.neg(b.mul(t, b.un('sin', x))), { code: call('Math.cos') }),
  tan: unaryOp('tan', { value: 'tan x', derivative: 'd tan x = (1 + tan² x) dx' }, (b, t, _x, out) => b.mul(t, b.add(one(b), b.mul(out, out))), { code: call('Math.tan') }),
  asin: unaryOp('asin', { value: 'arcsin x', derivative: 'dx / √(1 - x²)' }, (b, t, x) => b.div(t, oneMinusSquareRoot(b, x)), { code: call('Math.asin'), hint: 'asin outside [-1, 1]' }),
  acos: unaryOp('acos', { value: 'arccos x', derivative: '-dx / √(1 - x²)' }, (b, t, x) => b.neg(b.div(t, oneMinusSquareRoot(b, x))), { code: call('Math.acos'), hint: 'acos outside [-1, 1]' }),
  atan: unaryOp('atan', { value: 'arctan x', derivative: 'dx / (1 + x²)' }, (b, t, x) => b.div(t, b.add(one(b), b.mul(x, x))), { code: call('Math.atan') }),
  sinh: unaryOp('sinh', { value: 'sinh x', derivative: 'cosh x dx' }, (b, t, x) => b.mul(t, b.un('cosh', x)), { code: call('Math.sinh') }),
  cosh: unaryOp('cosh', { value: 'cosh x', derivative: 'sinh x dx' }, (b, t, x) => b.mul(t, b.un('sinh', x)), { code: call('Math.cosh') }),
  tanh: unaryOp('tanh', { value: 'tanh x', derivative: 'd tanh x = (1 - tanh² x) dx = sech² x dx' }, (b, t, x, out) => b.mul(t, sech2(b, x, out)), { code: call('Math.tanh') }),
  sigmoid: unaryOp('sigmoid', { value: 'σ(x) = 1 / (1 + e^-x)', derivative: 'σ(x)(1 - σ(x)) dx = sech²(x/2)/4 dx' }, (b, t, x) => b.mul(t, b.mul(b.scalar(0.25), sech2(b, b.mul(half(b), x)))), { code: call('H.sigmoid') }),
  relu: unaryOp('relu', { value: 'max(x, 0)', derivative: 'dx where x > 0, else 0 (0 at x = 0)' }, (b, t, x) => b.mul(t, b.bin('gt', x, b.scalar(0))), { code: call('H.relu'), convention: KINKS }),
  softplus: unaryOp('softplus', { value: 'ln(1 + e^x)', derivative: 'σ(x) dx' }, (b, t, x) => b.mul(t, b.un('sigmoid', x)), { code: call('H.softplus') }),

  // Elementwise, two arguments, with NumPy broadcasting (the reverse pass sums broadcast dims away).
  add: binaryOp('add', { value: 'x + y', derivative: 'dx + dy' }, { dx: (b) => one(b), dy: (b) => one(b) }, { code: (a, b) => `(${a} + ${b})` }),
  sub: binaryOp('sub', { value: 'x - y', derivative: 'dx - dy' }, { dx: (b) => one(b), dy: (b) => b.scalar(-1) }, { code: (a, b) => `(${a} - ${b})` }),
  mul: binaryOp('mul', { value: 'x · y', derivative: 'y dx + x dy (the product rule)' }, { dx: (_b, _x, y) => y, dy: (_b, x) => x }, { code: (a, b) => `(${a} * ${b})` }),
  div: binaryOp(
    'div',
    { value: 'x / y', derivative: 'dx / y - (x / y²) dy' },
    { dx: (b, _x, y) => b.div(one(b), y), dy: (b, _x, y, out) => b.neg(b.div(out, y)) },
    { code: (a, b) => `(${a} / ${b})`, convention: IEEE, hint: 'a division by zero' },
  ),
  pow: binaryOp(
    'pow',
    { value: 'x^y', derivative: 'y x^(y-1) dx + x^y ln(x) dy (the dx term is 0 where y = 0; the dy term is 0 where x = 0 and y ≥ 0)' },
    {
      // y x^(y-1), taken as 0 where y = 0 (x^0 is constant, also at x = 0)
      dx: (b, x, y) => {
        const zero = b.scalar(0);
        return b.where(b.bin('eq', y, zero), zero, b.mul(y, b.bin('pow', x, b.sub(y, one(b)))));
      },
      // x^y ln x, with its limit 0 at x = 0 for y ≥ 0 (as PyTorch does)
      dy: (b, x, y, out) => {
        const zero = b.scalar(0);
        return b.where(b.mul(b.bin('eq', x, zero), b.bin('ge', y, zero)), zero, b.mul(out, b.un('log', x)));
      },
    },
    {
      code: call('H.pow'),
      // What H.pow does for these exponents, hoisted out of the kernel's loop.
      constantRight: new Map([
        [2, (a: string) => `(${a} * ${a})`],
        [1, (a: string) => a],
        [0.5, (a: string) => `H.powHalf(${a})`],
      ]),
      convention: POWER_AND_NORM,
      hint: 'a power of a negative number or of 0',
    },
  ),
  maximum: binaryOp(
    'maximum',
    { value: 'the larger of x and y, elementwise', derivative: 'dx where x > y, dy where y > x, (dx + dy)/2 at a tie' },
    {
      dx: (b, x, y) => b.add(b.bin('gt', x, y), b.mul(half(b), b.bin('eq', x, y))),
      dy: (b, x, y) => b.add(b.bin('lt', x, y), b.mul(half(b), b.bin('eq', x, y))),
    },
    { code: call('Math.max'), convention: TIES },
  ),
  minimum: binaryOp(
    'minimum',
    { value: 'the smaller of x and y, elementwise', derivative: 'dx where x < y, dy where y < x, (dx + dy)/2 at a tie' },
    {
      dx: (b, x, y) => b.add(b.bin('lt', x, y), b.mul(half(b), b.bin('eq', x, y))),
      dy: (b, x, y) => b.add(b.bin('gt', x, y), b.mul(half(b), b.bin('eq', x, y))),
    },
    { code: call('Math.min'), convention: TIES },
  ),
  atan2: binaryOp(
    'atan2',
    { value: 'the angle of the point (x, y) for atan2(y, x), in [-π, π]', derivative: '(x dy - y dx) / (x² + y²), computed as ((x/r) dy - (y/r) dx) / r with r = hypot(y, x)' },
    {
      // dx, dy: the partials by the first and second argument, here y and x. With r = hypot(y, x)
      // they are (x/r)/r and -(y/r)/r: no overflow or underflow where the result is representable.
      dx: (b, y, x) => {
        const r = b.bin('hypot', y, x);
        return b.div(b.div(x, r), r);
      },
      dy: (b, y, x) => {
        const r = b.bin('hypot', y, x);
        return b.neg(b.div(b.div(y, r), r));
      },
    },
    {
      code: call('Math.atan2'),
      convention:
        'atan2(y, x) at the origin is as in C, Math.atan2 and PyTorch: atan2(±0, +0) = ±0, atan2(±0, -0) = ±π; its derivative there is NaN, as in PyTorch (the angle jumps).',
      derivativeHint: 'the derivative of atan2 is NaN at the origin',
    },
  ),
  hypot: binaryOp(
    'hypot',
    { value: '√(x² + y²), without overflow or underflow (the larger magnitude is factored out)', derivative: '(x dx + y dy) / hypot(x, y)' },
    { dx: (b, x, _y, out) => b.div(x, out), dy: (b, _x, y, out) => b.div(y, out) },
    {
      code: call('Math.hypot'),
      convention: "hypot(0, 0) = 0 and hypot'(0, 0) is NaN (0/0), as in PyTorch, unlike norm'(0) = 0.",
      hint: 'hypot beyond the largest float64',
      derivativeHint: 'the derivative of hypot is NaN at the origin',
    },
  ),
  lt: comparison('lt', '<'),
  le: comparison('le', '<='),
  gt: comparison('gt', '>'),
  ge: comparison('ge', '>='),
  eq: comparison('eq', '=='),
  ne: comparison('ne', '!='),

  where: {
    arity: 3,
    broadcasts: true,
    shape: (args) => broadcastAll(args),
    impl: ([c, x, y]) => whereKernel(c!, x!, y!),
    jvp: ({ b }, [c], [, tx, ty]) => {
      if (tx === null && ty === null) return null;
      const zero = b.scalar(0);
      return b.where(c!, tx ?? zero, ty ?? zero);
    },
    vjp: [null, ({ b }, g, [c]) => b.where(c!, g, b.scalar(0)), ({ b }, g, [c]) => b.where(c!, b.scalar(0), g)],
    cost: (_, out) => sizeOf(out),
    scalar: ([c, x, y]) => `(${c} !== 0 ? ${x} : ${y})`,
    language: PLAIN,
    convention: PIECEWISE_CONSTANT,
    doc: { value: 'x where cond ≠ 0, else y (broadcasting)', derivative: 'dx where cond ≠ 0, else dy; none to cond' },
  },

  // Reductions over negative axes, with keepdims.
  sum: {
    arity: 1,
    broadcasts: false,
    shape: reduceShape,
    impl: ([x], attrs, shape) => reshapeTensor(reduce('sum', x!, positiveAxes(x!.shape.length, attrs.axes)), shape),
    jvp: ({ b }, _, [t], _out, attrs) => (t === null ? null : b.sum(t, attrs.axes, attrs.keepdims)),
    vjp: [({ b }, g, [x], _out, attrs) => spread(b, g, x!, attrs)],
    cost: ([x]) => sizeOf(x!),
    scalar: null,
    language: reductionLanguage('sum'),
    convention: EMPTY_AXES,
    doc: { value: 'the sum of the elements (over axis, or all)', derivative: 'd sum x = sum dx; the adjoint is spread back over the summed elements' },
  },
  prod: weightedReduction(
    'prod',
    { value: 'the product of the elements (over axis, or all)', derivative: 'Σᵢ (Πⱼ≠ᵢ xⱼ) dxᵢ: the product of the other elements (exact also where elements are 0)' },
    (x, axes) => reduce('prod', x, axes),
    // Πⱼ≠ᵢ xⱼ without dividing by a zero, written so that its own derivative (for Hessians) is
    // also exact: with S = x where x ≠ 0 (else 1), P = Π S and Z = Σ of the zero elements (whose
    // value is 0 but whose derivative is not):
    //   no zero:   P / xᵢ
    //   one zero:  P at the zero, Z·P / xᵢ elsewhere
    //   two zeros: (Z − xᵢ)·P at each zero (the other zero times P), 0 elsewhere
    //   more:      0
    (b, x, _outKeep, attrs) => {
      const zero = b.scalar(0);
      const one = b.scalar(1);
      const isZero = b.bin('eq', x, zero);
      const zeros = b.sum(isZero, attrs.axes, true);
      const safe = b.where(isZero, one, x);
      const p = b.apply('prod', [safe], { axes: attrs.axes, keepdims: true });
      const z = b.sum(b.mul(x, isZero), attrs.axes, true);
      const count = (k: number): NodeId => b.bin('eq', zeros, b.scalar(k));
      const atZero = b.where(count(1), p, b.where(count(2), b.mul(b.sub(z, x), p), zero));
      const elsewhere = b.where(count(0), b.div(p, safe), b.where(count(1), b.div(b.mul(z, p), safe), zero));
      return b.where(isZero, atZero, elsewhere);
    },
    { convention: 'prod differentiates exactly where elements are 0 (the product of the other elements; no division).' },
  ),
  max: extremum('max'),
  min: extremum('min'),
  logsumexp: weightedReduction(
    'logsumexp',
    { value: 'ln Σ e^x, computed stably (over axis, or all)', derivative: 'Σ softmax(x) dx' },
    (x, axes) => logsumexp(x, axes),
    (b, x, outKeep, attrs) => softmaxWeight(b, x, outKeep, attrs),
  ),
  norm: weightedReduction(
    'norm',
    { value: '√(Σ x²), the 2-norm of the reduced elements (scaled: no overflow or underflow)', derivative: 'Σ (x / ‖x‖) dx (0 where ‖x‖ = 0, by convention)' },
    (x, axes) => norm(x, axes),
    (b, x, outKeep) => {
      const zero = b.scalar(0);
      return b.where(b.bin('eq', outKeep, zero), zero, b.div(x, outKeep));
    },
    { convention: POWER_AND_NORM },
  ),

  // Layout: no arithmetic, only where the numbers go.
  reshape: {
    arity: 1,
    broadcasts: false,
    shape: ([x], { from, to }) => {
      if (x!.length < from.length || !shapesEqual(trailing(x!, from.length), from) || sizeOf(from) !== sizeOf(to)) {
        throw new ShapeError(`cannot reshape ${formatShape(x!)} into ${formatShape(to)}: it has ${sizeOf(x!)} elements`);
      }
      return [...lead(x!, from.length), ...to];
    },
    impl: ([x], _, shape) => reshapeTensor(x!, shape),
    jvp: ({ b }, _, [t], _out, { from, to }) => (t === null ? null : b.reshape(t, from, to)),
    vjp: [({ b }, g, _p, _out, { from, to }) => b.reshape(g, to, from)],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'the same elements in row-major order, in a new shape', derivative: 'the tangent is reshaped alike; the adjoint is reshaped back' },
  },
  broadcast_to: {
    arity: 1,
    broadcasts: false,
    shape: ([x], { shape }) => {
      requireRank(x!, shape.length, 'broadcast_to');
      const core = trailing(x!, shape.length);
      if (core.some((d, i) => d !== 1 && d !== shape[i])) {
        throw new ShapeError(`cannot broadcast ${formatShape(x!)} to ${formatShape(shape)}`);
      }
      return [...lead(x!, shape.length), ...shape];
    },
    impl: ([x], _, shape) => broadcastKernel(x!, shape),
    jvp: ({ b }, _, [t], _out, { shape }) => (t === null ? null : b.broadcastTo(t, shape)),
    // The adjoint is g summed over the broadcast dims: the reverse pass's fitToShape does exactly that.
    vjp: [(_ctx, g) => g],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'repeat along dimensions of size 1', derivative: 'the adjoint is summed over the repeated dimensions' },
  },
  permute: {
    arity: 1,
    broadcasts: false,
    shape: ([x], { perm }) => {
      requireRank(x!, perm.length, 'permute');
      const core = trailing(x!, perm.length);
      return [...lead(x!, perm.length), ...perm.map((p) => core[p]!)];
    },
    impl: ([x], { perm }) => {
      const r = x!.shape.length;
      const k = perm.length;
      return permute(x!, [...Array.from({ length: r - k }, (_, i) => i), ...perm.map((p) => p + r - k)]);
    },
    jvp: ({ b }, _, [t], _out, { perm }) => (t === null ? null : b.permute(t, perm)),
    vjp: [({ b }, g, _p, _out, { perm }) => b.permute(g, inversePermutation(perm))],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'the axes in a new order (transpose)', derivative: 'the tangent is permuted alike; the adjoint by the inverse permutation' },
  },
  slice: {
    arity: 1,
    broadcasts: false,
    shape: ([x], attrs) => {
      const k = sliceCore(x!, attrs);
      return [...lead(x!, k), ...attrs.counts];
    },
    impl: ([x], { starts, steps, counts }) => stridedSlice(x!, starts, steps, counts),
    jvp: ({ b }, _, [t], _out, attrs) => (t === null ? null : b.apply('slice', [t], attrs)),
    vjp: [({ b }, g, [x], _out, { starts, steps }) => b.apply('scatter', [g], { shape: trailing(b.shapeOf(x!), starts.length), starts, steps })],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'a strided window of the elements (basic indexing)', derivative: 'the adjoint is scattered back into zeros at the window' },
  },
  scatter: {
    arity: 1,
    broadcasts: false,
    shape: ([x], attrs) => {
      const k = sliceCore(x!, attrs);
      return [...lead(x!, k), ...attrs.shape];
    },
    impl: ([x], { shape, starts, steps }) => stridedScatter(x!, shape, starts, steps),
    jvp: ({ b }, _, [t], _out, attrs) => (t === null ? null : b.apply('scatter', [t], attrs)),
    vjp: [({ b }, g, [x], _out, { starts, steps }) => b.apply('slice', [g], { starts, steps, counts: trailing(b.shapeOf(x!), starts.length) })],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'zeros with the argument placed at a strided window', derivative: 'the adjoint is the window of the cotangent' },
  },
  concat: {
    arity: 'variadic',
    broadcasts: false,
    shape: (args, { axis }) => {
      const first = args[0]!;
      const rank = first.length;
      if (axis >= 0 || axis < -rank) throw new ShapeError(`axis ${axis} is out of range for shape ${formatShape(first)}`);
      let total = 0;
      for (const s of args) {
        const fits = s.length === rank && s.every((d, i) => i === rank + axis || d === first[i]);
        if (!fits) {
          throw new ShapeError(`concat: shapes ${args.map(formatShape).join(', ')} differ outside axis ${axis}`);
        }
        total += s[rank + axis]!;
      }
      const out = [...first];
      out[rank + axis] = total;
      return out;
    },
    impl: (args, { axis }) => concat(args, axis + args[0]!.shape.length),
    jvp: (ctx, primals, tangents, _out, attrs) => {
      if (tangents.every((t) => t === null)) return null;
      return ctx.b.apply('concat', primals.map((p, i) => tangentOrZeros(ctx, tangents[i]!, p)), attrs);
    },
    vjp: (index) => ({ b }, g, primals, _out, { axis }) => {
      let offset = 0;
      for (let i = 0; i < index; i++) offset += b.shapeOf(primals[i]!).at(axis)!;
      const core = trailing(b.shapeOf(primals[index]!), -axis);
      return b.apply('slice', [g], { starts: core.map((_, i) => (i === 0 ? offset : 0)), steps: core.map(() => 1), counts: core });
    },
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'the arguments joined along an axis', derivative: 'tangents are joined alike; each argument gets its part of the adjoint' },
  },
  diag_part: {
    arity: 1,
    broadcasts: false,
    shape: ([x]) => {
      const n = requireSquare(x!, 'diag');
      return [...lead(x!, 2), n];
    },
    impl: ([x]) => diagPart(x!),
    jvp: ({ b }, _, [t]) => (t === null ? null : b.apply('diag_part', [t], {} as NoAttrs)),
    vjp: [({ b }, g) => b.apply('diag_embed', [g], {} as NoAttrs)],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'the diagonal of a square matrix', derivative: 'the diagonal of the tangent; the adjoint goes on the diagonal' },
  },
  diag_embed: {
    arity: 1,
    broadcasts: false,
    shape: ([x]) => {
      requireRank(x!, 1, 'diag');
      const n = x!.at(-1)!;
      return [...x!, n];
    },
    impl: ([x]) => diagEmbed(x!),
    jvp: ({ b }, _, [t]) => (t === null ? null : b.apply('diag_embed', [t], {} as NoAttrs)),
    vjp: [({ b }, g) => b.apply('diag_part', [g], {} as NoAttrs)],
    cost: () => 0,
    scalar: null,
    language: null,
    doc: { value: 'a square matrix with the vector on its diagonal', derivative: 'the tangent on the diagonal; the adjoint is its diagonal' },
  },

  // Linear algebra on the last two dims; leading dims broadcast.
  matmul: {
    arity: 2,
    broadcasts: true,
    shape: matmulShape,
    impl: ([a, c], { vectors, transA, transB }) => matmul(a!, c!, vectors, transA === true, transB === true),
    // d(op(A) op(B)) = op(dA) op(B) + op(A) op(dB): the same product of the tangents
    jvp: (ctx, [a, c], [ta, tc], _out, attrs) =>
      ctx.b.sumOf([
        ta === null ? null : ctx.b.apply('matmul', [alignLeading(ctx, ta, [a!, c!], 0, attrs), c!], attrs),
        tc === null ? null : ctx.b.apply('matmul', [a!, alignLeading(ctx, tc, [a!, c!], 1, attrs)], attrs),
      ]),
    // Ā = Ḡ Bᵀ, B̄ = Aᵀ Ḡ (a transposed operand as stored gets the transpose: Ā = B Ḡᵀ, B̄ = Ḡᵀ A,
    // with the products' own transposes folded in). With vectors: A v gives Ā = ḡ vᵀ, v̄ = Aᵀ ḡ
    // (as ḡ A); v B gives v̄ = B ḡ, B̄ = v ḡᵀ; u · v gives ū = ḡ v, v̄ = ḡ u.
    vjp: [
      ({ b }, g, [, c], _out, { vectors, transA, transB }) => {
        switch (vectors) {
          case 'none':
            return transA === true
              ? b.apply('matmul', [c!, g], matmulAttrs('none', transB === true, true))
              : b.apply('matmul', [g, c!], matmulAttrs('none', false, transB !== true));
          case 'right':
            return outerProduct(b, g, c!);
          case 'left':
            return b.matmul(c!, g, 'right');
          case 'both':
            return b.mul(b.reshape(g, [], [1]), c!);
        }
      },
      ({ b }, g, [a], _out, { vectors, transA, transB }) => {
        switch (vectors) {
          case 'none':
            return transB === true
              ? b.apply('matmul', [g, a!], matmulAttrs('none', true, transA === true))
              : b.apply('matmul', [a!, g], matmulAttrs('none', transA !== true, false));
          case 'right':
            return b.matmul(g, a!, 'left');
          case 'left':
            return outerProduct(b, a!, g);
          case 'both':
            return b.mul(b.reshape(g, [], [1]), a!);
        }
      },
    ],
    cost: ([a], out) => 2 * sizeOf(out) * a!.at(-1)!,
    scalar: null,
    language: { statics: [], lower: (b, [x, y]) => numpyMatmul(b, x!, y!) },
    doc: {
      value: 'NumPy matmul (also the @ operator): the matrix product A B over the last two dims, batched over leading dims; a 1-D operand is a vector (a row on the left, a column on the right), its dimension dropped from the product',
      derivative: 'd(AB) = dA B + A dB; Ā = Ḡ Bᵀ, B̄ = Aᵀ Ḡ (for a vector v: Ā = ḡ vᵀ, v̄ = Aᵀ ḡ)',
    },
  },
  solve: {
    arity: 2,
    broadcasts: true,
    shape: solveShape,
    impl: ([a, c], { vector, transposed }) => solveVector((x, y) => solve(x, y, transposed === true), a!, c!, vector),
    // X = op(A)⁻¹B: dX = op(A)⁻¹(dB - op(dA) X)
    jvp: (ctx, [a, c], [ta, tc], out, attrs) => {
      const { b } = ctx;
      const dA = ta === null ? null : transposeIf(b, alignSolve(ctx, ta, a!, c!, 0, attrs.vector)!, attrs.transposed);
      const rhs = b.sumOf([alignSolve(ctx, tc, a!, c!, 1, attrs.vector), dA === null ? null : b.neg(timesSolution(b, dA, out, attrs.vector))]);
      return rhs === null ? null : b.apply('solve', [a!, rhs], attrs);
    },
    // B̄ = op(A)⁻ᵀ Ḡ (a solve with the other transpose, from the same factors), Ā = -B̄ Xᵀ (its
    // transpose for a transposed A as stored)
    vjp: [
      ({ b }, g, [a], out, attrs) =>
        b.neg(solutionOuter(b, b.apply('solve', [a!, g], solveAttrs(attrs, attrs.transposed !== true)), out, attrs.vector, attrs.transposed)),
      ({ b }, g, [a], _out, attrs) => b.apply('solve', [a!, g], solveAttrs(attrs, attrs.transposed !== true)),
    ],
    cost: ([a, c], out, { vector }) => {
      const n = a!.at(-1)!;
      const columns = vector === true ? 1 : c!.at(-1)!;
      const batch = sizeOf(out) / (n * columns);
      return batch * ((2 / 3) * n ** 3 + 2 * n * n * columns);
    },
    scalar: null,
    language: { statics: [], lower: (b, [a, y]) => b.solve(a!, y!, b.shapeOf(y!).length === 1) },
    hint: 'a singular system',
    doc: { value: 'X with A X = B (LU with partial pivoting); B may be a vector', derivative: 'dX = A⁻¹(dB - dA X); B̄ = A⁻ᵀ X̄, Ā = -B̄ Xᵀ' },
  },
  trisolve: {
    arity: 2,
    broadcasts: true,
    shape: solveShape,
    impl: ([t, c], { lower, vector, transposed }) => solveVector((x, y) => triangularSolve(x, y, lower, transposed === true), t!, c!, vector),
    // X = op(T)⁻¹B with T read as one triangle: dX = op(T)⁻¹(dB - op(tri(dT)) X)
    jvp: (ctx, [t, c], [tt, tc], out, attrs) => {
      const { b } = ctx;
      const dT = tt === null ? null : transposeIf(b, triangle(b, alignSolve(ctx, tt, t!, c!, 0, attrs.vector)!, attrs.lower), attrs.transposed);
      const rhs = b.sumOf([alignSolve(ctx, tc, t!, c!, 1, attrs.vector), dT === null ? null : b.neg(timesSolution(b, dT, out, attrs.vector))]);
      return rhs === null ? null : b.apply('trisolve', [t!, rhs], attrs);
    },
    // B̄ = op(T)⁻ᵀ X̄ (the same triangle, the other transpose), T̄ = -tri(B̄ Xᵀ) (of its transpose
    // for a transposed T as stored)
    vjp: [
      ({ b }, g, [t], out, attrs) =>
        b.neg(
          triangle(
            b,
            solutionOuter(b, b.apply('trisolve', [t!, g], solveAttrs(attrs, attrs.transposed !== true)), out, attrs.vector, attrs.transposed),
            attrs.lower,
          ),
        ),
      ({ b }, g, [t], _out, attrs) => b.apply('trisolve', [t!, g], solveAttrs(attrs, attrs.transposed !== true)),
    ],
    cost: ([a], out) => {
      const n = a!.at(-1)!;
      return (sizeOf(out) / n) * n * n;
    },
    scalar: null,
    language: null,
    doc: {
      value: 'X with T X = B for triangular T (forward or back substitution; the other triangle is not read)',
      derivative: 'dX = T⁻¹(dB - tri(dT) X); B̄ = T⁻ᵀ X̄, T̄ = -tri(B̄ Xᵀ)',
    },
  },
  inv: {
    arity: 1,
    broadcasts: false,
    shape: ([a]) => (requireSquare(a!, 'inv'), a!),
    impl: ([a]) => inv(a!),
    // d(A⁻¹) = -A⁻¹ dA A⁻¹
    jvp: ({ b }, _, [t], out) => (t === null ? null : b.neg(b.matmul(b.matmul(out, t), out))),
    // Ā = -A⁻ᵀ Ḡ A⁻ᵀ
    vjp: [({ b }, g, _p, out) => b.neg(b.matmul(b.matmul(b.mT(out), g), b.mT(out)))],
    cost: ([a]) => 2 * sizeOf(a!) * a!.at(-1)!,
    scalar: null,
    language: PLAIN,
    hint: 'the inverse of a singular matrix',
    doc: { value: 'the inverse matrix A⁻¹', derivative: 'd(A⁻¹) = -A⁻¹ dA A⁻¹' },
  },
  det: {
    arity: 1,
    broadcasts: false,
    shape: ([a]) => (requireSquare(a!, 'det'), lead(a!, 2)),
    impl: ([a]) => det(a!),
    // d det A = tr(adj(A) dA) (= det A · tr(A⁻¹ dA), but finite at a singular A)
    jvp: ({ b }, [a], [t]) => (t === null ? null : traceOfProduct(b, b.apply('adjugate', [a!], {}), t)),
    // Ā = ḡ adj(A)ᵀ
    vjp: [({ b }, g, [a]) => b.mul(asMatrixScale(b, g, a!), b.mT(b.apply('adjugate', [a!], {})))],
    cost: ([a]) => (2 / 3) * sizeOf(a!) * a!.at(-1)!,
    scalar: null,
    language: PLAIN,
    convention: "det's derivative is the adjugate adj(A)ᵀ, finite at a singular matrix too (PyTorch 1.13 answers 0 there).",
    doc: { value: 'the determinant (LU)', derivative: 'd det A = tr(adj(A) dA); Ā = ḡ adj(A)ᵀ (= ḡ det A · A⁻ᵀ where A is invertible)' },
  },
  adjugate: {
    arity: 1,
    broadcasts: false,
    shape: ([a]) => (requireSquare(a!, 'adjugate'), a!),
    impl: ([a]) => adjugate(a!),
    // d adj(A) = tr(A⁻¹ dA) adj(A) − adj(A) dA A⁻¹ (where A is invertible)
    jvp: ({ b }, [a], [t], out) => {
      if (t === null) return null;
      const inverse = b.inv(a!);
      return b.sub(b.mul(asMatrixScale(b, traceOfProduct(b, inverse, t), a!), out), b.matmul(b.matmul(out, t), inverse));
    },
    // Ā = (Σ ḡ∘adj(A)) A⁻ᵀ − adj(A)ᵀ ḡ A⁻ᵀ
    vjp: [
      ({ b }, g, [a], out) => {
        const inverseT = b.mT(b.inv(a!));
        const s = b.sum(b.mul(g, out), [-2, -1], false);
        return b.sub(b.mul(asMatrixScale(b, s, a!), inverseT), b.matmul(b.matmul(b.mT(out), g), inverseT));
      },
    ],
    cost: ([a]) => 2 * sizeOf(a!) * a!.at(-1)!,
    scalar: null,
    language: PLAIN,
    convention:
      'adjugate is exact at a singular matrix of rank n − 1 (an outer product of its null vectors) and 0 when LU finds two or more zero pivots; its own derivative goes through A⁻¹ and is not finite at a singular matrix.',
    hint: 'the derivative of the adjugate at a singular matrix',
    doc: {
      value: 'the adjugate adj(A), the transposed matrix of cofactors: A adj(A) = det(A) I (det(A) A⁻¹ where A is invertible)',
      derivative: 'd adj(A) = tr(A⁻¹ dA) adj(A) − adj(A) dA A⁻¹',
    },
  },
  logdet: {
    arity: 1,
    broadcasts: false,
    shape: ([a]) => (requireSquare(a!, 'logdet'), lead(a!, 2)),
    impl: ([a]) => logAbsDet(a!),
    // d ln|det A| = tr(A⁻¹ dA)
    jvp: ({ b }, [a], [t]) => (t === null ? null : traceOfProduct(b, b.inv(a!), t)),
    vjp: [({ b }, g, [a]) => b.mul(asMatrixScale(b, g, a!), b.mT(b.inv(a!)))],
    cost: ([a]) => (2 / 3) * sizeOf(a!) * a!.at(-1)!,
    scalar: null,
    language: PLAIN,
    hint: 'the log-determinant of a singular matrix',
    doc: { value: 'ln |det A|', derivative: 'd ln|det A| = tr(A⁻¹ dA); Ā = ḡ A⁻ᵀ' },
  },
  cholesky: {
    arity: 1,
    broadcasts: false,
    shape: ([a]) => (requireSquare(a!, 'cholesky'), a!),
    // The factor of the symmetric part (A + Aᵀ)/2: for a symmetric A exactly A's factor, and the
    // gradient is symmetric and agrees with finite differences in every direction.
    impl: ([a]) => cholesky(symmetricPart(a!)),
    // dL = L Φ(L⁻¹ dS L⁻ᵀ), dS = (dA + dAᵀ)/2, Φ = lower triangle with the diagonal halved
    jvp: ({ b }, _, [t], out) => {
      if (t === null) return null;
      const dS = b.mul(half(b), b.add(t, b.mT(t)));
      const lower = (x: NodeId): NodeId => b.apply('trisolve', [out, x], { lower: true });
      const inner = b.mT(lower(b.mT(lower(dS))));
      return b.matmul(out, b.mul(inner, choleskyMask(b, b.shapeOf(out).at(-1)!)));
    },
    // Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹) (Murray 2016)
    vjp: [
      ({ b }, g, _p, out) => {
        const p = b.mul(b.matmul(b.mT(out), g), choleskyMask(b, b.shapeOf(out).at(-1)!));
        const lt = b.mT(out);
        const upper = (x: NodeId): NodeId => b.apply('trisolve', [lt, x], { lower: false });
        const s = b.mT(upper(b.mT(upper(p))));
        return b.mul(half(b), b.add(s, b.mT(s)));
      },
    ],
    cost: ([a]) => (1 / 3) * sizeOf(a!) * a!.at(-1)!,
    scalar: null,
    language: PLAIN,
    convention: 'cholesky factors the symmetric part (A + Aᵀ)/2, so its gradient is symmetric and agrees with finite differences.',
    hint: 'the Cholesky factor of a matrix that is not positive definite',
    doc: {
      value: 'the lower-triangular L with L Lᵀ = A, for symmetric positive-definite A (the symmetric part of A is used)',
      derivative: 'dL = L Φ(L⁻¹ dA L⁻ᵀ), Φ taking the lower triangle with the diagonal halved',
    },
  },
} satisfies OpTable;

/** The table seen through its type: every entry an OpDef (optional fields included). */
export const ENTRIES: OpTable = OPS;

/**
 * The likely cause when `op` is the first step to give a NaN or infinity from finite arguments:
 * in its value, or in one of its derivative rules (forward or reverse mode).
 */
export function nonFiniteHint(op: string, source: 'value' | 'derivative' = 'value'): string | undefined {
  if (!Object.hasOwn(ENTRIES, op)) return undefined;
  const def = ENTRIES[op as OpName];
  return source === 'value' ? def.hint : def.derivativeHint;
}

/** Every entry's convention, each sentence once, in table order (GET /ops). */
export function conventions(): string[] {
  const all = (Object.keys(ENTRIES) as OpName[]).map((op) => ENTRIES[op].convention);
  return [...new Set(all.filter((c) => c !== undefined))];
}

function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** tr(M dA) over the last two dims = Σᵢⱼ Mᵀ ∘ dA. */
function traceOfProduct(b: RuleBuilder, m: NodeId, t: NodeId): NodeId {
  return b.sum(b.mul(b.mT(m), t), [-2, -1], false);
}

/** A per-matrix scalar (shape = A's leading dims, maybe batched) reshaped to broadcast over A's last two dims. */
function asMatrixScale(b: RuleBuilder, v: NodeId, a: NodeId): NodeId {
  const batchShape = lead(b.shapeOf(a), 2);
  return b.reshape(v, batchShape, [...batchShape, 1, 1]);
}

/** (A + Aᵀ)/2 over the last two dims. */
function symmetricPart(a: Tensor): Tensor {
  const r = a.shape.length;
  const swapLast = [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
  const t = permute(a, swapLast).data;
  const out = new Float64Array(t.length);
  for (let i = 0; i < out.length; i++) out[i] = (a.data[i]! + t[i]!) * 0.5;
  return { shape: [...a.shape], data: out };
}

