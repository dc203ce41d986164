// Answers in MessagePack, for a client whose Accept header prefers it (content negotiation).
//
// A request whose Accept lists a MessagePack type (application/msgpack, application/x-msgpack,
// application/vnd.msgpack) with a quality at least that of application/json (itself, application/*
// or */*) is answered in MessagePack: the same members as the JSON answer, every tensor of rank ≥ 1
// as {dtype: "float64", shape, data: <bin of its little-endian float64 bytes>} (the request's
// `encoding` is set to `msgpack` where the endpoint has one), scalars as float64 numbers (NaN and
// ±Infinity as they are). Problems stay application/problem+json whatever Accept says: they are
// small, rare, and readable by every client and log. Event streams are unaffected.

import { Encoder } from '@msgpack/msgpack';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const MSGPACK_CONTENT_TYPE = 'application/msgpack';
const MSGPACK_NAMES = new Set(['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack']);

/** Encodes an answer: `undefined` members left out, Uint8Arrays as bins, every other number as MessagePack writes it (integers as ints, the rest float64). */
const encoder = new Encoder({ ignoreUndefined: true, initialBufferSize: 64 * 1024 });

/** An answer's MessagePack bytes. */
export function msgpackBytes(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** The quality `accept` gives a media type among `names` (exact match, then `type/*`, then `*\/*`), 0 when none. */
function qualityOf(ranges: readonly { range: string; q: number }[], names: ReadonlySet<string>): number {
  let exact = -1;
  let wildcardType = -1;
  let any = -1;
  for (const { range, q } of ranges) {
    if (names.has(range)) exact = Math.max(exact, q);
    else if (range === 'application/*') wildcardType = Math.max(wildcardType, q);
    else if (range === '*/*') any = Math.max(any, q);
  }
  return exact >= 0 ? exact : wildcardType >= 0 ? wildcardType : any >= 0 ? any : 0;
}

const JSON_NAMES = new Set(['application/json']);

/** Whether an Accept header prefers MessagePack: a MessagePack type named, with a quality > 0 and not below JSON's. */
export function prefersMsgpack(accept: string | undefined): boolean {
  if (accept === undefined || !accept.includes('msgpack')) return false;
  const ranges = accept.slice(0, 1024).split(',').map((part) => {
    const [type = '', ...params] = part.split(';');
    let q = 1;
    for (const param of params) {
      const [name, value] = param.split('=').map((s) => s.trim());
      if (name?.toLowerCase() === 'q' && value !== undefined) {
        const parsed = Number(value);
        q = Number.isFinite(parsed) ? Math.min(Math.max(parsed, 0), 1) : 0;
      }
    }
    return { range: type.trim().toLowerCase(), q };
  });
  let msgpack = -1;
  for (const { range, q } of ranges) if (MSGPACK_NAMES.has(range)) msgpack = Math.max(msgpack, q);
  if (msgpack <= 0) return false;
  return msgpack >= qualityOf(ranges, JSON_NAMES);
}

/** Whether a route's body schema has an `encoding` member (a Zod object's shape). */
function hasEncoding(request: FastifyRequest): boolean {
  const body = request.routeOptions.schema?.body as { shape?: Record<string, unknown> } | undefined;
  return typeof body === 'object' && body !== null && typeof body.shape === 'object' && body.shape !== null && 'encoding' in body.shape;
}

/** The answers `serializeMsgpack` wrote: these, and only these, are sent as application/msgpack. */
const written = new WeakSet<Buffer>();

/** Serialises an object answer as MessagePack; a string (a problem, already final) passes as it is. */
function serializeMsgpack(payload: unknown): string | Buffer {
  if (typeof payload === 'string') return payload;
  const bytes = msgpackBytes(payload);
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  written.add(buffer);
  return buffer;
}

/** Answers requests that prefer MessagePack in MessagePack (see the top of this file). */
export function installMsgpackAnswers(app: FastifyInstance): void {
  app.addHook('preHandler', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const accept = request.headers.accept;
    if (prefersMsgpack(accept)) {
      // Only object answers go through the serializer: bytes a route sends as they are (an answer a
      // worker serialised, a job's stored answer) keep the type the route gives them.
      // Fastify sends a Buffer a serializer returns as it is (its type says string only).
      reply.serializer(serializeMsgpack as (payload: unknown) => string);
      const body = request.body;
      if (typeof body === 'object' && body !== null && !Array.isArray(body) && hasEncoding(request)) {
        (body as { encoding?: string }).encoding = 'msgpack';
      }
    }
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (Buffer.isBuffer(payload) && written.has(payload)) reply.header('content-type', MSGPACK_CONTENT_TYPE);
    done(null, payload);
  });
}
