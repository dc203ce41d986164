// Request bodies: JSON or MessagePack (application/msgpack: src/service/msgpack-decode.ts), without prototype-polluting keys; plain, gzip or brotli; large ones
// parsed off the event loop, and all of them together bounded in bytes.
//
// Fastify's own JSON parser (secure-json-parse) refuses `__proto__` and `constructor.prototype`
// keys, but answers them like malformed JSON. This parser answers what is wrong: the JSON is
// valid, a key is not accepted (400 `validation_error`, with where). A compressed body
// (`Content-Encoding: gzip` or `br`) is decompressed as it arrives (zlib works on libuv's thread
// pool), and refused with 413 as soon as its decompressed bytes pass the body limit (a zip bomb
// costs at most that much memory); any other coding is refused with 415 before the body is read.
//
// The event loop only collects a body's bytes. A body of BODY_WORKER_THRESHOLD_BYTES or more is
// parsed on a body worker thread, which also decodes its encoded arrays' base64 into Float64Arrays
// and moves their memory back (src/service/body-decode.ts, body-worker.ts): parsing and decoding
// 42.7 MB costs hundreds of milliseconds. The bytes of all bodies being received or handled are
// bounded by BODY_MAX_INFLIGHT_BYTES, counted as they arrive (decompressed): past it a large body
// is refused with 503 and Retry-After, so that a burst of large or compressed bodies (64 gzip
// bombs at once) holds a bounded amount of memory rather than BODY_LIMIT each.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';
import { Piscina } from 'piscina';
import {
  BodyProblem,
  parseJsonBody as parseBodyText,
  parseJsonBuffer as parseBodyBuffer,
  type BodyAnswer,
  type BodyTask,
  type DecodedArray,
  type Lifting,
} from './body-decode.js';
import { decodeBinaryArrays, parseMsgpackBuffer } from './msgpack-decode.js';
import { HttpProblem } from './problem.js';
import { bodyArrays } from './request.js';

export { findForbiddenKey, type Lifting } from './body-decode.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Request bodies: the bytes held by those in flight, and how many were parsed on a body worker. */
    bodies: { budget: BodyBudget; parsedOnWorkers: () => number };
  }
}

/** The problem a body parser found, as the service answers it. */
function asHttpProblem(error: unknown): unknown {
  return error instanceof BodyProblem ? new HttpProblem(error.status, error.code, error.detail, error.extra) : error;
}

/**
 * Parses a JSON request body, or throws the problem that says what is wrong with it. A body with
 * more than `maxItems` commas (BODY_MAX_ITEMS) is refused with 413 before it is parsed.
 */
export function parseJsonBody(text: string, maxItems = Infinity): unknown {
  try {
    return parseBodyText(text, maxItems);
  } catch (error) {
    throw asHttpProblem(error);
  }
}

/** Parses a JSON body given as bytes (a large body's long base64 strings lifted out first: body-decode.ts). */
export function parseJsonBuffer(body: Buffer, maxItems = Infinity, lifting?: Lifting): unknown {
  try {
    return parseBodyBuffer(body, maxItems, lifting);
  } catch (error) {
    throw asHttpProblem(error);
  }
}

/** The media types of a MessagePack body (the registered one first, then the older names still sent). */
export const MSGPACK_TYPES = ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack'] as const;

/**
 * Parses a MessagePack body here (src/service/msgpack-decode.ts), its tensors' bins read into
 * Float64Arrays as a body worker reads them; or throws the problem that says what is wrong with it.
 */
export function parseMsgpackBody(body: Uint8Array, maxItems = Infinity, maxTensorElements = Infinity): unknown {
  try {
    const value = parseMsgpackBuffer(body, maxItems);
    for (const array of decodeBinaryArrays(value, maxTensorElements)) adoptDecoded(array);
    return value;
  } catch (error) {
    throw asHttpProblem(error);
  }
}

/** A body's decoded array made the request's own: written back as base64 by JSON.stringify, movable to a worker. */
function adoptDecoded(array: DecodedArray): void {
  Object.defineProperty(array, 'toJSON', { value: encodedArrayJson, enumerable: false, configurable: true, writable: true });
  bodyArrays.add(array.data);
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

/** A body of fewer bytes than this is never refused by BODY_MAX_INFLIGHT_BYTES (nor counted, when its Content-Length says so). */
const SMALL_BODY_BYTES = 64 * 1024;

/** The bytes of request bodies being received or handled, bounded in all (BODY_MAX_INFLIGHT_BYTES; 0: unbounded). */
export class BodyBudget {
  #held = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes held now by the bodies of requests not yet answered. */
  get held(): number {
    return this.#held;
  }

  /** A request's share: what its body holds is given back when its response closes (answered, or its connection lost). */
  open(response: ServerResponse): BodyShare {
    const share = new BodyShare(this);
    response.once('close', () => share.close());
    return share;
  }

  /** @internal */
  add(bytes: number): void {
    this.#held += bytes;
  }
}

/** One request's bytes in a BodyBudget. */
export class BodyShare {
  #held = 0;
  #closed = false;

  constructor(private readonly budget: BodyBudget) {}

  /**
   * Counts `bytes` more of this body, or answers the 503 that refuses it: when the budget would be
   * exceeded, by a body past SMALL_BODY_BYTES, while other bodies hold bytes (a body alone is
   * always taken, so a budget below BODY_LIMIT still admits one body at a time).
   */
  take(bytes: number): HttpProblem | undefined {
    if (this.#closed) return undefined;
    const { maxBytes, held } = this.budget;
    if (maxBytes > 0 && this.#held + bytes > SMALL_BODY_BYTES && held > this.#held && held + bytes > maxBytes) {
      return new HttpProblem(
        503,
        'overloaded',
        `Request bodies being received and handled already hold ${held} bytes, and this one would pass the server's limit of ${maxBytes} (BODY_MAX_INFLIGHT_BYTES): send it again shortly`,
        {},
        { headers: { 'retry-after': '2' } },
      );
    }
    this.#held += bytes;
    this.budget.add(bytes);
    return undefined;
  }

  close(): void {
    this.#closed = true;
    this.budget.add(-this.#held);
    this.#held = 0;
  }
}

/**
 * The decompressed bytes of a body, passed on and counted: the stream fails with 413 once they
 * exceed `limit` (decompression stops), or with 503 once the bodies in flight would pass their
 * budget. `receivedEncodedLength` (read by Fastify) counts the bytes as sent, so that
 * Content-Length is checked against them and they too are bounded by the limit.
 */
class BoundedBody extends Transform {
  receivedEncodedLength = 0;
  #decoded = 0;

  constructor(
    readonly limit: number,
    private readonly share: BodyShare,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#decoded += chunk.length;
    if (this.#decoded > this.limit) {
      callback(new HttpProblem(413, 'limit_exceeded', `The request body is larger than the limit of ${this.limit} bytes once decompressed`));
      return;
    }
    callback(this.share.take(chunk.length) ?? null, chunk);
  }
}

/** `payload` decompressed (`coding`), bounded to `limit` decompressed bytes and counted against its share. */
function decompressed(payload: Readable, coding: BodyCoding, limit: number, share: BodyShare): BoundedBody {
  // 64 KiB pieces (zlib's default is 16 KiB): a quarter of the event loop's turns per byte.
  const options = { chunkSize: 64 * 1024 };
  const decoder = coding === 'gzip' ? createGunzip(options) : createBrotliDecompress(options);
  const body = new BoundedBody(limit, share);
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

/** Whether a body must be counted: it is compressed, chunked, or declares SMALL_BODY_BYTES or more. */
function isCounted(request: FastifyRequest, coding: BodyCoding | undefined): boolean {
  if (coding !== undefined || request.headers['transfer-encoding'] !== undefined) return true;
  return Number(request.headers['content-length'] ?? 0) >= SMALL_BODY_BYTES;
}

const inTypeScript = import.meta.url.endsWith('.ts');

/** A decoded array written back as the client sent it (`JSON.stringify` of a request: a job's stored body, a cache key). */
function encodedArrayJson(this: DecodedArray): { dtype: 'float64'; shape: number[]; data: string } {
  const { data } = this;
  return { dtype: this.dtype, shape: this.shape, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
}

/** The pool of threads that parse large bodies (a small one of its own: a body never waits behind a computation). */
export class BodyWorkers {
  readonly #pool: Piscina;
  readonly #heapMb: number;
  /** Bodies parsed so far (answered, or refused with their problem). */
  parsed = 0;

  constructor(options: { threads: number; nice: number; heapMb: number }) {
    this.#heapMb = options.heapMb;
    this.#pool = new Piscina({
      filename: new URL(`./body-worker.${inTypeScript ? 'ts' : 'js'}`, import.meta.url).href,
      // Started by the first large body, stopped 5 s after the last: a thread that has parsed large
      // bodies holds their garbage (an idle isolate is not collected), given back when it stops.
      minThreads: 0,
      maxThreads: options.threads,
      idleTimeout: 5_000,
      workerData: { nice: options.nice },
      resourceLimits: { maxOldGenerationSizeMb: options.heapMb },
      execArgv: inTypeScript ? ['--import', 'tsx'] : [],
    });
    // A thread that dies is replaced by the pool; its task's promise rejects on its own.
    this.#pool.on('error', () => undefined);
  }

  /**
   * The parsed body, or the problem with it (the same as parsing it here gives). Its bytes, as they
   * arrived, move to the worker (which joins them: a copy of megabytes is slow to make on a VM); the
   * elements of its long encoded arrays come back moved, as Float64Arrays that the request layer
   * reads without a copy and may move on to a compute worker (`bodyArrays`).
   */
  async parse(received: readonly Buffer[], limits: Omit<BodyTask, 'chunks'>): Promise<unknown> {
    // Only memory of its own can be moved: a chunk that shares its memory (with another chunk,
    // another request, or a pool) is copied, as Buffer.concat would have copied it.
    const chunks = received.map((chunk) => (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : new Uint8Array(chunk)));
    const transferList = chunks.map((chunk) => chunk.buffer as ArrayBuffer);
    let answer: BodyAnswer;
    try {
      answer = (await this.#pool.run({ ...limits, chunks } satisfies BodyTask, { transferList })) as BodyAnswer;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'ERR_WORKER_OUT_OF_MEMORY' || (error instanceof Error && /out of memory/i.test(error.message))) {
        throw new HttpProblem(503, 'out_of_memory', `parsing the request body ran out of memory on its worker (WORKER_HEAP_MB = ${this.#heapMb}): send a smaller body`, {}, {
          headers: { 'retry-after': '5' },
        });
      }
      throw error;
    }
    this.parsed++;
    if (!answer.ok) throw new HttpProblem(answer.problem.status, answer.problem.code, answer.problem.detail, answer.problem.extra);
    for (const array of answer.decoded) adoptDecoded(array);
    return answer.value;
  }

  close(): Promise<void> {
    return this.#pool.destroy();
  }
}

/**
 * Collects a body's chunks, as Fastify's own reading does (src: fastify/lib/content-type-parser.js
 * rawBody), with its errors: 413 before reading when Content-Length passes `limit`, 413 once the
 * bytes do, 400 when they end short of Content-Length or the stream fails; and, given its `share`
 * of the budget (a body as sent), 503 once the bodies in flight would pass it.
 */
function collectBody(
  request: FastifyRequest,
  payload: Readable & { receivedEncodedLength?: number },
  limit: number,
  share: BodyShare | undefined,
  then: (error: Error | undefined, chunks: Buffer[], length: number) => void,
): void {
  const contentLength = Number(request.headers['content-length']);
  if (contentLength > limit) {
    then(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), [], 0);
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  const stop = (): void => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onEnd);
  };
  function onData(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    received += bytes.length;
    if (received > limit || (payload.receivedEncodedLength ?? 0) > limit) {
      stop();
      then(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), [], 0);
      return;
    }
    const refused = share?.take(bytes.length);
    if (refused !== undefined) {
      stop();
      then(refused, [], 0);
      return;
    }
    chunks.push(bytes);
  }
  function onEnd(error?: Error & { statusCode?: number }): void {
    stop();
    if (error != null) {
      if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400;
      then(error, [], 0);
      return;
    }
    if (!Number.isNaN(contentLength) && (payload.receivedEncodedLength || received) !== contentLength) {
      then(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH(), [], 0);
      return;
    }
    then(undefined, chunks, received);
  }
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onEnd);
  payload.resume();
}

export interface BodyParsingOptions {
  /** BODY_MAX_ITEMS: commas a JSON body may hold. */
  maxItems: number;
  /** BODY_WORKER_THRESHOLD_BYTES: bodies of this many bytes or more are parsed on a body worker (when there is one). */
  workerThresholdBytes?: number;
  /** BODY_MAX_INFLIGHT_BYTES: bytes all bodies being received or handled may hold (0: unbounded). */
  maxInflightBytes?: number;
  /** MAX_TENSOR_ELEMENTS: larger encoded arrays are left for the request layer to refuse. */
  maxTensorElements?: number;
  /** Threads that parse large bodies (0: every body is parsed on the event loop). */
  workers?: number;
  /** The body threads' nice value (WORKER_NICE) and heap (WORKER_HEAP_MB). */
  workerNice?: number;
  workerHeapMb?: number;
}

/** Installs the JSON parser, the decoding of compressed bodies and the bound on bodies in flight on `app`, before its routes. */
export function installBodyParsing(app: FastifyInstance, options: BodyParsingOptions): void {
  const { maxItems, workerThresholdBytes = 1 << 20, maxTensorElements = Infinity } = options;
  const budget = new BodyBudget(options.maxInflightBytes ?? 0);
  /** The shares of bodies sent uncompressed, counted by the parser as it collects them. */
  const shares = new WeakMap<IncomingMessage, BodyShare>();
  const threads = Math.min(options.workers ?? 0, 2);
  const workers = threads > 0 ? new BodyWorkers({ threads, nice: options.workerNice ?? 10, heapMb: options.workerHeapMb ?? 768 }) : undefined;
  if (workers !== undefined) app.addHook('onClose', () => workers.close());
  app.decorate('bodies', { budget, parsedOnWorkers: () => workers?.parsed ?? 0 });
  app.removeContentTypeParser('application/json');
  // The body is collected here as it arrives (its chunks, as Fastify's own reading does, with the
  // same errors), then parsed: a small one here, in the same turn; a large one on a worker.
  const parserOf = (format: 'json' | 'msgpack') => (request: FastifyRequest, payload: Readable, done: (error: Error | null, body?: unknown) => void) => {
    const limit = request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit ?? 1_048_576;
    collectBody(request, payload, limit, shares.get(request.raw), (error, chunks, length) => {
      if (error !== undefined) {
        done(error, undefined);
        return;
      }
      if (workers !== undefined && length >= workerThresholdBytes) {
        workers.parse(chunks, { maxItems, maxTensorElements, format }).then(
          (value) => done(null, value),
          (failure: Error) => done(failure, undefined),
        );
        return;
      }
      let value: unknown;
      try {
        // Read as bytes: a body of ASCII only (as JSON with base64 arrays is) becomes a string by a
        // plain copy, without UTF-8 decoding.
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
        value = format === 'json' ? parseJsonBuffer(bytes, maxItems) : parseMsgpackBody(bytes, maxItems, maxTensorElements);
      } catch (failure) {
        done(failure as Error, undefined);
        return;
      }
      done(null, value);
    });
  };
  app.addContentTypeParser('application/json', parserOf('json'));
  app.addContentTypeParser([...MSGPACK_TYPES], parserOf('msgpack'));
  app.addHook('preParsing', async (request, reply, payload) => {
    const coding = bodyCodingOf(request);
    if (!isCounted(request, coding)) return payload;
    const limit = request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit ?? 1_048_576;
    const share = budget.open(reply.raw);
    if (coding !== undefined) return decompressed(payload, coding, limit, share);
    // A body as sent is counted as it is collected (collectBody): no stream in between.
    shares.set(request.raw, share);
    return payload;
  });
}
