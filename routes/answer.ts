// Sending an answer: an object goes through the route's response serializer; an answer a worker
// already serialised (a large one, built off the event loop) is sent as its bytes.

import type { FastifyReply } from 'fastify';
import { SerializedAnswer, type Answer } from '../src/service/compute.js';

export function sendAnswer(reply: FastifyReply, answer: Answer): unknown {
  if (!(answer instanceof SerializedAnswer)) return answer;
  const { json } = answer;
  // A Buffer payload skips the serializer: the worker's JSON is final.
  return reply.type('application/json; charset=utf-8').send(Buffer.from(json.buffer, json.byteOffset, json.byteLength));
}
