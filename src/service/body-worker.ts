// A thread of the body pool: parses a large request body and decodes its encoded arrays off the
// event loop, and hands the elements back moved, not copied (src/service/body.ts).

import { setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { decodeBody, type BodyTask } from './body-decode.js';

const { nice } = workerData as { nice: number };
// Like the compute workers: decoding yields the CPU to the event loop that answers health checks.
try {
  if (nice > 0) setPriority(nice);
} catch {
  // Not permitted here (or not Linux): the thread runs at the process's priority.
}

export default function decode(task: BodyTask): unknown {
  const answer = decodeBody(task);
  if (!answer.ok) return answer;
  // The decoded elements' memory moves to the event loop's thread.
  return move({ [transferableSymbol]: answer.decoded.map((array) => array.data.buffer), [valueSymbol]: answer });
}
