// Layout kernels: axis permutation, strided slices and their adjoint scatter, concatenation,
// diagonals. Each copies into a fresh contiguous tensor through a strided view of its input.

import { formatShape, sizeOf, stridesOf } from './tensor.js';
import type { Shape, Tensor } from './tensor.js';
import { copyRun, gatherStrided, scatterStrided } from './strided.js';

/** Square tiles for transposing: a 32x32 tile of doubles (8 KiB) is read and written within L1. */
const TILE = 32;

/** out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const rank = x.shape.length;
  if (perm.length !== rank) throw new RangeError(`permute: [${perm.join(', ')}] is not a permutation of ${rank} axes`);
  const seen = new Array<boolean>(rank).fill(false);
  let identity = true;
  let swapsLastTwo = rank >= 2;
  for (let i = 0; i < rank; i++) {
    const p = perm[i]!;
    if (!Number.isInteger(p) || p < 0 || p >= rank || seen[p]) {
      throw new RangeError(`permute: [${perm.join(', ')}] is not a permutation of ${rank} axes`);
    }
    seen[p] = true;
    if (p !== i) identity = false;
    const swapped = i === rank - 1 ? rank - 2 : i === rank - 2 ? rank - 1 : i;
    if (p !== swapped) swapsLastTwo = false;
  }
  const shape = perm.map((p) => x.shape[p]!);
  if (identity) return { shape, data: x.data.slice() };
  if (swapsLastTwo) return { shape, data: transposeLastTwo(x) };
  const strides = stridesOf(x.shape);
  return { shape, data: gatherStrided(x.data, 0, shape, perm.map((p) => strides[p]!)) };
}

/** Batched matrix transpose [..., r, c] -> [..., c, r], in tiles so both sides stay in cache. */
function transposeLastTwo(x: Tensor): Float64Array {
  const rank = x.shape.length;
  const rows = x.shape[rank - 2]!;
  const cols = x.shape[rank - 1]!;
  const src = x.data;
  const out = new Float64Array(src.length);
  const matrix = rows * cols;
  if (matrix === 0) return out;
  for (let base = 0; base < src.length; base += matrix) {
    for (let i0 = 0; i0 < rows; i0 += TILE) {
      const i1 = Math.min(rows, i0 + TILE);
      for (let j0 = 0; j0 < cols; j0 += TILE) {
        const j1 = Math.min(cols, j0 + TILE);
        for (let i = i0; i < i1; i++) {
          const s = base + i * cols;
          for (let j = j0; j < j1; j++) out[base + j * rows + i] = src[s + j]!;
        }
      }
    }
  }
  return out;
}

/** The offset and strides of a strided slice of the last k axes, or a RangeError. */
function sliceView(
  what: string,
  shape: Shape,
  starts: readonly number[],
  steps: readonly number[],
  counts: readonly number[],
): { offset: number; strides: number[] } {
  const k = starts.length;
  const lead = shape.length - k;
  if (steps.length !== k || counts.length !== k || lead < 0) {
    throw new RangeError(`${what}: starts, steps and counts must have one entry per sliced axis of ${formatShape(shape)}`);
  }
  const strides = stridesOf(shape);
  let offset = 0;
  for (let i = 0; i < k; i++) {
    const d = lead + i;
    const size = shape[d]!;
    const start = starts[i]!;
    const step = steps[i]!;
    const count = counts[i]!;
    const bad =
      !Number.isInteger(start) || !Number.isInteger(step) || step === 0 || !Number.isInteger(count) || count < 0 ||
      (count > 0 && (start < 0 || start >= size || start + (count - 1) * step < 0 || start + (count - 1) * step >= size));
    if (bad) {
      throw new RangeError(`${what}: axis ${d} (size ${size}) cannot take ${count} elements from ${start} in steps of ${step}`);
    }
    offset += start * strides[d]!;
    strides[d] = step * strides[d]!;
  }
  return { offset, strides };
}

/**
 * out[..., j0, .., jk-1] = x[..., starts[0] + j0*steps[0], .., starts[k-1] + jk-1*steps[k-1]]
 * over the last k = starts.length axes; leading axes pass through. Steps may be negative.
 */
export function stridedSlice(
  x: Tensor,
  starts: readonly number[],
  steps: readonly number[],
  counts: readonly number[],
): Tensor {
  const { offset, strides } = sliceView('stridedSlice', x.shape, starts, steps, counts);
  const lead = x.shape.length - starts.length;
  const shape = [...x.shape.slice(0, lead), ...counts];
  return { shape, data: gatherStrided(x.data, offset, shape, strides) };
}

/**
 * The adjoint of stridedSlice: a tensor of shape [...leading(g), ...shape] holding g at the
 * sliced positions and zeros elsewhere (g's last k dims are the slice's counts).
 */
export function stridedScatter(
  g: Tensor,
  shape: Shape,
  starts: readonly number[],
  steps: readonly number[],
): Tensor {
  const k = shape.length;
  const lead = g.shape.length - k;
  if (lead < 0 || starts.length !== k) {
    throw new RangeError(`stridedScatter: ${formatShape(g.shape)} cannot scatter into ${k} trailing axes`);
  }
  const outShape = [...g.shape.slice(0, lead), ...shape];
  const { offset, strides } = sliceView('stridedScatter', outShape, starts, steps, g.shape.slice(lead));
  const out = new Float64Array(sizeOf(outShape));
  scatterStrided(out, offset, g.shape, strides, g.data);
  return { shape: outShape, data: out };
}

/** Join tensors along `axis`; all other dims must agree. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  const first = xs[0]!.shape;
  const rank = first.length;
  if (!Number.isInteger(axis) || axis < 0 || axis >= rank) {
    throw new RangeError(`concat: axis ${axis} is out of range for rank ${rank}`);
  }
  let total = 0;
  for (const x of xs) {
    const ok = x.shape.length === rank && x.shape.every((d, i) => i === axis || d === first[i]);
    if (!ok) throw new RangeError(`concat: ${formatShape(x.shape)} does not match ${formatShape(first)} off axis ${axis}`);
    total += x.shape[axis]!;
  }
  const shape = [...first];
  shape[axis] = total;
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= first[d]!;
  const inner = sizeOf(first.slice(axis + 1));
  const row = total * inner;
  const out = new Float64Array(outer * row);
  let column = 0;
  for (const x of xs) {
    // Each input fills a column block of `chunk` elements in every one of the `outer` rows.
    const chunk = x.shape[axis]! * inner;
    for (let r = 0; r < outer; r++) copyRun(x.data, r * chunk, out, r * row + column, chunk);
    column += chunk;
  }
  return { shape, data: out };
}

/** [..., m, n] -> [..., min(m, n)]: the main diagonal of each matrix. */
export function diagPart(x: Tensor): Tensor {
  const rank = x.shape.length;
  if (rank < 2) throw new RangeError(`diagPart: needs a matrix, got ${formatShape(x.shape)}`);
  const m = x.shape[rank - 2]!;
  const n = x.shape[rank - 1]!;
  const p = Math.min(m, n);
  const batch = sizeOf(x.shape.slice(0, rank - 2));
  const out = new Float64Array(batch * p);
  const src = x.data;
  for (let b = 0; b < batch; b++) {
    const base = b * m * n;
    for (let i = 0; i < p; i++) out[b * p + i] = src[base + i * (n + 1)]!;
  }
  return { shape: [...x.shape.slice(0, rank - 2), p], data: out };
}

/** [..., n] -> [..., n, n]: square matrices with x on the diagonal and zeros elsewhere. */
export function diagEmbed(x: Tensor): Tensor {
  const rank = x.shape.length;
  if (rank < 1) throw new RangeError('diagEmbed: needs at least one axis');
  const n = x.shape[rank - 1]!;
  const batch = sizeOf(x.shape.slice(0, rank - 1));
  const out = new Float64Array(batch * n * n);
  const src = x.data;
  for (let b = 0; b < batch; b++) {
    const base = b * n * n;
    for (let i = 0; i < n; i++) out[base + i * (n + 1)] = src[b * n + i]!;
  }
  return { shape: [...x.shape, n], data: out };
}

/** The n×n identity matrix. */
export function eye(n: number): Tensor {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`eye: bad size ${n}`);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * (n + 1)] = 1;
  return { shape: [n, n], data: out };
}
