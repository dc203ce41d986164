// Tensors as the request travels: a large nested array is sent as base64 of its float64 elements
// (an EncodedArray), as both clients do, so a big input is an eighth of its JSON text, is read by
// the service without parsing a number per element, and stays under BODY_LIMIT.

/** Inputs of this many elements or more are sent as base64: the threshold of both clients (clients/typescript, clients/python). */
export const BASE64_THRESHOLD = 4096;

/** A tensor as base64 of its little-endian float64 elements, row-major (README "Base64 arrays"). */
export interface EncodedArray {
  dtype: 'float64';
  shape: number[];
  data: string;
}

const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

/**
 * `value` as an EncodedArray when it is a rectangular nested array of numbers (or "NaN",
 * "Infinity", "-Infinity") with `threshold` elements or more; otherwise `value` unchanged, for the
 * service to read or to refuse with its own message. Counts before it builds: the shape is read
 * down the first elements, and the elements are written into one buffer of that size by a loop
 * over an explicit stack (no recursion over the rank), checking every row's length on the way.
 */
export function encodeLarge(value: unknown, threshold: number = BASE64_THRESHOLD): unknown {
  if (!Array.isArray(value)) return value;
  const shape: number[] = [];
  let count = 1;
  for (let v: unknown = value; Array.isArray(v); v = v[0]) {
    shape.push(v.length);
    count *= v.length;
  }
  if (count < threshold || count === 0) return value;
  const bytes = new DataView(new ArrayBuffer(count * 8));
  const rank = shape.length;
  let written = 0;
  // Each entry: an array at `depth` and the index of its next element.
  const stack: { array: unknown[]; depth: number; next: number }[] = [{ array: value, depth: 0, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.array.length !== shape[top.depth]) return value;
    if (top.next === top.array.length) {
      stack.pop();
      continue;
    }
    const element = top.array[top.next++];
    if (top.depth < rank - 1) {
      if (!Array.isArray(element)) return value;
      stack.push({ array: element, depth: top.depth + 1, next: 0 });
      continue;
    }
    const x = typeof element === 'number' ? element : typeof element === 'string' && Object.hasOwn(NON_FINITE, element) ? NON_FINITE[element]! : undefined;
    if (x === undefined) return value;
    bytes.setFloat64(8 * written++, x, true);
  }
  return { dtype: 'float64', shape, data: Buffer.from(bytes.buffer).toString('base64') } satisfies EncodedArray;
}

// Request fields holding a tensor per input, or one tensor (as the clients list them).
const PER_INPUT_FIELDS = new Set(['at', 'tangents', 'vector']);
const TENSOR_FIELDS = new Set(['cotangent']);

/** A request body with its large tensors as base64; `perInput: false` where `at` is one tensor (POST /probe). */
export function encodeRequest(body: Record<string, unknown>, options: { perInput: boolean; threshold?: number }): Record<string, unknown> {
  const threshold = options.threshold ?? BASE64_THRESHOLD;
  const perInput = (values: unknown): unknown => {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) return values;
    const encoded: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [name, v] of Object.entries(values)) encoded[name] = encodeLarge(v, threshold);
    return encoded;
  };
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(body)) {
    if (!options.perInput) out[field] = field === 'at' || field === 'segments' ? encodeLarge(value, threshold) : value;
    else if (PER_INPUT_FIELDS.has(field)) out[field] = perInput(value);
    else if (TENSOR_FIELDS.has(field)) out[field] = encodeLarge(value, threshold);
    else out[field] = value;
  }
  return out;
}

// --msgpack: the request as MessagePack, its encoded arrays' data as bins of their bytes (no base64
// on the wire), and the answer asked as MessagePack, turned back into the JSON the rest of the
// command line reads (tensors as nested arrays, non-finite numbers as the service's strings), so
// that what is printed, kept (--out) and shown (--json) is the same as without it.

const isEncoded = (v: Record<string, unknown>): boolean => v.dtype === 'float64' && Array.isArray(v.shape) && 'data' in v;

/** `value` with every EncodedArray's base64 `data` as its bytes (iteratively, any depth); the rest unchanged. */
export function withBins(value: unknown): unknown {
  const root = { value };
  const pending: [Record<string, unknown> | unknown[], string | number][] = [[root, 'value']];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const [holder, key] = item;
    const v = (holder as Record<string | number, unknown>)[key];
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      const copy = [...v];
      (holder as Record<string | number, unknown>)[key] = copy;
      for (let i = 0; i < copy.length; i++) pending.push([copy, i]);
      continue;
    }
    const record = v as Record<string, unknown>;
    const copy: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    Object.assign(copy, record);
    if (isEncoded(record) && typeof record.data === 'string') copy.data = Buffer.from(record.data, 'base64');
    else for (const k of Object.keys(copy)) pending.push([copy, k]);
    (holder as Record<string | number, unknown>)[key] = copy;
  }
  return root.value;
}

/** A number as JSON carries it: non-finite ones as the service's strings. */
function jsonNumber(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/** A tensor's bytes as nested arrays of `shape` (row-major). */
function nestedOf(bytes: Uint8Array, shape: number[]): unknown {
  const copy = new Uint8Array(bytes); // aligned
  const view = new DataView(copy.buffer);
  const flat: (number | string)[] = [];
  for (let i = 0; i + 8 <= copy.byteLength; i += 8) flat.push(jsonNumber(view.getFloat64(i, true)));
  if (shape.length === 0) return flat[0];
  let rows: unknown[] = flat;
  for (let d = shape.length - 1; d >= 1; d--) {
    const n = shape[d]!;
    const next: unknown[] = [];
    for (let i = 0; i < rows.length; i += n) next.push(rows.slice(i, i + n));
    rows = next;
  }
  return rows;
}

/** A MessagePack answer as the JSON text the service would have answered (tensors nested, non-finite numbers as strings). */
export function msgpackAnswerAsJson(decoded: unknown): string {
  return JSON.stringify(decoded, function (this: unknown, _key, v: unknown) {
    if (typeof v === 'number') return jsonNumber(v);
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)) {
      const record = v as Record<string, unknown>;
      if (isEncoded(record) && record.data instanceof Uint8Array) return nestedOf(record.data, record.shape as number[]);
    }
    return v;
  });
}
