// Sending an answer: an object goes through the route's response serializer; an answer a worker
// already serialised (a large one, built off the event loop) is sent as its bytes. One write: the
// kernel takes what fits in the socket's buffer and libuv writes the rest as the socket drains,
// so even megabytes hold the event loop only for the first copy (@fastify/compress, when the
// client asks for it, compresses them as a stream, off the event loop).

import type { FastifyReply } from 'fastify';
import { SerializedAnswer, type Answer } from '../src/service/compute.js';

export function sendAnswer(reply: FastifyReply, answer: Answer): unknown {
  if (!(answer instanceof SerializedAnswer)) return answer;
  const { json } = answer;
  // A Buffer payload skips the serializer: the worker's JSON is final.
  reply.type('application/json; charset=utf-8');
  return reply.send(Buffer.from(json.buffer, json.byteOffset, json.byteLength));
}
