// A worker thread of the compute pool: runs planned jobs that are too heavy for the event loop.

import { BroadcastChannel, workerData } from 'node:worker_threads';
import { Engine } from '../engine/operations.js';
import type { Limits } from '../engine/prepare.js';
import { Piscina } from 'piscina';
import { answerTask, type WorkerAnswer, type WorkerTask } from './compute.js';

const { limits, cacheSize, cacheBytes, cacheChannel } = workerData as { limits: Limits; cacheSize: number; cacheBytes: number; cacheChannel: string };
const engine = new Engine(limits, { cacheSize, cacheBytes });
/** Where this worker reports its cache after every task (for /metrics). */
const reports = new BroadcastChannel(cacheChannel);
(reports as unknown as { unref(): void }).unref();

export default async function work(task: WorkerTask): Promise<WorkerAnswer | ReturnType<typeof Piscina.move>> {
  const answer = await answerTask(engine, task, reports);
  // A serialised answer's bytes are moved to the event loop's thread, not copied (megabytes).
  if (answer.ok && 'json' in answer && answer.flops === undefined) return Piscina.move(answer.json);
  return answer;
}
