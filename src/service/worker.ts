// A worker thread of the compute pool: runs planned jobs that are too heavy for the event loop.

import { setPriority } from 'node:os';
import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';
import { Engine } from '../engine/engine.js';
import type { Limits } from '../engine/prepare.js';
import { Piscina } from 'piscina';
import { answerTask, unrefChannel, type ReadyReport, type WorkerAnswer, type WorkerTask } from './compute.js';

const { limits, cacheSize, cacheBytes, cacheChannel, nice } = workerData as {
  limits: Limits;
  cacheSize: number;
  cacheBytes: number;
  cacheChannel: string;
  nice: number;
};
// Heavy work yields the CPU to the event loop: on Linux a thread's nice value is its own, so this
// worker runs at a lower priority than the thread that answers health checks and small requests.
try {
  if (nice > 0) setPriority(nice);
} catch {
  // Not permitted here (or not Linux): the worker runs at the process's priority.
}
const engine = new Engine(limits, { cacheSize, cacheBytes });
/** Where this worker reports its cache after every task (for /metrics). */
const reports = new BroadcastChannel(cacheChannel);
unrefChannel(reports);
// Loaded: the pool may stop this thread safely from now on (Compute.close waits for this).
reports.postMessage({ thread: threadId, ready: true } satisfies ReadyReport);

export default async function work(task: WorkerTask): Promise<WorkerAnswer | ReturnType<typeof Piscina.move>> {
  const answer = await answerTask(engine, task, reports);
  // A serialised answer's bytes are moved to the event loop's thread, not copied (megabytes).
  if (answer.ok && 'json' in answer && answer.flops === undefined) return Piscina.move(answer.json);
  return answer;
}
