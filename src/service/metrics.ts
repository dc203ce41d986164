// Prometheus metrics. Each app has its own registry (not prom-client's global one), so several
// apps in one process (the tests) do not clash.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

type RequestLabel = 'method' | 'route' | 'status';
const REQUEST_LABELS: RequestLabel[] = ['method', 'route', 'status'];

/** The route pattern (`/docs/static/*`), never the raw URL, so the label's values stay few. */
function routeLabel(request: FastifyRequest): string {
  if (request.is404) return 'not_found';
  return request.routeOptions.url ?? 'unmatched';
}

/** Creates the app's registry with process metrics and the per-request counter and histogram. */
export function setupMetrics(app: FastifyInstance): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter<RequestLabel>({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: REQUEST_LABELS,
    registers: [registry],
  });
  const duration = new Histogram<RequestLabel>({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method, route pattern and status',
    labelNames: REQUEST_LABELS,
    registers: [registry],
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const labels = {
      method: request.method,
      route: routeLabel(request),
      status: String(reply.statusCode),
    };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1000);
  });
  return registry;
}

/** What the engine holds and where its work runs, read when /metrics is scraped. */
export interface ComputeGauges {
  /** Prepared functions kept and the bytes they hold, on the event loop and every worker. */
  caches(): { functions: number; bytes: number };
  /** The process-wide budget of those bytes (CACHE_MAX_BYTES). */
  cacheBudgetBytes: number;
  pendingTasks(): number;
  /** Jobs run on the event loop and on workers so far. */
  jobs(): { inline: number; offloaded: number; timedOut: number; outOfMemory: number; deferred: number };
  /** The tensor kernels' backend (BLAS=auto|openblas|js), chosen when the engine loaded. */
  kernels: { name: string; threads: number };
}

export function registerComputeMetrics(registry: Registry, compute: ComputeGauges): void {
  new Gauge({
    name: 'adjoint_prepared_functions',
    help: 'Prepared functions in the caches of the event loop and the workers (parsed, checked and differentiated once)',
    registers: [registry],
    collect() {
      this.set(compute.caches().functions);
    },
  });
  new Gauge({
    name: 'adjoint_prepared_bytes',
    help: 'Estimated heap bytes the cached prepared functions hold (graphs, plans, compiled code, constants), all threads',
    registers: [registry],
    collect() {
      this.set(compute.caches().bytes);
    },
  });
  new Gauge({
    name: 'adjoint_prepared_bytes_limit',
    help: 'The budget of those bytes across the process (CACHE_MAX_BYTES)',
    registers: [registry],
    collect() {
      this.set(compute.cacheBudgetBytes);
    },
  });
  new Gauge({
    name: 'adjoint_worker_queue',
    help: 'Heavy jobs waiting for a worker thread',
    registers: [registry],
    collect() {
      this.set(compute.pendingTasks());
    },
  });
  new Gauge({
    name: 'adjoint_kernels_info',
    help: 'The tensor kernels in use (value 1): backend "openblas" (OpenBLAS through koffi) or "js", and OpenBLAS threads per process (BLAS_THREADS)',
    labelNames: ['backend', 'threads'],
    registers: [registry],
    collect() {
      this.set({ backend: compute.kernels.name, threads: String(compute.kernels.threads) }, 1);
    },
  });
  new Gauge({
    name: 'adjoint_jobs',
    help: 'Jobs run so far, by where they ran (inline on the event loop, offloaded to a worker), jobs stopped at WORK_TIMEOUT_MS or for memory (WORKER_HEAP_MB), and jobs whose planning was too large for the event loop',
    labelNames: ['where'],
    registers: [registry],
    collect() {
      const jobs = compute.jobs();
      this.set({ where: 'inline' }, jobs.inline);
      this.set({ where: 'offloaded' }, jobs.offloaded);
      this.set({ where: 'timed_out' }, jobs.timedOut);
      this.set({ where: 'out_of_memory' }, jobs.outOfMemory);
      this.set({ where: 'planned_on_worker' }, jobs.deferred);
    },
  });
}
