// Elementwise kernels: unary maps, broadcasting binary ops, where, broadcastTo, fill.
//
// A unary or binary primitive is defined once, by its scalar code in the op table (ops/table.ts:
// `code(a) → JavaScript expression`); its kernel is a loop generated from that code here
// (`unaryKernel`, `binaryKernel`), and compiled plans inline the same code. So a kernel, a compiled
// step and a fused loop compute every element with the same expression, bit for bit.
//
// Each primitive gets its own generated loop: a shared `map(f)` factory would make the call to `f`
// megamorphic, which measured 6-8x slower for cheap ops (neg, mul) on V8. The generated source is
// the engine's own scalar code (never request text); helpers are reached as `H.<name>`.

import { broadcastShapes, formatShape, full, shapesEqual, sizeOf } from './tensor.js';
import type { Shape, Tensor } from './tensor.js';
import { advanceMany, broadcastStrides, collapseDims, gatherStrided } from './strided.js';

// ---------------------------------------------------------------------------------------------
// Unary

/** out[i] = f(x[i]) over the whole of `x` (out.length === x.length). */
export type UnaryKernel = (x: Float64Array, out: Float64Array) => void;

/** 1 / (1 + e^-v), without overflow: e^-|v| never exceeds 1. */
function sigmoid(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

/** log(1 + e^v) = max(v, 0) + log1p(e^-|v|), exact for large |v| in both directions. */
function softplus(v: number): number {
  return Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
}

/** max(v, 0), keeping NaN. */
function relu(v: number): number {
  return Math.max(v, 0);
}

/** The unary primitives, in table order (each has an op-table entry with its scalar code). */
export const UNARY_NAMES = [
  'neg', 'abs', 'sign', 'exp', 'log', 'log1p', 'expm1', 'sqrt', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh', 'sigmoid', 'relu', 'softplus',
] as const;
export type UnaryName = (typeof UNARY_NAMES)[number];

/** The loop `out[i] = f(x[i])` generated from f's scalar code. */
export function unaryKernel(code: (a: string) => string): UnaryKernel {
  const source = `"use strict";\nreturn function unaryLoop(x, out) {\n  for (let i = 0; i < x.length; i++) out[i] = ${code('x[i]')};\n};`;
  return new Function('H', source)(SCALAR_HELPERS) as UnaryKernel;
}

/** f applied to every element of x, by its kernel. */
export function mapUnary(kernel: UnaryKernel, x: Tensor): Tensor {
  const out = new Float64Array(x.data.length);
  kernel(x.data, out);
  return { shape: [...x.shape], data: out };
}

// ---------------------------------------------------------------------------------------------
// Binary

/**
 * One binary op as three contiguous loops over n elements starting at the given offsets:
 * both operands varying (vv), a scalar left operand (sv), a scalar right operand (vs).
 * Broadcasting reduces every case to runs of these.
 */
export interface BinaryKernel {
  vv(a: Float64Array, ao: number, b: Float64Array, bo: number, out: Float64Array, oo: number, n: number): void;
  sv(a: number, b: Float64Array, bo: number, out: Float64Array, oo: number, n: number): void;
  vs(a: Float64Array, ao: number, b: number, out: Float64Array, oo: number, n: number): void;
}

/** a^0.5 as Math.pow gives it (pow(-0, .5) = +0, pow(-Infinity, .5) = Infinity), via the sqrt instruction. */
function powHalf(a: number): number {
  return a === -Infinity ? Infinity : Math.sqrt(a) + 0;
}

/** x^y as Math.pow gives it, with the common constant exponents done without the generic routine: pow's scalar code. */
function pow(a: number, b: number): number {
  if (b === 2) return a * a;
  if (b === 1) return a;
  if (b === 0.5) return powHalf(a);
  return Math.pow(a, b);
}

/** The binary primitives, in table order (each has an op-table entry with its scalar code). */
export const BINARY_NAMES = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'atan2', 'hypot', 'lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const;
export type BinaryName = (typeof BINARY_NAMES)[number];

/**
 * The three loops of f(a, b) generated from its scalar code. `constantRight` gives, for some
 * constant right operands, the code f(a, c) reduces to (pow: x² is x·x): the scalar right-operand
 * loop tests the constant once instead of per element. It must give the same bits as `code`.
 */
export function binaryKernel(code: (a: string, b: string) => string, constantRight: ReadonlyMap<number, (a: string) => string> = new Map()): BinaryKernel {
  const loop = (expr: string): string => `for (let i = 0; i < n; i++) out[oo + i] = ${expr};`;
  let vs = loop(code('a[ao + i]', 'b'));
  for (const [c, reduced] of [...constantRight].reverse()) {
    if (!Number.isFinite(c)) throw new Error('internal: constantRight needs finite constants');
    vs = `if (b === ${c}) { ${loop(reduced('a[ao + i]'))} } else { ${vs} }`;
  }
  const source =
    '"use strict";\nreturn {\n' +
    `  vv(a, ao, b, bo, out, oo, n) { ${loop(code('a[ao + i]', 'b[bo + i]'))} },\n` +
    `  sv(a, b, bo, out, oo, n) { ${loop(code('a', 'b[bo + i]'))} },\n` +
    `  vs(a, ao, b, out, oo, n) { ${vs} },\n` +
    '};';
  return new Function('H', source)(SCALAR_HELPERS) as BinaryKernel;
}

function broadcastOrThrow(what: string, a: Shape, b: Shape): number[] {
  const shape = broadcastShapes(a, b);
  if (shape === null) throw new RangeError(`${what}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
  return shape;
}

/** f(a, b) by its kernel, a and b broadcast (`name` for the error). */
export function mapBinary(name: string, kernel: BinaryKernel, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastOrThrow(name, a.shape, b.shape);
  const size = sizeOf(shape);
  const out = new Float64Array(size);
  const ad = a.data;
  const bd = b.data;
  // Fast paths: equal shapes, a one-element operand (its layout is the other's, padded with 1s).
  if (shapesEqual(a.shape, b.shape)) kernel.vv(ad, 0, bd, 0, out, 0, size);
  else if (ad.length === 1) kernel.sv(ad[0]!, bd, 0, out, 0, size);
  else if (bd.length === 1) kernel.vs(ad, 0, bd[0]!, out, 0, size);
  else if (size > 0) broadcastRuns(kernel, shape, a, b, out);
  return { shape, data: out };
}

/**
 * General broadcasting: after collapsing, the innermost dim has operand strides (1, 1), (0, 1)
 * or (1, 0) (both 0 would make it a size-1 dim, which collapsing drops), so each row of the
 * output is one call of a contiguous loop.
 */
function broadcastRuns(kernel: BinaryKernel, shape: number[], a: Tensor, b: Tensor, out: Float64Array): void {
  const dims = collapseDims(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
  const rank = dims.shape.length;
  const inner = dims.shape[rank - 1]!;
  const aInner = dims.strides[0]![rank - 1]!;
  const bInner = dims.strides[1]![rank - 1]!;
  const outer = dims.shape.slice(0, rank - 1);
  const outerStrides = [dims.strides[0]!.slice(0, rank - 1), dims.strides[1]!.slice(0, rank - 1)];
  const index = new Array<number>(outer.length).fill(0);
  const offsets = [0, 0];
  const ad = a.data;
  const bd = b.data;
  for (let o = 0; o < out.length; o += inner) {
    const ao = offsets[0]!;
    const bo = offsets[1]!;
    if (aInner === bInner) kernel.vv(ad, ao, bd, bo, out, o, inner);
    else if (aInner === 0) kernel.sv(ad[ao]!, bd, bo, out, o, inner);
    else kernel.vs(ad, ao, bd[bo]!, out, o, inner);
    advanceMany(index, outer, outerStrides, offsets);
  }
}

// ---------------------------------------------------------------------------------------------
// where, broadcastTo, fill

/** out = cond != 0 ? a : b, broadcasting all three (NaN counts as true, as in NumPy). */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastOrThrow('where', broadcastOrThrow('where', cond.shape, a.shape), b.shape);
  const size = sizeOf(shape);
  const out = new Float64Array(size);
  const cd = cond.data;
  const ad = a.data;
  const bd = b.data;
  if (shapesEqual(cond.shape, a.shape) && shapesEqual(a.shape, b.shape)) {
    for (let i = 0; i < size; i++) out[i] = cd[i] !== 0 ? ad[i]! : bd[i]!;
    return { shape, data: out };
  }
  if (size === 0) return { shape, data: out };
  const dims = collapseDims(shape, [
    broadcastStrides(cond.shape, shape),
    broadcastStrides(a.shape, shape),
    broadcastStrides(b.shape, shape),
  ]);
  const rank = dims.shape.length;
  if (rank === 0) {
    out[0] = cd[0] !== 0 ? ad[0]! : bd[0]!;
    return { shape, data: out };
  }
  const inner = dims.shape[rank - 1]!;
  const cs = dims.strides[0]![rank - 1]!;
  const as = dims.strides[1]![rank - 1]!;
  const bs = dims.strides[2]![rank - 1]!;
  const outer = dims.shape.slice(0, rank - 1);
  const outerStrides = dims.strides.map((s) => s.slice(0, rank - 1));
  const index = new Array<number>(outer.length).fill(0);
  const offsets = [0, 0, 0];
  for (let o = 0; o < size; o += inner) {
    let c = offsets[0]!;
    let x = offsets[1]!;
    let y = offsets[2]!;
    for (let i = 0; i < inner; i++, c += cs, x += as, y += bs) out[o + i] = cd[c] !== 0 ? ad[x]! : bd[y]!;
    advanceMany(index, outer, outerStrides, offsets);
  }
  return { shape, data: out };
}

/** A fresh contiguous copy of `x` broadcast to `shape` (which x must broadcast to). */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(x.shape, shape);
  if (target === null || !shapesEqual(target, shape)) {
    throw new RangeError(`cannot broadcast ${formatShape(x.shape)} to ${formatShape(shape)}`);
  }
  return { shape: [...shape], data: gatherStrided(x.data, 0, shape, broadcastStrides(x.shape, shape)) };
}

/** A tensor of `shape` with every element `value`. */
export function fill(shape: Shape, value: number): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`fill: bad shape ${formatShape(shape)}`);
  }
  return full(shape, value);
}

/** The scalar functions the op table's scalar code may call as `H.<name>` (compiled plans). */
export const SCALAR_HELPERS = { sigmoid, relu, softplus, pow, powHalf };
