// n-d float64 tensors: row-major, contiguous, immutable once built.
// Kernels never write into their inputs, so a reshape may share its input's buffer.

export type Shape = readonly number[];

export interface Tensor {
  readonly shape: Shape;
  readonly data: Float64Array;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
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
