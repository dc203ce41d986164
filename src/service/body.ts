// Request bodies: JSON only, without prototype-polluting keys; plain, gzip or brotli.
//
// Fastify's own JSON parser (secure-json-parse) refuses `__proto__` and `constructor.prototype`
// keys, but answers them like malformed JSON. This parser answers what is wrong: the JSON is
// valid, a key is not accepted (400 `validation_error`, with where). A compressed body
// (`Content-Encoding: gzip` or `br`) is decompressed as it arrives, and refused with 413 as soon as
// its decompressed bytes pass the body limit (a zip bomb costs at most that much memory); any
// other coding is refused with 415 before the body is read.

import { isAscii } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { formatPath, HttpProblem } from './problem.js';

const BYTE_ORDER_MARK = 0xfeff;
const MAX_PATH_LENGTH = 200;

/** Where, in a parsed JSON document, a key that could reach an object's prototype sits. */
export interface ForbiddenKey {
  path: string[];
  key: '__proto__' | 'constructor.prototype';
}

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
  if (body.length === 0) throw new HttpProblem(400, 'invalid_json', 'The request body is empty, but its content type is JSON');
  if (maxItems < Infinity && hasMoreCommas(body, maxItems)) {
    throw new HttpProblem(
      413,
      'limit_exceeded',
      `The request body holds more than ${maxItems} commas (array elements and object members; BODY_MAX_ITEMS): send large arrays as base64, {"dtype": "float64", "shape": [...], "data": "<base64>"}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new HttpProblem(400, 'invalid_json', 'The request body is not valid JSON');
  }
  if (!mayHoldForbiddenKey(body)) return value;
  const forbidden = findForbiddenKey(value);
  if (forbidden === undefined) return value;
  const message = `\`${forbidden.key}\` keys are not accepted`;
  const full = formatPath(forbidden.path);
  // A deeply nested key has a long path: its end says enough.
  const path = full.length > MAX_PATH_LENGTH ? `…${full.slice(-MAX_PATH_LENGTH)}` : full;
  const detail = `The request does not match the schema: ${message} (found at ${path}); rename or remove the key`;
  throw new HttpProblem(400, 'validation_error', detail, { errors: [{ path, message }] });
}

/** Whether the request carries a body (a non-zero Content-Length, or a chunked one). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The codings a request body may be sent in (RFC 7694: said in a 415's Accept-Encoding). */
const ACCEPTED_CODINGS = 'gzip, br, identity';

type BodyCoding = 'gzip' | 'br';

/**
 * The coding of the request's body that must be undone: `undefined` for none (no body, or only
 * `identity`); 415 for anything but one `gzip` (or its alias `x-gzip`) or `br`.
 */
function bodyCodingOf(request: FastifyRequest): BodyCoding | undefined {
  const header = request.headers['content-encoding'];
  if (header === undefined || !hasBody(request)) return undefined;
  const codings = header
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return undefined;
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return 'gzip';
  if (codings.length === 1 && codings[0] === 'br') return 'br';
  const named = header.length > 64 ? `${header.slice(0, 64)}…` : header;
  throw new HttpProblem(
    415,
    'unsupported_media_type',
    `Content-Encoding "${named}" is not supported: send the body as gzip, br or uncompressed (no Content-Encoding)`,
    {},
    { headers: { 'accept-encoding': ACCEPTED_CODINGS } },
  );
}

/**
 * The decompressed bytes of a body, passed on until they exceed `limit`: then the stream fails with
 * 413 and decompression stops. `receivedEncodedLength` (read by Fastify) counts the bytes as sent,
 * so that Content-Length is checked against them and they too are bounded by the limit.
 */
class BoundedBody extends Transform {
  receivedEncodedLength = 0;
  #decoded = 0;

  constructor(readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#decoded += chunk.length;
    if (this.#decoded > this.limit) {
      callback(new HttpProblem(413, 'limit_exceeded', `The request body is larger than the limit of ${this.limit} bytes once decompressed`));
      return;
    }
    callback(null, chunk);
  }
}

/** `payload` decompressed (`coding`), bounded to `limit` decompressed bytes. */
function decompressed(payload: Readable, coding: BodyCoding, limit: number): BoundedBody {
  const decoder = coding === 'gzip' ? createGunzip() : createBrotliDecompress();
  const body = new BoundedBody(limit);
  const stop = (): void => {
    payload.unpipe(decoder);
    decoder.destroy();
  };
  payload.on('data', (chunk: Buffer) => (body.receivedEncodedLength += chunk.length));
  // The client's connection is left alone (destroying it would lose the answer): only the
  // decompression stops; Node discards the rest of the body once the answer is sent.
  payload.on('error', (error) => {
    stop();
    body.destroy(error);
  });
  decoder.on('error', (error) => {
    stop();
    const which = coding === 'gzip' ? 'gzip' : 'brotli';
    body.destroy(new HttpProblem(400, 'bad_request', `The request body is not valid ${which} data, as its Content-Encoding says (${error.message})`));
  });
  body.on('error', stop);
  payload.pipe(decoder).pipe(body);
  return body;
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

/** Installs the JSON parser and the decoding of compressed bodies on `app`, before its routes. */
export function installBodyParsing(app: FastifyInstance, maxItems: number): void {
  app.removeContentTypeParser('application/json');
  // A callback parser: the body is parsed and handed on in the same turn (an async parser costs a
  // promise and a turn of the microtask queue per request). Read as bytes: a body of ASCII only (as
  // JSON with base64 arrays is) becomes a string by a plain copy, without UTF-8 decoding.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request: FastifyRequest, body: string | Buffer, done) => {
    let value: unknown;
    try {
      value = typeof body === 'string' ? parseJsonBody(body, maxItems) : parseJsonBuffer(body, maxItems);
    } catch (error) {
      done(error as Error, undefined);
      return;
    }
    done(null, value);
  });
  app.addHook('preParsing', async (request, _reply, payload) => {
    const coding = bodyCodingOf(request);
    if (coding === undefined) return payload;
    return decompressed(payload, coding, request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit ?? 1_048_576);
  });
}
