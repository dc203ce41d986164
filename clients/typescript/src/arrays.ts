// Tensors in and out of the service (README "Base64 arrays"): nested JSON arrays with "NaN",
// "Infinity", "-Infinity" for the non-finite numbers, or an EncodedArray, base64 of the
// little-endian float64 elements. Answers are decoded into Tensors (a Float64Array and a shape);
// large inputs are sent as base64, which the service reads without parsing a number per element.

import type { components } from './schema.js';

/** A tensor as the service writes it: a number, nested arrays, or an EncodedArray. */
export type Value = components['schemas']['Value'];
export type EncodedArray = components['schemas']['EncodedArray'];
export type NonFinite = 'NaN' | 'Infinity' | '-Infinity';

/** Nested arrays of numbers, with real NaN and ±Infinity. */
export type Nested = number | Nested[];

/** Numbers (NaN and ±Infinity included, or as the service's strings) in rectangular nested arrays. */
export type NestedInput = number | NonFinite | readonly NestedInput[];

/** What may be sent as a tensor: nested numbers, a Float64Array (a vector), a Tensor, or an EncodedArray. */
export type TensorInput = NestedInput | Float64Array | Tensor | EncodedArray;

/** Inputs of this many elements or more are sent as base64 (the Python client's default too). */
export const BASE64_THRESHOLD = 4096;

/** An n-d array of float64: its elements in row-major order and its shape ([] for a scalar). */
export class Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;

  constructor(shape: readonly number[], data: Float64Array) {
    const size = shape.reduce((product, n) => product * n, 1);
    if (size !== data.length) throw new RangeError(`shape [${shape.join(', ')}] holds ${size} elements, not ${data.length}`);
    this.shape = shape;
    this.data = data;
  }

  get size(): number {
    return this.data.length;
  }

  /** The one element of a scalar (or of any one-element tensor). */
  item(): number {
    const [only] = this.data;
    if (this.data.length !== 1 || only === undefined) throw new RangeError(`item() needs one element; this tensor has shape [${this.shape.join(', ')}]`);
    return only;
  }

  /** Nested arrays of numbers (a number for a scalar), with real NaN and ±Infinity. */
  toNested(): Nested {
    return nest(this.data, this.shape, 0, 0);
  }
}

function nest(data: Float64Array, shape: readonly number[], axis: number, offset: number): Nested {
  if (axis === shape.length) return data[offset] ?? Number.NaN;
  const length = shape[axis] ?? 0;
  const stride = shape.slice(axis + 1).reduce((product, n) => product * n, 1);
  return Array.from({ length }, (_, i) => nest(data, shape, axis + 1, offset + i * stride));
}

const NON_FINITE = new Map<unknown, number>([
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
]);

/** A number as JSON carries it: the non-finite ones as the service's strings (JSON.stringify would write null). */
export function jsonNumber(x: number): number | NonFinite {
  if (Number.isFinite(x)) return x;
  if (Number.isNaN(x)) return 'NaN';
  return x > 0 ? 'Infinity' : '-Infinity';
}

/** A number from an answer: a JSON number, or one of the strings "NaN", "Infinity", "-Infinity". */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  const nonFinite = NON_FINITE.get(value);
  if (nonFinite === undefined) throw new TypeError(`not a number: ${JSON.stringify(value)}`);
  return nonFinite;
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** The elements' bytes, little-endian as the service reads them. */
function littleEndianBytes(data: Float64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.length * 8);
  const view = new DataView(bytes.buffer);
  data.forEach((x, i) => view.setFloat64(i * 8, x, true));
  return bytes;
}

function fromLittleEndian(bytes: Uint8Array): Float64Array {
  if (bytes.length % 8 !== 0) throw new RangeError(`${bytes.length} bytes are not whole float64 elements`);
  // A fresh, aligned copy (Buffer's slice() is a view into its pool): read in place on
  // little-endian machines, element by element elsewhere.
  const copy = new Uint8Array(bytes);
  if (LITTLE_ENDIAN) return new Float64Array(copy.buffer, 0, copy.length / 8);
  const view = new DataView(copy.buffer);
  return Float64Array.from({ length: copy.length / 8 }, (_, i) => view.getFloat64(i * 8, true));
}

// Base64 (standard alphabet, padded) by table: btoa/atob need a "binary string" of the bytes
// first, which took seconds for a few million elements.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const CODES = new TextEncoder().encode(ALPHABET);
const SEXTETS = new Int16Array(128).fill(-1);
CODES.forEach((code, sextet) => (SEXTETS[code] = sextet));
const PAD = 61; // '='

/** Node's Buffer where there is one (its base64 is native code, a few times faster); browsers use the tables. */
interface NodeBuffer {
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): { toString(encoding: 'base64'): string };
  from(text: string, encoding: 'base64'): Uint8Array;
}
const nodeBuffer: NodeBuffer | undefined = Reflect.get(globalThis, 'Buffer');

function toBase64(bytes: Uint8Array): string {
  if (nodeBuffer) return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  for (let i = 0; i < bytes.length; i += 3) {
    const rest = bytes.length - i;
    const triple = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out[o++] = CODES[triple >> 18] ?? PAD;
    out[o++] = CODES[(triple >> 12) & 63] ?? PAD;
    out[o++] = rest > 1 ? (CODES[(triple >> 6) & 63] ?? PAD) : PAD;
    out[o++] = rest > 2 ? (CODES[triple & 63] ?? PAD) : PAD;
  }
  return new TextDecoder().decode(out);
}

function fromBase64(text: string): Uint8Array {
  if (nodeBuffer) return nodeBuffer.from(text, 'base64');
  const codes = new TextEncoder().encode(text);
  if (codes.length % 4 !== 0) throw new RangeError('base64 data must be padded to a multiple of 4 characters');
  const padding = codes.length === 0 ? 0 : (codes[codes.length - 1] === PAD ? 1 : 0) + (codes[codes.length - 2] === PAD ? 1 : 0);
  const bytes = new Uint8Array((codes.length / 4) * 3 - padding);
  let b = 0;
  for (let i = 0; i < codes.length; i += 4) {
    let quad = 0;
    for (let k = 0; k < 4; k++) {
      const code = codes[i + k] ?? PAD;
      const sextet = code === PAD && i + 4 === codes.length && k >= 4 - padding ? 0 : (SEXTETS[code] ?? -1);
      if (sextet < 0) throw new RangeError(`not base64 at character ${i + k}`);
      quad = (quad << 6) | sextet;
    }
    bytes[b++] = quad >> 16;
    if (b < bytes.length) bytes[b++] = (quad >> 8) & 255;
    if (b < bytes.length) bytes[b++] = quad & 255;
  }
  return bytes;
}

/** A tensor as an EncodedArray: base64 of its little-endian float64 elements. */
export function encodeBase64(tensor: Tensor): EncodedArray {
  return { dtype: 'float64', shape: [...tensor.shape], data: toBase64(littleEndianBytes(tensor.data)) };
}

function isEncodedArray(value: unknown): value is EncodedArray {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'data' in value && 'shape' in value;
}

/** Nested arrays (numbers or the non-finite strings) as a Tensor: rectangular, or a RangeError saying where not. */
function fromNested(value: unknown): Tensor {
  const shape: number[] = [];
  for (let level = value; Array.isArray(level); level = level[0]) shape.push(level.length);
  const data = new Float64Array(shape.reduce((product, n) => product * n, 1));
  const index: number[] = [];
  let filled = 0;
  // Depth-first over the axes (as deep as the rank); the path is spelt out only for an error.
  const visit = (item: unknown, axis: number): void => {
    if (axis === shape.length) {
      if (Array.isArray(item)) throw new RangeError(`not rectangular at [${index.join('][')}]: an array where a number belongs`);
      data[filled++] = toNumber(item);
      return;
    }
    if (!Array.isArray(item) || item.length !== shape[axis]) throw new RangeError(`not rectangular at [${index.join('][')}]: expected ${shape[axis]} elements`);
    for (let i = 0; i < item.length; i++) {
      index[axis] = i;
      visit(item[i], axis + 1);
    }
    index.length = axis;
  };
  visit(value, 0);
  return new Tensor(shape, data);
}

/** Any tensor the service writes, or any TensorInput, as a Tensor. */
export function toTensor(value: TensorInput | Value): Tensor {
  if (value instanceof Tensor) return value;
  if (value instanceof Float64Array) return new Tensor([value.length], value);
  if (isEncodedArray(value)) {
    if (value.dtype !== 'float64') throw new TypeError(`dtype ${JSON.stringify(value.dtype)}: only float64 is known`);
    // From a MessagePack answer, `data` is the bytes themselves (a bin).
    const data: unknown = value.data;
    return new Tensor(value.shape, fromLittleEndian(data instanceof Uint8Array ? data : fromBase64(value.data)));
  }
  return fromNested(value);
}

/** Any tensor the service writes as nested arrays with real NaN and ±Infinity (a number for a scalar). */
export function toNested(value: Value | TensorInput): Nested {
  return toTensor(value).toNested();
}

/** How many elements nested arrays hold, counted along their first elements without visiting the rest. */
function nestedSize(value: readonly NestedInput[]): number {
  let size = 1;
  for (let level: NestedInput = value; Array.isArray(level); level = level[0] ?? []) {
    size *= level.length;
    if (level.length === 0) break;
  }
  return size;
}

/**
 * A tensor as the service reads it: base64 when it has `threshold` elements or more, else nested
 * arrays with the non-finite numbers as strings. An EncodedArray is sent as it is.
 */
export function encodeValue(value: TensorInput, threshold: number = BASE64_THRESHOLD, binary = false): Value {
  if (isEncodedArray(value)) return value;
  if (typeof value === 'number') return jsonNumber(value);
  if (typeof value === 'string') return value;
  const encode = binary ? encodeBinary : encodeBase64;
  if (value instanceof Tensor || value instanceof Float64Array) {
    const tensor = toTensor(value);
    return tensor.size >= threshold ? encode(tensor) : nestedValue(tensor.toNested());
  }
  if (nestedSize(value) >= threshold) return encode(toTensor(value));
  return value.map((item) => encodeValue(item, Number.POSITIVE_INFINITY));
}

/**
 * A tensor as a MessagePack body carries it: `data` the little-endian float64 bytes themselves
 * (written as a bin), typed as an EncodedArray, the form it stands for.
 */
export function encodeBinary(tensor: Tensor): EncodedArray {
  return { dtype: 'float64', shape: [...tensor.shape], data: littleEndianBytes(tensor.data) as unknown as string };
}

function nestedValue(nested: Nested): Value {
  return typeof nested === 'number' ? jsonNumber(nested) : nested.map(nestedValue);
}
