// Request bodies as bytes -> values, with nothing of HTTP or Fastify: JSON parsed without
// prototype-polluting keys, BODY_MAX_ITEMS counted before parsing, long base64 strings lifted out,
// and (for bodies read on a worker thread) the long data strings of encoded arrays decoded into
// Float64Arrays there, so the event loop receives their memory moved. Imported by the event loop
// (src/service/body.ts) and by the body worker (src/service/body-worker.ts): it stays light (no
// engine kernels, no Fastify), so that a body worker loads in milliseconds.

import { isAscii } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { toTensor } from '../engine/values.js';
import { BodyProblem, type BodyProblemCode, type ForbiddenKey } from './body-problem.js';
import { decodeBinaryArrays, parseMsgpackBuffer } from './msgpack-decode.js';

export { BodyProblem, type BodyProblemCode, type ForbiddenKey } from './body-problem.js';

const BYTE_ORDER_MARK = 0xfeff;
const MAX_PATH_LENGTH = 200;

/** A node of the walk: a value, and how it was reached (kept as links, so that a path is built only once found). */
interface Visit {
  value: object;
  key: string;
  parent: Visit | undefined;
}

function pathOf(visit: Visit | undefined, ...tail: string[]): string[] {
  const keys: string[] = [];
  for (let at = visit; at?.parent !== undefined; at = at.parent) keys.push(at.key);
  return [...keys.reverse(), ...tail];
}

/**
 * The first `__proto__` key, or `constructor` key holding a `prototype` key, of a parsed JSON
 * value (JSON.parse keeps both as own data properties); `undefined` if there is none. Iterative and
 * linear in the size of the document, however deeply it nests.
 */
export function findForbiddenKey(value: unknown): ForbiddenKey | undefined {
  const pending: Visit[] = [];
  if (typeof value === 'object' && value !== null) pending.push({ value, key: '', parent: undefined });
  for (let visit = pending.pop(); visit !== undefined; visit = pending.pop()) {
    const node = visit.value;
    if (Array.isArray(node)) {
      for (let index = 0; index < node.length; index++) {
        const child: unknown = node[index];
        if (typeof child === 'object' && child !== null) pending.push({ value: child, key: String(index), parent: visit });
      }
      continue;
    }
    if (Object.hasOwn(node, '__proto__')) return { path: pathOf(visit, '__proto__'), key: '__proto__' };
    const record = node as Record<string, unknown>;
    const ctor = Object.hasOwn(node, 'constructor') ? record.constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) {
      return { path: pathOf(visit, 'constructor', 'prototype'), key: 'constructor.prototype' };
    }
    for (const key of Object.keys(node)) {
      const child = record[key];
      if (typeof child === 'object' && child !== null) pending.push({ value: child, key, parent: visit });
    }
  }
  return undefined;
}

/** Whether `text` may hold a forbidden key: only then is the parsed document walked. */
function mayHoldForbiddenKey(text: string): boolean {
  // A key may be spelled with escapes ("\u005f_proto__"); any escape sends the document to the walk.
  return text.includes('__proto__') || text.includes('constructor') || text.includes('\\u');
}

/**
 * Whether `text` holds more than `most` commas. Each comma separates two array elements or object
 * members, so this bounds what JSON.parse would build: a large body must carry its arrays as base64
 * (a few long strings, parsed at the speed of a copy), not as millions of numbers. Counting stops
 * at the limit, and a body of long strings has few commas to find.
 */
function hasMoreCommas(text: string, most: number): boolean {
  let count = 0;
  for (let at = text.indexOf(','); at >= 0; at = text.indexOf(',', at + 1)) {
    if (++count > most) return true;
  }
  return false;
}

/**
 * Parses a JSON request body, or throws the problem that says what is wrong with it. A body with
 * more than `maxItems` commas (BODY_MAX_ITEMS) is refused with 413 before it is parsed.
 */
export function parseJsonBody(text: string, maxItems = Infinity): unknown {
  const body = text.charCodeAt(0) === BYTE_ORDER_MARK ? text.slice(1) : text;
  if (body.length === 0) throw new BodyProblem(400, 'invalid_json', 'The request body is empty, but its content type is JSON');
  if (maxItems < Infinity && hasMoreCommas(body, maxItems)) {
    throw new BodyProblem(
      413,
      'limit_exceeded',
      `The request body holds more than ${maxItems} commas (array elements and object members; BODY_MAX_ITEMS): send large arrays as base64, {"dtype": "float64", "shape": [...], "data": "<base64>"}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new BodyProblem(400, 'invalid_json', 'The request body is not valid JSON');
  }
  if (!mayHoldForbiddenKey(body)) return value;
  const forbidden = findForbiddenKey(value);
  if (forbidden === undefined) return value;
  const message = `\`${forbidden.key}\` keys are not accepted`;
  // Dotted, as the service writes every path (problem.ts formatPath).
  const full = forbidden.path.join('.');
  // A deeply nested key has a long path: its end says enough.
  const path = full.length > MAX_PATH_LENGTH ? `…${full.slice(-MAX_PATH_LENGTH)}` : full;
  const detail = `The request does not match the schema: ${message} (found at ${path}); rename or remove the key`;
  throw new BodyProblem(400, 'validation_error', detail, { errors: [{ path, message }] });
}

/** The body's text: as Latin-1 when every byte is ASCII (the same characters, decoded faster), else as UTF-8. */
function bodyText(body: Buffer): string {
  return isAscii(body) ? body.toString('latin1') : body.toString('utf8');
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const UTF8_BYTE_ORDER_MARK = [0xef, 0xbb, 0xbf];
/** A character other than base64's (padding included): a string without any needs no JSON unescaping. */
const NOT_BASE64 = /[^A-Za-z0-9+/=]/;

/** When a body's long strings are lifted out before JSON.parse (`parseJsonBuffer`). */
export interface Lifting {
  /** Bodies of fewer bytes are parsed whole. */
  minBodyBytes: number;
  /** Strings of fewer bytes stay in place. */
  minStringBytes: number;
}

const LIFTING: Lifting = { minBodyBytes: 1 << 20, minStringBytes: 1 << 16 };

/** The index of the quote that closes the JSON string opened at `open`, or -1. */
function closingQuote(body: Buffer, open: number): number {
  for (let at = body.indexOf(QUOTE, open + 1); at >= 0; at = body.indexOf(QUOTE, at + 1)) {
    let backslashes = 0;
    while (body[at - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
  return -1;
}

/** Whether the string closed at `close` is an object's key (a colon follows it). */
function isKey(body: Buffer, close: number): boolean {
  let at = close + 1;
  while (body[at] === 0x20 || body[at] === 0x0a || body[at] === 0x0d || body[at] === 0x09) at++;
  return body[at] === COLON;
}

/**
 * Parses a JSON body given as bytes. A large body's long string values of base64 text (the data of
 * encoded arrays) are lifted out first: JSON.parse reads the rest with a short stand-in for each,
 * and the stand-ins are then replaced by the strings, read from the bytes by a plain copy. Such a
 * string is the same text either way (base64 needs no unescaping), so the value is the one
 * JSON.parse gives for the whole body; what is saved is JSON.parse's scan of megabytes of base64.
 * The quotes are found by `indexOf` hops, outside strings JSON has no others; a stand-in holds a
 * random nonce, so no string of the request can pass for one.
 */
export function parseJsonBuffer(body: Buffer, maxItems = Infinity, lifting: Lifting = LIFTING): unknown {
  const start = UTF8_BYTE_ORDER_MARK.every((byte, i) => body[i] === byte) ? 3 : 0;
  if (body.length < lifting.minBodyBytes) return parseJsonBody(bodyText(body.subarray(start)), maxItems);
  // No escape in the stand-in: an escape would send the rest to the forbidden-key walk.
  const tag = `lifted-${randomBytes(8).toString('hex')}:`;
  const pieces: string[] = [];
  const lifted: string[] = [];
  let copied = start;
  for (let open = body.indexOf(QUOTE, start); open >= 0; open = body.indexOf(QUOTE, open + 1)) {
    const close = closingQuote(body, open);
    if (close < 0) break; // malformed: JSON.parse says so below
    if (close - open - 1 >= lifting.minStringBytes && !isKey(body, close)) {
      const text = body.toString('latin1', open + 1, close);
      if (text.search(NOT_BASE64) < 0) {
        pieces.push(bodyText(body.subarray(copied, open)), `"${tag}${lifted.length}"`);
        lifted.push(text);
        copied = close + 1;
      }
    }
    open = close;
  }
  if (lifted.length === 0) return parseJsonBody(bodyText(body.subarray(start)), maxItems);
  pieces.push(bodyText(body.subarray(copied)));
  const value = parseJsonBody(pieces.join(''), maxItems);
  return restoreLifted(value, tag, lifted);
}

/** `value` with every stand-in (`prefix` and an index) replaced by the lifted string it stands for. */
function restoreLifted(value: unknown, prefix: string, lifted: readonly string[]): unknown {
  const isStandIn = (item: unknown): item is string => typeof item === 'string' && item.startsWith(prefix);
  const pending: unknown[] = [value];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const child: unknown = node[i];
        if (typeof child === 'object' && child !== null) pending.push(child);
        else if (isStandIn(child)) node[i] = lifted[Number(child.slice(prefix.length))];
      }
      continue;
    }
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const child = record[key];
      if (typeof child === 'object' && child !== null) pending.push(child);
      else if (isStandIn(child)) record[key] = lifted[Number(child.slice(prefix.length))];
    }
  }
  return isStandIn(value) ? lifted[Number(value.slice(prefix.length))] : value;
}


/** Encoded arrays whose base64 text has at least this many characters are decoded where the body is parsed. */
const MIN_DECODED_CHARACTERS = 1 << 16;

/** An encoded array read from a body, its base64 text replaced by its elements. */
export interface DecodedArray {
  dtype: 'float64';
  shape: number[];
  data: Float64Array;
}

/**
 * The elements of an encoded array, when its text is one the request layer would accept (the same
 * reader, src/engine/values.ts) and canonical base64 (re-encoding the elements gives the same text
 * back, so that `JSON.stringify` of the request can write it unchanged); else `undefined`.
 */
function elementsOf(record: Record<string, unknown>, data: string, maxElements: number): Float64Array | undefined {
  let elements: Float64Array;
  try {
    elements = toTensor(record, [], maxElements).data;
  } catch {
    return undefined;
  }
  // Node's decoder ignores the unused bits of the last character: only the last quantum can differ.
  const last = data.slice(-4);
  return Buffer.from(last, 'base64').toString('base64') === last ? elements : undefined;
}

/**
 * Replaces the long base64 text (`minCharacters` and more) of every encoded array in `value` by its
 * elements, a Float64Array, and lists those arrays. One whose text is not accepted (a bad
 * character, a length that does not match its shape, more than `maxElements` elements, another
 * key) is left as it is: the request layer reads it later and refuses it with the same code, at
 * the same path, as it does a body parsed on the event loop. Iterative, linear in the document.
 */
export function decodeEncodedArrays(value: unknown, maxElements: number, minCharacters = MIN_DECODED_CHARACTERS): DecodedArray[] {
  const decoded: DecodedArray[] = [];
  const pending: unknown[] = [value];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      for (const child of node) if (typeof child === 'object' && child !== null) pending.push(child);
      continue;
    }
    const record = node as Record<string, unknown>;
    const data = Object.hasOwn(record, 'data') ? record.data : undefined;
    if (typeof data === 'string' && data.length >= minCharacters && record.dtype === 'float64') {
      const elements = elementsOf(record, data, maxElements);
      if (elements !== undefined) {
        record.data = elements;
        decoded.push(record as unknown as DecodedArray);
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

/** What the body worker is asked: a body's bytes (moved to it) and the limits its parse is held to. */
export interface BodyTask {
  /** The body's bytes as they arrived, in order. */
  chunks: Uint8Array[];
  /** BODY_MAX_ITEMS */
  maxItems: number;
  /** MAX_TENSOR_ELEMENTS: a larger encoded array is left for the request layer to refuse. */
  maxTensorElements: number;
  /** The body's content type: JSON (the default) or MessagePack (src/service/msgpack-decode.ts). */
  format?: 'json' | 'msgpack';
}

/** What the body worker answers: the parsed body, or the problem with it (as data: errors do not cross threads intact). */
export type BodyAnswer =
  | { ok: true; value: unknown; decoded: DecodedArray[] }
  | { ok: false; problem: { status: number; code: BodyProblemCode; detail: string; extra: Record<string, unknown> } };

/** A body's bytes parsed and its long encoded arrays decoded: the body worker's whole task. */
export function decodeBody(task: BodyTask): BodyAnswer {
  try {
    const bytes = Buffer.concat(task.chunks);
    if (task.format === 'msgpack') {
      const value = parseMsgpackBuffer(bytes, task.maxItems);
      return { ok: true, value, decoded: decodeBinaryArrays(value, task.maxTensorElements) };
    }
    const value = parseJsonBuffer(bytes, task.maxItems);
    return { ok: true, value, decoded: decodeEncodedArrays(value, task.maxTensorElements) };
  } catch (error) {
    if (!(error instanceof BodyProblem)) throw error;
    const { status, code, detail, extra } = error;
    return { ok: false, problem: { status, code, detail, extra } };
  }
}
