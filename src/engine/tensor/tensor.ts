// n-d float64 tensors: row-major, contiguous, immutable once built.
// Kernels never write into their inputs, so a reshape may share its input's buffer.

export type Shape = readonly number[];

export interface Tensor {
  readonly shape: Shape;
  readonly data: Float64Array;
}

/** Most dimensions a tensor may have (NumPy's limit before 2.0). */
export const MAX_RANK = 32;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Arrays in a tensor's nested form (its JSON answer): one for the whole, then one per row of each
 * dimension but the last, 1 + d₀ + d₀d₁ + …, to the first dimension of length 0 (no row holds
 * another below it). A tensor of zero elements still has these: [100000, 100000, 0] is 10¹⁰
 * empty arrays.
 */
export function nestedArraysOf(shape: Shape): number {
  let arrays = 0;
  let rows = 1;
  for (let i = 0; i < shape.length && rows > 0; i++) {
    arrays += rows;
    rows *= shape[i]!;
  }
  return arrays;
}

/**
 * What a tensor of `shape` costs to build, hold or write, counted before it exists: its elements,
 * or for a tensor of zero elements the arrays of its nested form (a builder that counted only
 * elements would let a tensor of no elements and a billion rows through). Equal to `sizeOf` for
 * every tensor with elements, so no limit on those changes.
 */
export function extentOf(shape: Shape): number {
  const size = sizeOf(shape);
  return size > 0 ? size : nestedArraysOf(shape);
}

/** extentOf([...a, ...b]) without building that shape (a block of a Jacobian or Hessian). */
export function extentOfBlock(a: Shape, b: Shape): number {
  const sizeA = sizeOf(a);
  const sizeB = sizeOf(b);
  if (sizeA > 0 && sizeB > 0) return sizeA * sizeB;
  // The rows of a, then (when a has elements) those of b under each of a's elements.
  return sizeA > 0 ? nestedArraysOf(a) + sizeA * nestedArraysOf(b) : nestedArraysOf(a);
}

export function full(shape: Shape, value: number): Tensor {
  return { shape: [...shape], data: new Float64Array(sizeOf(shape)).fill(value) };
}

/** Row-major strides in elements. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** NumPy broadcasting of two shapes, or null when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === db || db === 1) out[i] = da;
    else if (da === 1) out[i] = db;
    else return null;
  }
  return out;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Reshape without copying (tensors are immutable). */
export function reshapeTensor(x: Tensor, shape: Shape): Tensor {
  if (sizeOf(shape) !== x.data.length) {
    throw new RangeError(`cannot reshape ${formatShape(x.shape)} to ${formatShape(shape)}`);
  }
  return { shape: [...shape], data: x.data };
}
