// Elementwise kernels: unary maps, broadcasting binary ops, where, broadcastTo, fill.
//
// Every loop is written out once per function: a shared `map(f)` factory makes the call to `f`
// megamorphic, which measured 6-8x slower for cheap ops (neg, mul) on V8. Loops that call a
// named scalar function (`sigmoid(x[i])`) have one call target, which TurboFan inlines.
// The kernel tables are mutable so that a faster implementation (WebAssembly) can replace an entry.

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

/**
 * The unary loops, keyed by op name. The op table (ops/table.ts) has one entry per key (its
 * type requires it), holding everything else about the op: its scalar code, rules, words.
 */
const unaryKernels = {
  neg(x, out) { for (let i = 0; i < x.length; i++) out[i] = -x[i]!; },
  abs(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]!); },
  sign(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.sign(x[i]!); },
  exp(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.exp(x[i]!); },
  log(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.log(x[i]!); },
  log1p(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.log1p(x[i]!); },
  expm1(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.expm1(x[i]!); },
  sqrt(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.sqrt(x[i]!); },
  sin(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.sin(x[i]!); },
  cos(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.cos(x[i]!); },
  tan(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.tan(x[i]!); },
  asin(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.asin(x[i]!); },
  acos(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.acos(x[i]!); },
  atan(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.atan(x[i]!); },
  sinh(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.sinh(x[i]!); },
  cosh(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.cosh(x[i]!); },
  tanh(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.tanh(x[i]!); },
  sigmoid(x, out) { for (let i = 0; i < x.length; i++) out[i] = sigmoid(x[i]!); },
  relu(x, out) { for (let i = 0; i < x.length; i++) out[i] = Math.max(x[i]!, 0); },
  softplus(x, out) { for (let i = 0; i < x.length; i++) out[i] = softplus(x[i]!); },
} satisfies Record<string, UnaryKernel>;

export type UnaryName = keyof typeof unaryKernels;
export const UNARY_KERNELS: { [K in UnaryName]: UnaryKernel } = unaryKernels;
/** The unary op names, in table order: derived from the kernels, not a second list. */
export const UNARY_NAMES = Object.keys(unaryKernels) as UnaryName[];

export function unary(name: UnaryName, x: Tensor): Tensor {
  const kernel = UNARY_KERNELS[name];
  if (kernel === undefined) throw new RangeError(`unknown unary kernel '${String(name)}'`);
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

/** x^y exactly as the pow kernel computes it (its fast paths included): the scalar code of pow. */
function pow(a: number, b: number): number {
  if (b === 2) return a * a;
  if (b === 1) return a;
  if (b === 0.5) return powHalf(a);
  return Math.pow(a, b);
}

const powKernel: BinaryKernel = {
  vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.pow(a[ao + i]!, b[bo + i]!); },
  sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.pow(a, b[bo + i]!); },
  vs(a, ao, b, out, oo, n) {
    // The common constant exponents avoid the generic pow routine.
    if (b === 2) for (let i = 0; i < n; i++) { const v = a[ao + i]!; out[oo + i] = v * v; }
    else if (b === 1) for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]!;
    else if (b === 0.5) for (let i = 0; i < n; i++) out[oo + i] = powHalf(a[ao + i]!);
    else for (let i = 0; i < n; i++) out[oo + i] = Math.pow(a[ao + i]!, b);
  },
};

/** The binary loops, keyed by op name (see the unary kernels). */
const binaryKernels = {
  add: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! + b[bo + i]!; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a + b[bo + i]!; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! + b; },
  },
  sub: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! - b[bo + i]!; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a - b[bo + i]!; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! - b; },
  },
  mul: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! * b[bo + i]!; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a * b[bo + i]!; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! * b; },
  },
  div: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! / b[bo + i]!; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a / b[bo + i]!; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! / b; },
  },
  pow: powKernel,
  maximum: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.max(a[ao + i]!, b[bo + i]!); },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.max(a, b[bo + i]!); },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.max(a[ao + i]!, b); },
  },
  minimum: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.min(a[ao + i]!, b[bo + i]!); },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.min(a, b[bo + i]!); },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.min(a[ao + i]!, b); },
  },
  atan2: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.atan2(a[ao + i]!, b[bo + i]!); },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.atan2(a, b[bo + i]!); },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.atan2(a[ao + i]!, b); },
  },
  // Math.hypot factors out the larger magnitude before squaring: no overflow or underflow.
  hypot: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.hypot(a[ao + i]!, b[bo + i]!); },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.hypot(a, b[bo + i]!); },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.hypot(a[ao + i]!, b); },
  },
  lt: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! < b[bo + i]! ? 1 : 0; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a < b[bo + i]! ? 1 : 0; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! < b ? 1 : 0; },
  },
  le: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! <= b[bo + i]! ? 1 : 0; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a <= b[bo + i]! ? 1 : 0; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! <= b ? 1 : 0; },
  },
  gt: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! > b[bo + i]! ? 1 : 0; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a > b[bo + i]! ? 1 : 0; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! > b ? 1 : 0; },
  },
  ge: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! >= b[bo + i]! ? 1 : 0; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a >= b[bo + i]! ? 1 : 0; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! >= b ? 1 : 0; },
  },
  eq: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! === b[bo + i]! ? 1 : 0; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a === b[bo + i]! ? 1 : 0; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! === b ? 1 : 0; },
  },
  ne: {
    vv(a, ao, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! !== b[bo + i]! ? 1 : 0; },
    sv(a, b, bo, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a !== b[bo + i]! ? 1 : 0; },
    vs(a, ao, b, out, oo, n) { for (let i = 0; i < n; i++) out[oo + i] = a[ao + i]! !== b ? 1 : 0; },
  },
} satisfies Record<string, BinaryKernel>;

export type BinaryName = keyof typeof binaryKernels;
export const BINARY_KERNELS: { [K in BinaryName]: BinaryKernel } = binaryKernels;
/** The binary op names, in table order: derived from the kernels, not a second list. */
export const BINARY_NAMES = Object.keys(binaryKernels) as BinaryName[];

function broadcastOrThrow(what: string, a: Shape, b: Shape): number[] {
  const shape = broadcastShapes(a, b);
  if (shape === null) throw new RangeError(`${what}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
  return shape;
}

export function binary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  const kernel = BINARY_KERNELS[name];
  if (kernel === undefined) throw new RangeError(`unknown binary kernel '${String(name)}'`);
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
export const SCALAR_HELPERS = { sigmoid, relu, softplus, pow };
