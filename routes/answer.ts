// Sending an answer: an object goes through the route's response serializer; an answer a worker
// already serialised (a large one, built off the event loop) is sent as its bytes. A Buffer is
// written without a copy: the kernel takes what fits in the socket's buffer and libuv writes the
// rest, from the same Buffer, as the socket drains (@fastify/compress, when the client asks for it,
// compresses a large answer as a stream, with its backpressure, off the event loop).
//
// A client that stops reading would hold its answer's bytes for as long as its connection lasts:
// `guardWrites` closes the connection of any answer that makes no progress for WRITE_TIMEOUT_MS.
// Event streams (`EventStream`) write only once the socket has taken what was written before.

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply } from 'fastify';
import { SerializedAnswer, type Answer } from '../src/service/compute.js';

export function sendAnswer(reply: FastifyReply, answer: Answer): unknown {
  if (!(answer instanceof SerializedAnswer)) return answer;
  const { json } = answer;
  // A Buffer payload skips the serializer: the worker's JSON is final.
  reply.type('application/json; charset=utf-8');
  return reply.send(Buffer.from(json.buffer, json.byteOffset, json.byteLength));
}

/** Answers smaller than this fit in a socket's buffers: a client that never reads them holds nothing of ours. */
export const GUARDED_ANSWER_BYTES = 64 * 1024;

/** Connections closed because their client read nothing of an answer for the write timeout (for /metrics and tests). */
export const writeTimeouts = { count: 0 };

/** Bytes given to `socket` and not yet taken by the kernel: in the stream's buffer, and in libuv's write queue. */
function pendingBytes(socket: Socket): number {
  const handle = (socket as Socket & { _handle?: { writeQueueSize?: number } | null })._handle;
  return socket.writableLength + (handle?.writeQueueSize ?? 0);
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
  let pending = pendingBytes(socket);
  let progressAt = Date.now();
  const timer = setInterval(
    () => {
      const now = pendingBytes(socket);
      if (now === 0 || now < pending) progressAt = Date.now();
      pending = now;
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

  /** Writes `chunks` (Buffers are written as they are, never copied) and waits for the socket to take them. */
  async send(...chunks: (string | Buffer)[]): Promise<boolean> {
    if (this.closed) return false;
    let room = true;
    for (const chunk of chunks) room = this.response.write(chunk);
    if (!room) await this.#drained();
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
