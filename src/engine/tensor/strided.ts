// Strided views over flat Float64Array buffers: the index arithmetic shared by broadcasting,
// permutation, slicing and scatter. A view's element (i0, .., ir-1) lives at
// offset + Σ i_d * strides[d]; a stride of 0 repeats an element (broadcasting), a negative
// stride walks backwards (a reversed slice).

import type { Shape } from './tensor.js';

/** Runs shorter than this are copied with a plain loop; longer ones with `set(subarray)`. */
const SET_THRESHOLD = 64;

/** A view's dims after collapsing, with one stride list per operand (same length as `shape`). */
export interface CollapsedDims {
  shape: number[];
  strides: number[][];
}

/**
 * Drop size-1 dims and merge neighbouring dims that every operand walks contiguously
 * (stride[d] = stride[d+1] * shape[d+1]), so loops run over as few, as long dims as possible.
 * Zero-size dims are kept: the caller checks for an empty result first.
 */
export function collapseDims(shape: Shape, strideSets: readonly (readonly number[])[]): CollapsedDims {
  const outShape: number[] = [];
  const outStrides: number[][] = strideSets.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d]!;
    if (size === 1) continue;
    const last = outShape.length - 1;
    let mergeable = last >= 0;
    for (let s = 0; mergeable && s < strideSets.length; s++) {
      if (outStrides[s]![last] !== strideSets[s]![d]! * size) mergeable = false;
    }
    if (mergeable) {
      outShape[last] = outShape[last]! * size;
      for (let s = 0; s < strideSets.length; s++) outStrides[s]![last] = strideSets[s]![d]!;
    } else {
      outShape.push(size);
      for (let s = 0; s < strideSets.length; s++) outStrides[s]!.push(strideSets[s]![d]!);
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Strides of `shape` (right-aligned) inside `target`, with 0 where it is broadcast. */
export function broadcastStrides(shape: Shape, target: Shape): number[] {
  const strides = new Array<number>(target.length).fill(0);
  const offset = target.length - shape.length;
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const size = shape[d]!;
    if (size !== 1) strides[offset + d] = s;
    s *= size;
  }
  return strides;
}

/** dst[dstOffset + i] = src[srcOffset + i] for i < n. */
export function copyRun(src: Float64Array, srcOffset: number, dst: Float64Array, dstOffset: number, n: number): void {
  if (n >= SET_THRESHOLD) {
    dst.set(src.subarray(srcOffset, srcOffset + n), dstOffset);
  } else {
    for (let i = 0; i < n; i++) dst[dstOffset + i] = src[srcOffset + i]!;
  }
}

/** A fresh contiguous copy of the strided view (offset, shape, strides) of `src`. */
export function gatherStrided(src: Float64Array, offset: number, shape: Shape, strides: readonly number[]): Float64Array {
  let size = 1;
  for (const d of shape) size *= d;
  const out = new Float64Array(size);
  if (size === 0) return out;
  const dims = collapseDims(shape, [strides]);
  const rank = dims.shape.length;
  if (rank === 0) {
    out[0] = src[offset]!;
    return out;
  }
  const inner = dims.shape[rank - 1]!;
  const innerStride = dims.strides[0]![rank - 1]!;
  const outer = dims.shape.slice(0, rank - 1);
  const outerStrides = dims.strides[0]!.slice(0, rank - 1);
  const index = new Array<number>(outer.length).fill(0);
  let srcOffset = offset;
  for (let o = 0; o < size; o += inner) {
    if (innerStride === 1) copyRun(src, srcOffset, out, o, inner);
    else if (innerStride === 0) out.fill(src[srcOffset]!, o, o + inner);
    else for (let i = 0, s = srcOffset; i < inner; i++, s += innerStride) out[o + i] = src[s]!;
    srcOffset = advance(index, outer, outerStrides, srcOffset);
  }
  return out;
}

/** Write the contiguous `src` into `dst` at the positions of the strided view (offset, shape, strides). */
export function scatterStrided(
  dst: Float64Array,
  offset: number,
  shape: Shape,
  strides: readonly number[],
  src: Float64Array,
): void {
  const size = src.length;
  if (size === 0) return;
  const dims = collapseDims(shape, [strides]);
  const rank = dims.shape.length;
  if (rank === 0) {
    dst[offset] = src[0]!;
    return;
  }
  const inner = dims.shape[rank - 1]!;
  const innerStride = dims.strides[0]![rank - 1]!;
  const outer = dims.shape.slice(0, rank - 1);
  const outerStrides = dims.strides[0]!.slice(0, rank - 1);
  const index = new Array<number>(outer.length).fill(0);
  let dstOffset = offset;
  for (let o = 0; o < size; o += inner) {
    if (innerStride === 1) copyRun(src, o, dst, dstOffset, inner);
    else for (let i = 0, d = dstOffset; i < inner; i++, d += innerStride) dst[d] = src[o + i]!;
    dstOffset = advance(index, outer, outerStrides, dstOffset);
  }
}

/**
 * Odometer step over `shape` (row-major, last dim fastest): bump `index` in place and return
 * the offset moved by the matching strides. Wraps to all zeros after the last index.
 */
export function advance(index: number[], shape: readonly number[], strides: readonly number[], offset: number): number {
  for (let d = shape.length - 1; d >= 0; d--) {
    const i = index[d]! + 1;
    if (i < shape[d]!) {
      index[d] = i;
      return offset + strides[d]!;
    }
    index[d] = 0;
    offset -= (i - 1) * strides[d]!;
  }
  return offset;
}

/** Like `advance`, for several offsets sharing one index (one stride list per offset). */
export function advanceMany(
  index: number[],
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  offsets: number[],
): void {
  for (let d = shape.length - 1; d >= 0; d--) {
    const i = index[d]! + 1;
    if (i < shape[d]!) {
      index[d] = i;
      for (let s = 0; s < offsets.length; s++) offsets[s] = offsets[s]! + strides[s]![d]!;
      return;
    }
    index[d] = 0;
    for (let s = 0; s < offsets.length; s++) offsets[s] = offsets[s]! - (i - 1) * strides[s]![d]!;
  }
}
