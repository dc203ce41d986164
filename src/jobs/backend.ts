// Which backend runs the jobs: BullMQ on Redis when REDIS_URL is set, else this process.

import type { Config } from '../service/config.js';
import { BullMqJobs } from './bullmq.js';
import { InProcessJobs } from './in-process.js';
import type { JobBackend, JobSettings, JobWork } from './types.js';

function settingsOf(config: Config): JobSettings {
  return {
    maxQueued: config.JOBS_MAX_QUEUED,
    concurrency: { probe: config.JOBS_CONCURRENCY_PROBE, grade: config.JOBS_CONCURRENCY_GRADE, compute: config.JOBS_CONCURRENCY_COMPUTE },
    resultTtlSeconds: config.JOBS_RESULT_TTL_SECONDS,
    maxBytes: config.JOBS_MAX_BYTES,
    maxQueuedPerClient: config.JOBS_MAX_QUEUED_PER_CLIENT,
    maxBytesPerClient: config.JOBS_MAX_BYTES_PER_CLIENT,
  };
}

/** The backend `config` asks for; `log` hears the Redis connection's errors (it reconnects by itself). */
export function createJobBackend(config: Config, work: JobWork, log: (error: Error) => void): JobBackend {
  const settings = settingsOf(config);
  if (config.REDIS_URL === '') return new InProcessJobs(work, settings);
  return new BullMqJobs(config.REDIS_URL, work, { ...settings, stallIntervalMs: config.JOBS_STALL_INTERVAL_MS }, log);
}
