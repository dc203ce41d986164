// A worker thread of the compute pool: runs planned jobs that are too heavy for the event loop.

import { workerData } from 'node:worker_threads';
import { Engine } from '../engine/operations.js';
import type { Limits } from '../engine/prepare.js';
import { answerTask, type WorkerAnswer, type WorkerTask } from './compute.js';

const { limits, cacheSize, cacheBytes } = workerData as { limits: Limits; cacheSize: number; cacheBytes: number };
const engine = new Engine(limits, { cacheSize, cacheBytes });

export default function work(task: WorkerTask): Promise<WorkerAnswer> {
  return answerTask(engine, task);
}
