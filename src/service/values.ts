// Tensors as answers hold them: a number, or a rectangular nested array, with non-finite numbers
// as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers) and -0 as 0; or, when a
// request asks for `"encoding": "base64"`, every tensor of rank ≥ 1 as an encoded array
// {"dtype": "float64", "shape": [...], "data": base64 of its little-endian float64 elements}
// (its exact bits: NaN, ±Infinity and -0 as they are), a scalar still as a number.

import type { Shape, Tensor } from '../engine/tensor/tensor.js';

export type Value = number | string | Value[] | EncodedArray | BinaryArray;

/** A tensor as its little-endian float64 bytes, for a MessagePack answer (`data` is written as a bin). */
export interface BinaryArray {
  dtype: 'float64';
  shape: number[];
  data: Uint8Array;
}

/** A tensor as base64 of its little-endian float64 elements, row-major. */
export interface EncodedArray {
  dtype: 'float64';
  shape: number[];
  data: string;
}

/**
 * How an answer writes tensors: nested arrays (the default), or encoded arrays; `msgpack` is set
 * by the service (never by a request) for an answer sent as MessagePack: bins of the bytes.
 */
export type Encoding = 'json' | 'base64' | 'msgpack';

/** Whether this machine stores a float64's bytes little-endian (then encoding is one pass). */
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

export function jsonNumber(v: number): number | string {
  if (Number.isFinite(v)) return Object.is(v, -0) ? 0 : v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/** A tensor as a nested array (a number for a scalar), non-finite numbers as strings. */
export function fromTensor(t: Tensor): Value {
  return nest(t.data, t.shape, 0, 0);
}

/** A tensor of rank ≥ 1 as an encoded array; a scalar as a number (as `fromTensor` writes it). */
export function encodeTensor(t: Tensor): Value {
  if (t.shape.length === 0) return jsonNumber(t.data[0]!);
  let bytes: Buffer;
  if (LITTLE_ENDIAN) bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  else {
    bytes = Buffer.alloc(t.data.byteLength);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < t.data.length; i++) view.setFloat64(8 * i, t.data[i]!, true);
  }
  return { dtype: 'float64', shape: [...t.shape], data: bytes.toString('base64') };
}

/**
 * A tensor of rank ≥ 1 as its bytes (a view of its elements on a little-endian machine), for a
 * MessagePack answer; a scalar as a number, NaN and ±Infinity as they are (MessagePack has them).
 */
export function binaryTensor(t: Tensor): Value {
  if (t.shape.length === 0) return t.data[0]!;
  let bytes: Uint8Array;
  if (LITTLE_ENDIAN) bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  else {
    bytes = new Uint8Array(t.data.byteLength);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < t.data.length; i++) view.setFloat64(8 * i, t.data[i]!, true);
  }
  return { dtype: 'float64', shape: [...t.shape], data: bytes };
}

/** The writer of tensors for an answer in this encoding. */
export function tensorWriter(encoding: Encoding | undefined): (t: Tensor) => Value {
  return encoding === 'base64' ? encodeTensor : encoding === 'msgpack' ? binaryTensor : fromTensor;
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
