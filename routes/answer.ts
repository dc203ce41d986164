// Sending an answer: an object goes through the route's response serializer; an answer a worker
// already serialised (a large one, built off the event loop) is sent as its bytes. Large bytes are
// written as slices of the one Buffer (never copied), each after the socket has taken the one
// before: a client that reads slowly holds one slice in the socket's queue, and its progress is
// seen slice by slice (@fastify/compress, when the client asks for it, compresses the slices as a
// stream, with the same backpressure, off the event loop).
//
// A client that stops reading would hold its answer's bytes for as long as its connection lasts:
// `guardWrites` closes the connection of any answer that makes no progress for WRITE_TIMEOUT_MS.
// Event streams (`EventStream`) write only once the socket has taken what was written before.

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { SerializedAnswer, type Answer } from '../src/service/compute.js';
import { MSGPACK_CONTENT_TYPE } from '../src/service/msgpack-answer.js';

/** Bytes written to a socket at a time, from a large answer: the granularity at which progress is seen. */
const SLICE_BYTES = 64 * 1024;
/** Answers from this size on are written in slices. */
const SLICED_ANSWER_BYTES = 1024 * 1024;

/** Slices of `bytes` (views of the same memory), in order. */
function* slices(bytes: Buffer): Generator<Buffer> {
  for (let at = 0; at < bytes.byteLength; at += SLICE_BYTES) yield bytes.subarray(at, at + SLICE_BYTES);
}

/** Sends `bytes` as they are; a large answer as a stream of its slices (Fastify pipes it: backpressure). */
export function sendBytes(reply: FastifyReply, bytes: Buffer): FastifyReply {
  if (bytes.byteLength < SLICED_ANSWER_BYTES) return reply.send(bytes);
  reply.header('content-length', bytes.byteLength);
  return reply.send(Readable.from(slices(bytes), { objectMode: false }));
}

export function sendAnswer(reply: FastifyReply, answer: Answer): unknown {
  if (!(answer instanceof SerializedAnswer)) return answer;
  const { json } = answer;
  // Bytes skip the serializer: the worker's JSON (or MessagePack, when the request prefers it) is final.
  reply.type(answer.format === 'msgpack' ? MSGPACK_CONTENT_TYPE : 'application/json; charset=utf-8');
  return sendBytes(reply, Buffer.from(json.buffer, json.byteOffset, json.byteLength));
}

/** Answers smaller than this fit in a socket's buffers: a client that never reads them holds nothing of ours. */
export const GUARDED_ANSWER_BYTES = 64 * 1024;

/** Connections closed because their client read nothing of an answer for the write timeout (for /metrics and tests). */
export const writeTimeouts = { count: 0 };

/** Bytes whose writes to `socket` have completed (taken by the kernel): dispatched and buffered, less those not yet done. */
function flushedBytes(socket: Socket): number {
  return socket.bytesWritten - socket.writableLength;
}

const guarded = new WeakSet<ServerResponse>();

/**
 * Closes `response`'s connection when bytes of it are waiting to be sent and none has been taken by
 * the client for `timeoutMs` (a slow client that reads is never cut off, however long the answer).
 * Ends by itself when the response is finished or closed.
 */
export function guardWrites(response: ServerResponse, timeoutMs: number): void {
  const socket = response.socket;
  if (socket === null || guarded.has(response)) return;
  guarded.add(response);
  let flushed = flushedBytes(socket);
  let progressAt = Date.now();
  const timer = setInterval(
    () => {
      const now = flushedBytes(socket);
      if (now > flushed || socket.writableLength === 0) progressAt = Date.now();
      flushed = now;
      if (Date.now() - progressAt < timeoutMs) return;
      writeTimeouts.count++;
      stop();
      socket.destroy();
    },
    Math.max(50, Math.min(1000, timeoutMs / 4)),
  );
  timer.unref();
  const stop = () => clearInterval(timer);
  response.once('finish', stop);
  response.once('close', stop);
}

/**
 * A server-sent event stream on a raw response: each `send` waits until the socket has taken what
 * was sent before (its `drain`), so a client that does not read holds at most one event of ours,
 * and `guardWrites` closes it after the write timeout. `send` answers false once the stream is closed.
 */
export class EventStream {
  #closed = false;

  constructor(private readonly response: ServerResponse) {
    response.once('close', () => (this.#closed = true));
  }

  get closed(): boolean {
    return this.#closed || this.response.destroyed;
  }

  /** Writes `chunks` (a Buffer in slices of its own memory, never copied), each once the socket has taken the one before. */
  async send(...chunks: (string | Buffer)[]): Promise<boolean> {
    for (const chunk of chunks) {
      for (const piece of typeof chunk === 'string' ? [chunk] : slices(chunk)) {
        if (this.closed) return false;
        if (!this.response.write(piece)) await this.#drained();
      }
    }
    return !this.closed;
  }

  /** Ends the stream (its last bytes still go through the write timeout). */
  end(): void {
    if (!this.closed) this.response.end();
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.response.off('drain', done);
        this.response.off('close', done);
        resolve();
      };
      this.response.once('drain', done);
      this.response.once('close', done);
    });
  }
}
