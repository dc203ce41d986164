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
