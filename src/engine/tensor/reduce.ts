// Reductions over a set of axes: sum, prod, max, min, logsumexp, norm, and sumToShape (the sum that
// undoes broadcasting). The reduced axes are removed from the result's shape; the caller
// reshapes for keepdims.
//
// Sums are pairwise (NumPy's algorithm, pairwiseSum) within each run, and where an output gathers
// several runs (a reduced axis outside a kept one), the runs' sums are combined pairwise too, by a
// binary counter (cascadeSum), in memory order.
//
// Layout: size-1 dims are dropped and neighbouring dims that are all reduced or all kept are
// merged, so x is walked once in memory order as runs of its innermost group. A reduced
// innermost group (the last axis, or all axes) folds each run to one number; a kept innermost
// group (the first axis) accumulates each run into a contiguous row of the output.

import { formatShape, reshapeTensor } from './tensor.js';
import type { Shape, Tensor } from './tensor.js';
import { advance, broadcastStrides, copyRun, gatherStrided } from './strided.js';

export const REDUCE_KINDS = ['sum', 'prod', 'max', 'min'] as const;

export type ReduceKind = (typeof REDUCE_KINDS)[number];

/**
 * Each reduction as a fold of a contiguous run (`run`) and an elementwise accumulation of a run
 * into an output row (`into`), both combining with what is already in the output.
 */
export interface ReduceKernel {
  /** The value an empty reduction gives. */
  readonly identity: number;
  /** The value a non-empty fold starts from: the identity, except -0 for sum (-0 + v = v even for v = -0). */
  readonly start: number;
  /** The fold of x[xo .. xo+n) combined with `acc`. */
  run(acc: number, x: Float64Array, xo: number, n: number): number;
  /** out[oo+i] = combine(out[oo+i], x[xo+i]) for i < n. */
  into(out: Float64Array, oo: number, x: Float64Array, xo: number, n: number): void;
}

/** Runs of at most this many elements are summed by eight interleaved accumulators (NumPy's PW_BLOCKSIZE). */
const PAIRWISE_BLOCK = 128;

/** Eight accumulators over x[xo .. xo+n), n ≤ PAIRWISE_BLOCK: NumPy's pairwise_sum leaf, in its order. */
function blockSum(x: Float64Array, xo: number, n: number): number {
  if (n < 8) {
    let s = -0;
    for (let i = 0; i < n; i++) s += x[xo + i]!;
    return s;
  }
  let r0 = x[xo]!;
  let r1 = x[xo + 1]!;
  let r2 = x[xo + 2]!;
  let r3 = x[xo + 3]!;
  let r4 = x[xo + 4]!;
  let r5 = x[xo + 5]!;
  let r6 = x[xo + 6]!;
  let r7 = x[xo + 7]!;
  const whole = n - (n % 8);
  let i = 8;
  for (; i < whole; i += 8) {
    r0 += x[xo + i]!;
    r1 += x[xo + i + 1]!;
    r2 += x[xo + i + 2]!;
    r3 += x[xo + i + 3]!;
    r4 += x[xo + i + 4]!;
    r5 += x[xo + i + 5]!;
    r6 += x[xo + i + 6]!;
    r7 += x[xo + i + 7]!;
  }
  let s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
  for (; i < n; i++) s += x[xo + i]!;
  return s;
}

// The explicit stack of pairwiseSum: a run of 2^53 elements splits fewer than 64 times, and each
// split leaves at most two pending entries, so 256 entries never overflow. (No callbacks run
// while a sum is in progress, so one module-level stack serves every call.)
const pendingStart = new Float64Array(256);
const pendingLength = new Float64Array(256);
const partials = new Float64Array(256);

/**
 * Σ x[xo .. xo+n) by NumPy's pairwise summation: blocks of at most 128 by blockSum, longer runs
 * split in halves (the first a multiple of 8) whose sums are added. The rounding error grows as
 * O(ε log n) rather than the O(ε n) of one running sum, at the same speed. The recursion is walked
 * with an explicit stack (a length of -1 marks "add the last two partial sums").
 */
export function pairwiseSum(x: Float64Array, xo: number, n: number): number {
  if (n <= PAIRWISE_BLOCK) return blockSum(x, xo, n);
  let top = 0;
  let values = 0;
  pendingStart[top] = xo;
  pendingLength[top++] = n;
  while (top > 0) {
    const start = pendingStart[--top]!;
    const length = pendingLength[top]!;
    if (length < 0) {
      const right = partials[--values]!;
      partials[values - 1] = partials[values - 1]! + right;
    } else if (length <= PAIRWISE_BLOCK) {
      partials[values++] = blockSum(x, start, length);
    } else {
      let half = Math.floor(length / 2);
      half -= half % 8;
      pendingLength[top++] = -1;
      pendingStart[top] = start + half;
      pendingLength[top++] = length - half;
      pendingStart[top] = start;
      pendingLength[top++] = half;
    }
  }
  return partials[0]!;
}

export const REDUCE_KERNELS: { [K in ReduceKind]: ReduceKernel } = {
  sum: {
    identity: 0,
    start: -0,
    run: (acc, x, xo, n) => acc + pairwiseSum(x, xo, n),
    into(out, oo, x, xo, n) { for (let i = 0; i < n; i++) out[oo + i] = out[oo + i]! + x[xo + i]!; },
  },
  prod: {
    identity: 1,
    start: 1,
    run(acc, x, xo, n) { for (let i = 0; i < n; i++) acc *= x[xo + i]!; return acc; },
    into(out, oo, x, xo, n) { for (let i = 0; i < n; i++) out[oo + i] = out[oo + i]! * x[xo + i]!; },
  },
  max: {
    identity: -Infinity,
    start: -Infinity,
    run(acc, x, xo, n) { for (let i = 0; i < n; i++) acc = Math.max(acc, x[xo + i]!); return acc; },
    into(out, oo, x, xo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.max(out[oo + i]!, x[xo + i]!); },
  },
  min: {
    identity: Infinity,
    start: Infinity,
    run(acc, x, xo, n) { for (let i = 0; i < n; i++) acc = Math.min(acc, x[xo + i]!); return acc; },
    into(out, oo, x, xo, n) { for (let i = 0; i < n; i++) out[oo + i] = Math.min(out[oo + i]!, x[xo + i]!); },
  },
};

/** x's dims as alternating groups of kept and reduced axes, with strides into x and the output. */
interface ReduceLayout {
  /** The result's shape: x's shape with the reduced axes removed. */
  outShape: number[];
  outSize: number;
  /** True when some reduced axis has size 0 (every output element is the identity). */
  empty: boolean;
  /** Outer groups (all but the innermost), walked by an odometer. */
  outer: number[];
  /** Strides of the outer groups in the output (0 along reduced groups). */
  outerStrides: number[];
  /** The innermost group: its size and whether it is reduced. Size 0 when no dims are left. */
  inner: number;
  innerReduced: boolean;
}

function validateAxes(what: string, shape: Shape, axes: readonly number[]): void {
  for (let i = 0; i < axes.length; i++) {
    const axis = axes[i]!;
    if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length || (i > 0 && axis <= axes[i - 1]!)) {
      throw new RangeError(`${what}: axes [${axes.join(', ')}] must be sorted, distinct axes of ${formatShape(shape)}`);
    }
  }
}

function reduceLayout(what: string, shape: Shape, axes: readonly number[]): ReduceLayout {
  validateAxes(what, shape, axes);
  const reduced = new Array<boolean>(shape.length).fill(false);
  for (const axis of axes) reduced[axis] = true;
  const outShape: number[] = [];
  let outSize = 1;
  let empty = false;
  const sizes: number[] = [];
  const flags: boolean[] = [];
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d]!;
    if (!reduced[d]) {
      outShape.push(size);
      outSize *= size;
    } else if (size === 0) {
      empty = true;
    }
    if (size === 1) continue;
    const last = sizes.length - 1;
    if (last >= 0 && flags[last] === reduced[d]) sizes[last] = sizes[last]! * size;
    else {
      sizes.push(size);
      flags.push(reduced[d]!);
    }
  }
  // Strides of each group in the output: 0 along reduced groups.
  const groups = sizes.length;
  const outStrides = new Array<number>(groups);
  let stride = 1;
  for (let g = groups - 1; g >= 0; g--) {
    outStrides[g] = flags[g] ? 0 : stride;
    if (!flags[g]) stride *= sizes[g]!;
  }
  return {
    outShape,
    outSize,
    empty,
    outer: sizes.slice(0, groups - 1),
    outerStrides: outStrides.slice(0, groups - 1),
    inner: groups > 0 ? sizes[groups - 1]! : 0,
    innerReduced: groups > 0 ? flags[groups - 1]! : false,
  };
}

/** Call visit(xOffset, outOffset) for each run of the innermost group, in memory order of x. */
function forEachRun(layout: ReduceLayout, xSize: number, visit: (xo: number, oo: number) => void): void {
  const index = new Array<number>(layout.outer.length).fill(0);
  let oo = 0;
  for (let xo = 0; xo < xSize; xo += layout.inner) {
    visit(xo, oo);
    oo = advance(index, layout.outer, layout.outerStrides, oo);
  }
}

/** How many runs of the innermost group each output gathers: the product of the reduced outer groups. */
function runsPerOutput(layout: ReduceLayout): number {
  let runs = 1;
  for (let g = 0; g < layout.outer.length; g++) if (layout.outerStrides[g] === 0) runs *= layout.outer[g]!;
  return runs;
}

/**
 * A sum whose outputs each gather several runs, read once in memory order: each run's sum (a
 * number where the innermost group is reduced, a row where it is kept) goes into a binary counter
 * per output, whose level j holds the sum of 2^j runs; adding a run carries through the occupied
 * levels, as adding 1 does. So the runs combine pairwise (exactly so for a power of two), and the
 * error grows as O(ε log runs) rather than O(ε runs); the levels are combined smallest first.
 */
function cascadeSum(layout: ReduceLayout, xd: Float64Array, out: Float64Array): void {
  const runs = runsPerOutput(layout);
  const size = out.length;
  const depth = Math.floor(Math.log2(runs)) + 1;
  const levels = new Float64Array(depth * size);
  const n = layout.inner;
  if (layout.innerReduced) {
    const counts = new Float64Array(size);
    forEachRun(layout, xd.length, (xo, oo) => {
      const c = counts[oo]!;
      counts[oo] = c + 1;
      let carry = pairwiseSum(xd, xo, n);
      let j = 0;
      for (; Math.floor(c / 2 ** j) % 2 === 1; j++) carry = levels[j * size + oo]! + carry;
      levels[j * size + oo] = carry;
    });
  } else {
    const counts = new Float64Array(size / n);
    forEachRun(layout, xd.length, (xo, oo) => {
      const c = counts[oo / n]!;
      counts[oo / n] = c + 1;
      if (c % 2 === 0) {
        copyRun(xd, xo, levels, oo, n);
        return;
      }
      for (let i = 0; i < n; i++) levels[oo + i] = levels[oo + i]! + xd[xo + i]!;
      let j = 1;
      for (; Math.floor(c / 2 ** j) % 2 === 1; j++) {
        const to = j * size + oo;
        const from = to - size;
        for (let i = 0; i < n; i++) levels[to + i] = levels[to + i]! + levels[from + i]!;
      }
      levels.copyWithin(j * size + oo, (j - 1) * size + oo, (j - 1) * size + oo + n);
    });
  }
  for (let o = 0; o < size; o++) {
    let total = -0;
    for (let j = 0; j < depth; j++) if (Math.floor(runs / 2 ** j) % 2 === 1) total = levels[j * size + o]! + total;
    out[o] = total;
  }
}

/** Reduce `x` over `axes` (sorted, distinct, non-negative); those axes are removed from the shape. */
export function reduce(kind: ReduceKind, x: Tensor, axes: readonly number[]): Tensor {
  const kernel = REDUCE_KERNELS[kind];
  if (kernel === undefined) throw new RangeError(`unknown reduction '${String(kind)}'`);
  const layout = reduceLayout(kind, x.shape, axes);
  const out = new Float64Array(layout.outSize);
  const xd = x.data;
  if (layout.empty) {
    out.fill(kernel.identity);
  } else if (layout.inner === 0 || (layout.outer.length === 0 && !layout.innerReduced)) {
    // Nothing left to reduce (only size-1 axes were reduced): a copy.
    copyRun(xd, 0, out, 0, xd.length);
  } else if (kind === 'sum' && runsPerOutput(layout) > 1) {
    cascadeSum(layout, xd, out);
  } else {
    const n = layout.inner;
    out.fill(kernel.start);
    if (layout.innerReduced) forEachRun(layout, xd.length, (xo, oo) => (out[oo] = kernel.run(out[oo]!, xd, xo, n)));
    else forEachRun(layout, xd.length, (xo, oo) => kernel.into(out, oo, xd, xo, n));
  }
  return { shape: layout.outShape, data: out };
}

/**
 * log Σ exp(x) over `axes`, as m + log1p(Σ' e^(x - m)) with m the max and Σ' leaving out one
 * element equal to m (its term is exactly 1): nothing overflows, and a sum of small terms keeps
 * its digits (log(1 + s) would round them away). The sum is pairwise. All -Infinity gives
 * -Infinity, any +Infinity gives Infinity, any NaN gives NaN, an empty reduction -Infinity.
 */
export function logsumexp(x: Tensor, axes: readonly number[]): Tensor {
  const layout = reduceLayout('logsumexp', x.shape, axes);
  const xd = x.data;
  if (layout.empty) return { shape: layout.outShape, data: new Float64Array(layout.outSize).fill(-Infinity) };
  if (layout.inner === 0 || (layout.outer.length === 0 && !layout.innerReduced)) {
    // Only size-1 axes reduced: the log-sum-exp of one element is that element.
    return { shape: layout.outShape, data: xd.slice() };
  }
  const shift = reduce('max', x, axes).data;
  const terms = new Float64Array(xd.length);
  const skipped = new Uint8Array(layout.outSize);
  const n = layout.inner;
  if (layout.innerReduced) {
    forEachRun(layout, xd.length, (xo, oo) => {
      const m = shift[oo]!;
      for (let i = 0; i < n; i++) terms[xo + i] = Math.exp(xd[xo + i]! - m);
      if (skipped[oo] === 0) skipFirstMax(terms, xd, xo, n, m, skipped, oo);
    });
  } else {
    forEachRun(layout, xd.length, (xo, oo) => {
      for (let i = 0; i < n; i++) {
        const m = shift[oo + i]!;
        const v = xd[xo + i]!;
        if (v === m && skipped[oo + i] === 0) {
          skipped[oo + i] = 1;
          terms[xo + i] = 0;
        } else terms[xo + i] = Math.exp(v - m);
      }
    });
  }
  const rest = reduce('sum', { shape: x.shape, data: terms }, axes).data;
  // An infinite or NaN max is the answer itself (+Infinity, NaN, or all -Infinity).
  for (let i = 0; i < rest.length; i++) {
    const m = shift[i]!;
    rest[i] = Number.isFinite(m) ? m + Math.log1p(rest[i]!) : m;
  }
  return { shape: layout.outShape, data: rest };
}

/** Leave out (as 0) the first element of x[xo .. xo+n) equal to the max m, if any, and mark output o done. */
function skipFirstMax(terms: Float64Array, x: Float64Array, xo: number, n: number, m: number, skipped: Uint8Array, o: number): void {
  for (let i = 0; i < n; i++) {
    if (x[xo + i] === m) {
      terms[xo + i] = 0;
      skipped[o] = 1;
      return;
    }
  }
}

/** Below this, a sum of squares may have lost elements to underflow (2^-600: far above 2^-1022). */
const NORM_TINY = 2 ** -600;

/**
 * The 2-norm √(Σ x²) over `axes`, without overflow or underflow. A sum of squares that is finite
 * and not tiny is used as it is (one pass: the common case). Where a sum overflowed, or is so
 * small that squares may have underflowed, that norm is computed again with the largest
 * magnitude m factored out before squaring, m·√(Σ (x/m)²), as LAPACK's dnrm2 scales. So
 * norm([1e200, 1e200]) = 1.414e200 and norm([1e-200, 1e-200]) = 1.414e-200. NaN stays NaN, any
 * infinite element gives Infinity, an empty reduction 0.
 */
export function norm(x: Tensor, axes: readonly number[]): Tensor {
  const xd = x.data;
  const squares = new Float64Array(xd.length);
  for (let i = 0; i < xd.length; i++) squares[i] = xd[i]! * xd[i]!;
  const out = reduce('sum', { shape: x.shape, data: squares }, axes);
  const od = out.data;
  const redo = new Uint8Array(od.length);
  let rescale = false;
  for (let i = 0; i < od.length; i++) {
    const s = od[i]!;
    if (s === s && !(s >= NORM_TINY && s <= Number.MAX_VALUE)) {
      redo[i] = 1;
      rescale = true;
    } else od[i] = Math.sqrt(s);
  }
  if (!rescale) return out;
  // m = max |x| per norm, broadcast back over x (keepdims layout) to scale every element.
  const magnitudes = new Float64Array(xd.length);
  for (let i = 0; i < xd.length; i++) magnitudes[i] = Math.abs(xd[i]!);
  const m = reduce('max', { shape: x.shape, data: magnitudes }, axes).data;
  const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const mAll = gatherStrided(m, 0, x.shape, broadcastStrides(keep, x.shape));
  for (let i = 0; i < xd.length; i++) {
    const q = xd[i]! / mAll[i]!;
    squares[i] = q * q;
  }
  const scaled = reduce('sum', { shape: x.shape, data: squares }, axes).data;
  for (let i = 0; i < od.length; i++) {
    if (!redo[i]) continue;
    const mi = m[i]!;
    od[i] = mi === Infinity ? Infinity : mi > 0 ? mi * Math.sqrt(scaled[i]!) : 0;
  }
  return out;
}

/**
 * Sum `x` down to `shape`, which must broadcast to x's shape: the adjoint of broadcasting.
 * Leading axes x has beyond `shape` are summed away, and so are axes where `shape` has a 1.
 */
export function sumToShape(x: Tensor, shape: Shape): Tensor {
  const rank = x.shape.length;
  const lead = rank - shape.length;
  if (lead < 0) throw new RangeError(`sumToShape: ${formatShape(shape)} has more axes than ${formatShape(x.shape)}`);
  const axes: number[] = [];
  for (let d = 0; d < rank; d++) {
    if (d < lead) {
      axes.push(d);
      continue;
    }
    const target = shape[d - lead]!;
    const size = x.shape[d]!;
    if (target === size) continue;
    if (target !== 1) throw new RangeError(`sumToShape: ${formatShape(shape)} does not broadcast to ${formatShape(x.shape)}`);
    axes.push(d);
  }
  return reshapeTensor(reduce('sum', x, axes), shape);
}
