// MessagePack request bodies, read under the same limits as JSON ones (src/service/body-decode.ts).
//
// Before anything is built, one iterative pass over the bytes (`scanMsgpack`) checks the document's
// structure: every declared length against the bytes that remain (a truncated body, or one that
// declares a 4 GiB string in 10 bytes, is refused before any allocation), the items of all its
// arrays and maps together against BODY_MAX_ITEMS (413, as JSON's commas are counted), its depth,
// no extension types, and no `__proto__` key nor `constructor` key holding a `prototype` key (400
// validation_error with where, as for JSON). Only then does @msgpack/msgpack decode it, with its
// own per-container limits as a second bound. A tensor's `data` may then be a bin (raw
// little-endian float64 bytes): the request layer reads it (src/engine/values.ts), and
// `decodeBinaryArrays` turns the well-formed ones into Float64Arrays, as base64 ones are decoded.

import { Decoder } from '@msgpack/msgpack';
import { toTensor } from '../engine/values.js';
import { BodyProblem, type ForbiddenKey } from './body-problem.js';

/** Arrays and maps may nest this deep (a request needs a few levels; nested arrays at most MAX_RANK). */
export const MSGPACK_MAX_DEPTH = 512;

const MAX_PATH_LENGTH = 200;

/** An open array or map of the scan: how many items remain, and where the next one sits. */
interface Frame {
  isMap: boolean;
  /** Items (array elements; map keys and values, each one) still to read. */
  remaining: number;
  /** Items in all. */
  size: number;
  /** A map's key being read's value: the last key read (a string), or undefined. */
  key: string | undefined;
}

function malformed(detail: string): BodyProblem {
  return new BodyProblem(400, 'invalid_msgpack', `The request body is not valid MessagePack: ${detail}`);
}

function forbiddenProblem(forbidden: ForbiddenKey): BodyProblem {
  const message = `\`${forbidden.key}\` keys are not accepted`;
  const full = forbidden.path.join('.');
  const path = full.length > MAX_PATH_LENGTH ? `…${full.slice(-MAX_PATH_LENGTH)}` : full;
  const detail = `The request does not match the schema: ${message} (found at ${path}); rename or remove the key`;
  return new BodyProblem(400, 'validation_error', detail, { errors: [{ path, message }] });
}

function pathOf(stack: readonly Frame[], tail: string[]): string[] {
  const keys: string[] = [];
  for (const frame of stack) {
    if (frame.isMap) keys.push(frame.key ?? '?');
    else keys.push(String(frame.size - frame.remaining - 1));
  }
  return [...keys, ...tail];
}

/**
 * Checks a MessagePack document's structure without building it (see the top of this file); throws
 * the BodyProblem that says what is wrong. Iterative: any depth is walked without recursion.
 */
export function scanMsgpack(body: Uint8Array, maxItems: number, maxDepth = MSGPACK_MAX_DEPTH): void {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const end = body.byteLength;
  const stack: Frame[] = [];
  let items = 0;
  let at = 0;
  const need = (bytes: number, what: string): void => {
    if (bytes > end - at) throw malformed(`${what} at byte ${at} needs ${bytes} bytes, but ${end - at} remain (truncated?)`);
  };
  while (true) {
    if (at >= end) throw malformed(`it ends at byte ${at} before its value is complete (truncated?)`);
    const top = stack.length > 0 ? stack[stack.length - 1]! : undefined;
    // A map's key position: even items left (the key comes before its value).
    const isKey = top !== undefined && top.isMap && top.remaining % 2 === 0;
    if (top !== undefined) top.remaining--;
    const head = body[at]!;
    const start = at;
    at++;
    let length = -1; // a str's, bin's or ext's payload
    let container: { isMap: boolean; count: number } | undefined;
    let isString = false;
    if (head <= 0x7f || head >= 0xe0 || head === 0xc0 || head === 0xc2 || head === 0xc3) {
      // fixint, nil, false, true: nothing follows
    } else if (head <= 0x8f) container = { isMap: true, count: head & 0x0f };
    else if (head <= 0x9f) container = { isMap: false, count: head & 0x0f };
    else if (head <= 0xbf) {
      length = head & 0x1f;
      isString = true;
    } else {
      switch (head) {
        case 0xc4: case 0xd9: need(1, 'a length'); length = view.getUint8(at); at += 1; isString = head === 0xd9; break;
        case 0xc5: case 0xda: need(2, 'a length'); length = view.getUint16(at); at += 2; isString = head === 0xda; break;
        case 0xc6: case 0xdb: need(4, 'a length'); length = view.getUint32(at); at += 4; isString = head === 0xdb; break;
        case 0xca: need(4, 'a float32'); at += 4; break;
        case 0xcb: need(8, 'a float64'); at += 8; break;
        case 0xcc: case 0xd0: need(1, 'an integer'); at += 1; break;
        case 0xcd: case 0xd1: need(2, 'an integer'); at += 2; break;
        case 0xce: case 0xd2: need(4, 'an integer'); at += 4; break;
        case 0xcf: case 0xd3: need(8, 'an integer'); at += 8; break;
        case 0xdc: need(2, 'an array length'); container = { isMap: false, count: view.getUint16(at) }; at += 2; break;
        case 0xdd: need(4, 'an array length'); container = { isMap: false, count: view.getUint32(at) }; at += 4; break;
        case 0xde: need(2, 'a map length'); container = { isMap: true, count: view.getUint16(at) }; at += 2; break;
        case 0xdf: need(4, 'a map length'); container = { isMap: true, count: view.getUint32(at) }; at += 4; break;
        case 0xc1:
          throw malformed(`byte ${start} is 0xc1, which MessagePack never uses`);
        default:
          // 0xc7–0xc9 ext, 0xd4–0xd8 fixext
          throw malformed(`byte ${start} starts an extension type (0x${head.toString(16)}), which requests do not use`);
      }
    }
    if (length >= 0) {
      need(length, isString ? 'a string' : 'a bin');
      if (isKey) {
        const key = isString ? Buffer.from(body.buffer, body.byteOffset + at, length).toString('utf8') : undefined;
        top!.key = key;
        if (key === '__proto__') throw forbiddenProblem({ path: pathOf(stack, []), key: '__proto__' });
        if (key === 'prototype' && stack.length >= 2) {
          const parent = stack[stack.length - 2]!;
          if (parent.isMap && parent.key === 'constructor') {
            throw forbiddenProblem({ path: pathOf(stack.slice(0, -1), ['prototype']), key: 'constructor.prototype' });
          }
        }
      }
      at += length;
    } else if (isKey) {
      top!.key = undefined;
    }
    if (container !== undefined) {
      const count = container.isMap ? 2 * container.count : container.count;
      items += container.count;
      if (items > maxItems) {
        throw new BodyProblem(
          413,
          'limit_exceeded',
          `The request body holds more than ${maxItems} array elements and map members (BODY_MAX_ITEMS): send large arrays as {"dtype": "float64", "shape": [...], "data": <bin>}`,
        );
      }
      // Every item takes a byte at least: a count the bytes cannot hold is refused before anything is built.
      if (count > end - at) throw malformed(`the ${container.isMap ? 'map' : 'array'} at byte ${start} declares ${container.count} items, but ${end - at} bytes remain (truncated?)`);
      if (count > 0) {
        if (stack.length >= maxDepth) {
          throw new BodyProblem(413, 'limit_exceeded', `The request body nests arrays and maps more than ${maxDepth} deep`);
        }
        stack.push({ isMap: container.isMap, remaining: count, size: count, key: undefined });
        continue;
      }
    }
    // Close every container this item completed.
    while (stack.length > 0 && stack[stack.length - 1]!.remaining === 0) stack.pop();
    if (stack.length === 0) break;
  }
  if (at !== end) throw malformed(`${end - at} bytes follow the end of its value at byte ${at}`);
}

/**
 * Parses a MessagePack request body (its structure checked first: `scanMsgpack`), or throws the
 * BodyProblem that says what is wrong with it.
 */
export function parseMsgpackBuffer(body: Uint8Array, maxItems = Infinity): unknown {
  if (body.byteLength === 0) throw new BodyProblem(400, 'invalid_msgpack', 'The request body is empty, but its content type is MessagePack');
  const items = Number.isFinite(maxItems) ? maxItems : 0xffffffff;
  scanMsgpack(body, items);
  const decoder = new Decoder({
    maxStrLength: body.byteLength,
    maxBinLength: body.byteLength,
    maxArrayLength: items,
    maxMapLength: items,
    maxExtLength: 0,
  });
  try {
    return decoder.decode(body);
  } catch (error) {
    // The scan accepted it: the decoder's own refusal (an invalid UTF-8 string, a key that is not a string or number).
    throw malformed(error instanceof Error ? error.message : String(error));
  }
}

/** A tensor's bin read from a body, its bytes copied into its elements. */
export interface BinaryArray {
  dtype: 'float64';
  shape: number[];
  data: Float64Array;
}

/**
 * Replaces the bin `data` of every encoded array in `value` by its elements (a Float64Array, the
 * bytes copied: a bin inside the body is seldom 8-byte aligned), and lists those arrays. One the
 * request layer would refuse (a length that does not match its shape, more than `maxElements`
 * elements, another key) is left as it is, for the request layer to refuse with its code and path.
 * Iterative, linear in the document.
 */
export function decodeBinaryArrays(value: unknown, maxElements: number): BinaryArray[] {
  const decoded: BinaryArray[] = [];
  const pending: unknown[] = [value];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (typeof node !== 'object' || node === null || node instanceof Uint8Array) continue;
    if (Array.isArray(node)) {
      for (const child of node) if (typeof child === 'object' && child !== null) pending.push(child);
      continue;
    }
    const record = node as Record<string, unknown>;
    const data = Object.hasOwn(record, 'data') ? record.data : undefined;
    if (data instanceof Uint8Array && record.dtype === 'float64') {
      let elements: Float64Array | undefined;
      try {
        elements = toTensor(record, [], maxElements).data;
      } catch {
        elements = undefined;
      }
      if (elements !== undefined) {
        record.data = elements;
        decoded.push(record as unknown as BinaryArray);
        continue;
      }
    }
    for (const key of Object.keys(record)) {
      const child = record[key];
      if (typeof child === 'object' && child !== null) pending.push(child);
    }
  }
  return decoded;
}
