// Tensors as answers hold them: a number, or a rectangular nested array, with non-finite numbers
// as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers) and -0 as 0.

import type { Shape, Tensor } from '../engine/tensor/tensor.js';

export type Value = number | string | Value[];

export function jsonNumber(v: number): number | string {
  if (Number.isFinite(v)) return Object.is(v, -0) ? 0 : v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/** A tensor as a nested array (a number for a scalar), non-finite numbers as strings. */
export function fromTensor(t: Tensor): Value {
  return nest(t.data, t.shape, 0, 0);
}

function nest(data: Float64Array, shape: Shape, dim: number, offset: number): Value {
  if (dim === shape.length) return jsonNumber(data[offset]!);
  const n = shape[dim]!;
  let stride = 1;
  for (let i = dim + 1; i < shape.length; i++) stride *= shape[i]!;
  const out = new Array<Value>(n);
  if (dim === shape.length - 1) {
    for (let i = 0; i < n; i++) out[i] = jsonNumber(data[offset + i]!);
  } else {
    for (let i = 0; i < n; i++) out[i] = nest(data, shape, dim + 1, offset + i * stride);
  }
  return out;
}
