// The composition root: the service (src/service, which knows nothing of routes) with the route
// plugins of routes/ registered on it. The server, the OpenAPI generator, the tests and the
// benchmarks build the app here.

import { Counter, Gauge } from 'prom-client';
import routes from '../routes/index.js';
import { GUARDED_ANSWER_BYTES, guardWrites, writeTimeouts } from '../routes/answer.js';
import { offerAsync } from '../routes/jobs.js';
import { FinishedJobs } from './jobs/answers.js';
import { createJobBackend } from './jobs/backend.js';
import { WatchSlots } from './jobs/watch.js';
import { ContractCatalog } from './jobs/contracts.js';
import { EndpointWork } from './jobs/work.js';
import { buildService, type App, type BuildAppOptions } from './service/app.js';
import type { Config } from './service/config.js';

export type { App, BuildAppOptions };

export function buildApp(config: Config, options: BuildAppOptions = {}): App {
  const app = buildService(config, options);
  installJobs(app, config);
  // Every answer larger than a socket's buffers: its connection is closed when its client stops reading it.
  app.addHook('onSend', async (_request, reply, payload) => {
    const large = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload.length >= GUARDED_ANSWER_BYTES : payload !== null && payload !== undefined;
    if (large) guardWrites(reply.raw, config.WRITE_TIMEOUT_MS);
    return payload;
  });
  app.register(routes);
  return app;
}

/**
 * Jobs (README "Jobs") run what the synchronous endpoints run, read and answered by those very
 * routes' schemas: each POST route's contract is recorded as it is registered.
 */
function installJobs(app: App, config: Config): void {
  const catalog = new ContractCatalog();
  app.addHook('onRoute', (route) => {
    catalog.record(route);
    offerAsync(route);
  });
  const work = new EndpointWork({
    prober: app.prober,
    compute: app.compute,
    gradeLimits: { maxSubmissions: config.GRADE_MAX_SUBMISSIONS, maxFlops: config.GRADE_MAX_FLOPS },
    contracts: catalog.contracts,
    bodyLimit: config.BODY_LIMIT,
    probeMaxDurationMs: config.JOBS_PROBE_MAX_DURATION_MS,
  });
  app.decorate('jobs', createJobBackend(config, work, (err) => app.log.warn({ err }, 'jobs: Redis connection error')));
  app.decorate('finishedJobs', new FinishedJobs(config.JOBS_ANSWER_CACHE_BYTES));
  app.decorate('jobWatches', new WatchSlots({ perClient: config.JOBS_MAX_EVENT_STREAMS_PER_CLIENT, total: config.JOBS_MAX_EVENT_STREAMS }));
  app.addHook('onClose', async () => app.jobs.close());
  const jobs = app.jobs;
  new Gauge({
    name: 'adjoint_queued_jobs',
    help: 'Jobs (POST /jobs) waiting to start, all kinds; with REDIS_URL, across every replica',
    registers: [app.metrics],
    async collect() {
      // Redis unreachable: the last count stays, and the scrape still answers.
      await jobs.queued().then((count) => this.set(count), () => undefined);
    },
  });
  const { finishedJobs, jobWatches } = app;
  new Gauge({
    name: 'adjoint_job_event_streams',
    help: 'GET /jobs/{id}/events streams open on this replica (JOBS_MAX_EVENT_STREAMS)',
    registers: [app.metrics],
    collect() {
      this.set(jobWatches.open);
    },
  });
  new Gauge({
    name: 'adjoint_job_answer_cache_bytes',
    help: 'Bytes of finished jobs’ JSON kept to be written to every reader (JOBS_ANSWER_CACHE_BYTES)',
    registers: [app.metrics],
    collect() {
      this.set(finishedJobs.bytes);
    },
  });
  let counted = writeTimeouts.count;
  new Counter({
    name: 'adjoint_write_timeouts_total',
    help: 'Connections closed because their client read nothing of an answer for WRITE_TIMEOUT_MS',
    registers: [app.metrics],
    collect() {
      if (writeTimeouts.count > counted) this.inc(writeTimeouts.count - counted);
      counted = writeTimeouts.count;
    },
  });
}
