// Nested arrays (a number, or a rectangular nested array; non-finite numbers as the strings "NaN",
// "Infinity", "-Infinity"), or encoded arrays ({"dtype": "float64", "shape": [...], "data": base64
// of the little-endian float64 elements, row-major}; from a MessagePack body, `data` may be a bin of
// those bytes), read into float64 tensors: the values of JSON
// graphs' constants, and of the service's requests. (Answers are written by the service:
// src/service/values.ts.)

import { EngineError } from './errors.js';
import { DEFAULT_MAX_DIMENSION, shapeBeyondLimits, type ShapeLimits } from './ops/shapes.js';
import { MAX_RANK, type Tensor } from './tensor/tensor.js';

export { MAX_RANK };

/**
 * The limits a tensor read here meets: the engine's (MAX_TENSOR_ELEMENTS and MAX_DIMENSION), or an
 * element limit alone, every dimension then bounded by the default MAX_DIMENSION.
 */
export type TensorLimits = ShapeLimits | number;

function shapeLimitsOf(limits: TensorLimits): ShapeLimits {
  return typeof limits === 'number' ? { maxTensorElements: limits, maxDimension: DEFAULT_MAX_DIMENSION } : limits;
}

/** Refuse a shape past the limits (limit_exceeded at `path`), before anything of its size exists. */
function checkShape(shape: readonly number[], path: (string | number)[], errorPath: (string | number)[], limits: ShapeLimits): void {
  const why = shapeBeyondLimits(shape, limits);
  if (why !== undefined) throw new EngineError('limit_exceeded', `${formatPath(path)} ${why}`, { path: errorPath });
}

function toNumber(v: unknown, path: (string | number)[]): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new EngineError('validation_error', `${formatPath(path)} must be a number (or "NaN", "Infinity", "-Infinity"), got ${describe(v)}`, {
    path,
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v);
  return typeof v;
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * The shape of a nested array, found by walking first elements, then every element checked against
 * it (iteratively). The shape is checked against `limits` (elements, each dimension, and the rows
 * of a tensor of zero elements) before the data is allocated.
 */
export function toTensor(value: unknown, path: (string | number)[], limits: TensorLimits = Infinity): Tensor {
  const shapeLimits = shapeLimitsOf(limits);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return decodeTensor(value as Record<string, unknown>, path, shapeLimits);
  const shape: number[] = [];
  let probe = value;
  while (Array.isArray(probe)) {
    if (shape.length >= MAX_RANK) throw new EngineError('validation_error', `${formatPath(path)} has more than ${MAX_RANK} dimensions`, { path });
    shape.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0];
  }
  checkShape(shape, path, path, shapeLimits);
  let size = 1;
  for (const d of shape) size *= d;
  const data = new Float64Array(size);
  if (shape.length === 0) {
    data[0] = toNumber(value, path);
    return { shape, data };
  }
  let k = 0;
  // Explicit stack of [array, depth, index-path] so any rank is walked without recursion.
  const stack: [unknown[], number, number[]][] = [[value as unknown[], 0, []]];
  while (stack.length > 0) {
    const [arr, depth, at] = stack.pop()!;
    if (arr.length !== shape[depth]) {
      throw new EngineError(
        'validation_error',
        `${formatPath([...path, ...at])} has ${arr.length} elements where ${shape[depth]} were expected: the array must be rectangular`,
        { path: [...path, ...at] },
      );
    }
    if (depth === shape.length - 1) {
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i];
        if (Array.isArray(v)) {
          throw new EngineError('validation_error', `${formatPath([...path, ...at, i])} is an array where a number was expected: the array must be rectangular`, {
            path: [...path, ...at, i],
          });
        }
        data[k++] = toNumber(v, [...path, ...at, i]);
      }
    } else {
      for (let i = arr.length - 1; i >= 0; i--) {
        const v = arr[i];
        if (!Array.isArray(v)) {
          throw new EngineError('validation_error', `${formatPath([...path, ...at, i])} must be an array: the array must be rectangular`, {
            path: [...path, ...at, i],
          });
        }
        stack.push([v, depth + 1, [...at, i]]);
      }
    }
  }
  return { shape, data };
}

/**
 * A tensor already read, in the form of an encoded array: what the service hands to a worker thread,
 * the elements' memory moved rather than copied. JSON has no Float64Array, so no request holds one.
 */
export interface ReadArray {
  dtype: 'float64';
  shape: number[];
  data: Float64Array;
}

/** `t` as a ReadArray (sharing its elements). */
export function readArrayOf(t: Tensor): ReadArray {
  return { dtype: 'float64', shape: [...t.shape], data: t.data };
}

/** The tensor a ReadArray holds, its element count checked against its shape. */
function readArray(data: Float64Array, shape: number[], size: number, path: (string | number)[]): Tensor {
  if (data.length !== size) throw invalid(path, `holds ${data.length} elements, but shape [${shape.join(', ')}] needs ${size}`);
  return { shape, data };
}

/**
 * The tensor whose little-endian float64 elements are `bytes` (a MessagePack bin), its length
 * checked against the shape; the bytes are copied into the tensor's own, aligned memory.
 */
function readBytes(bytes: Uint8Array, shape: number[], size: number, path: (string | number)[]): Tensor {
  if (bytes.byteLength !== 8 * size) {
    throw invalid(path, `holds ${bytes.byteLength} bytes, but shape [${shape.join(', ')}] needs ${8 * size} (8 bytes per float64 element): check the shape, and that the data is float64`);
  }
  const out = new Float64Array(size);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < size; i++) out[i] = view.getFloat64(8 * i, true);
  }
  return { shape, data: out };
}

/** The keys of an encoded array. */
const ENCODED_KEYS = ['dtype', 'shape', 'data'];
/** Whether this machine stores a float64's bytes little-endian (then decoding needs no copy). */
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** A character outside the standard base64 alphabet, or "=" before the final padding. */
const OUTSIDE_ALPHABET = /[^A-Za-z0-9+/=]/;

/**
 * The index of the first character of `data` that base64 does not allow where it stands, or -1.
 * One regular-expression search over the whole string (a search over a slice of it is about twenty
 * times slower in V8), then the first "=" must be the padding.
 */
function misplacedCharacter(data: string, padding: number): number {
  const outside = data.search(OUTSIDE_ALPHABET);
  if (outside >= 0) return outside;
  const equals = data.indexOf('=');
  return equals >= 0 && equals < data.length - padding ? equals : -1;
}

function badCharacter(path: (string | number)[], data: string, at: number): EngineError {
  return invalid(path, `has ${describe(data[at])} at character ${at}: base64 uses A–Z, a–z, 0–9, "+" and "/" (the standard alphabet, not base64url), padded with "="`);
}

function invalid(path: (string | number)[], message: string): EngineError {
  return new EngineError('validation_error', `${formatPath(path)} ${message}`, { path });
}

/**
 * An encoded array `{dtype: "float64", shape, data}` read into a tensor: the shape checked (and its
 * size against `limits`) before anything is decoded, then the base64 text checked (standard
 * alphabet, padded) and its length against the shape, then its bytes read as little-endian float64.
 * Any bits are accepted: NaN and ±Infinity, as the strings are in nested arrays.
 */
function decodeTensor(value: Record<string, unknown>, path: (string | number)[], limits: ShapeLimits): Tensor {
  for (const key of Object.keys(value)) {
    if (!ENCODED_KEYS.includes(key)) {
      throw invalid([...path, key], 'is not a key of an encoded array: give a number, a nested array, or {"dtype": "float64", "shape": [...], "data": "<base64>"}');
    }
  }
  const { dtype, shape: rawShape, data } = value;
  if (dtype !== 'float64') {
    throw invalid([...path, 'dtype'], `must be "float64" (the only dtype; convert the array to float64 before encoding it), got ${describe(dtype)}`);
  }
  if (!Array.isArray(rawShape)) throw invalid([...path, 'shape'], `must be an array of whole numbers ≥ 0 (the dimensions; [] for a scalar), got ${describe(rawShape)}`);
  if (rawShape.length > MAX_RANK) throw invalid([...path, 'shape'], `has more than ${MAX_RANK} dimensions`);
  const shape: number[] = [];
  let size = 1;
  rawShape.forEach((d: unknown, i) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw invalid([...path, 'shape', i], `must be a whole number ≥ 0 (a dimension), got ${typeof d === 'number' ? String(d) : describe(d)}`);
    }
    shape.push(d);
    size *= d;
  });
  checkShape(shape, path, [...path, 'shape'], limits);
  const dataPath = [...path, 'data'];
  if (data instanceof Float64Array) return readArray(data, shape, size, dataPath);
  if (data instanceof Uint8Array) return readBytes(data, shape, size, dataPath);
  if (typeof data !== 'string') throw invalid(dataPath, `must be a base64 string (the float64 elements, little-endian, row-major), got ${describe(data)}`);
  if (data.length % 4 !== 0) throw invalid(dataPath, `has ${data.length} characters, not a multiple of 4: base64 must be padded with "="`);
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  const bytes = (data.length / 4) * 3 - padding;
  if (bytes !== 8 * size) {
    const bad = misplacedCharacter(data, padding);
    if (bad >= 0) throw badCharacter(dataPath, data, bad);
    throw invalid(dataPath, `holds ${bytes} bytes, but shape [${shape.join(', ')}] needs ${8 * size} (8 bytes per float64 element): check the shape, and that the data is float64`);
  }
  const out = new Float64Array(size);
  if (LITTLE_ENDIAN) {
    // Decoded straight into the tensor's memory. Node's decoder skips what is not base64 (and reads
    // base64url's "-" and "_"), so a text of the right length that decodes to fewer bytes, or holds
    // "-" or "_", has a character out of place: only then is it searched for, to say where.
    const written = Buffer.from(out.buffer).write(data, 'base64');
    if (written !== 8 * size || data.includes('-') || data.includes('_')) {
      const bad = misplacedCharacter(data, padding);
      throw bad >= 0 ? badCharacter(dataPath, data, bad) : invalid(dataPath, `decodes to ${written} bytes where ${8 * size} were expected`);
    }
  } else {
    const bad = misplacedCharacter(data, padding);
    if (bad >= 0) throw badCharacter(dataPath, data, bad);
    const decoded = Buffer.from(data, 'base64');
    const view = new DataView(decoded.buffer, decoded.byteOffset, decoded.byteLength);
    for (let i = 0; i < size; i++) out[i] = view.getFloat64(8 * i, true);
  }
  return { shape, data: out };
}
