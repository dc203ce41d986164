// Sending an answer: an object goes through the route's response serializer; an answer a worker
// already serialised (a large one, built off the event loop) is sent as its bytes, in slices so
// that writing megabytes to the socket never holds the event loop.

import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { SerializedAnswer, type Answer } from '../src/service/compute.js';

/** Bytes written to the socket per turn of the event loop. */
const SLICE_BYTES = 256 * 1024;

function* slices(bytes: Buffer): Generator<Buffer> {
  for (let start = 0; start < bytes.length; start += SLICE_BYTES) yield bytes.subarray(start, start + SLICE_BYTES);
}

export function sendAnswer(reply: FastifyReply, answer: Answer): unknown {
  if (!(answer instanceof SerializedAnswer)) return answer;
  const { json } = answer;
  const bytes = Buffer.from(json.buffer, json.byteOffset, json.byteLength);
  // A Buffer or stream payload skips the serializer: the worker's JSON is final.
  reply.type('application/json; charset=utf-8');
  if (bytes.length <= SLICE_BYTES) return reply.send(bytes);
  reply.header('content-length', bytes.length);
  return reply.send(Readable.from(slices(bytes), { objectMode: false }));
}
