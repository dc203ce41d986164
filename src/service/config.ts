// The service's configuration: environment variables, validated once at start-up. To add a
// setting, add one field to `configSchema` (named after its environment variable, with its
// default), its words to src/service/config-docs.ts, and run `npm run docs:config`
// (docs/configuration.md is generated; a test fails when it is stale).

import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { DEFAULT_MAX_DIMENSION } from '../engine/ops/shapes.js';
import type { Limits } from '../engine/prepare.js';
import { parseAllowedOrigins } from '../probe/origins.js';
import { apiKeyList } from './access.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** An integer in [min, max], given as a number or as the decimal string an environment holds. */
function integer(min: number, max: number, meaning: string) {
  const message = `must be an integer from ${min} to ${max} (${meaning})`;
  return z.coerce
    .number({ error: message })
    .int({ error: message })
    .min(min, { error: message })
    .max(max, { error: message });
}

/** Whether `text` is a web origin exactly as a browser sends it (`scheme://host[:port]`). */
function isOrigin(text: string): boolean {
  // No wildcards inside an origin ("https://*.example"): the browser sends exact ones.
  if (text.includes('*')) return false;
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === text;
  } catch {
    return false;
  }
}

export const configSchema = z.object({
  PORT: integer(0, 65_535, 'the TCP port; 0 picks a free one').default(3000),
  HOST: z.string().trim().min(1, { error: 'must be a bind address such as 0.0.0.0' }).default('0.0.0.0'),
  LOG_LEVEL: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }))
    .default('info'),
  // Room for a base64 tensor of MAX_TENSOR_ELEMENTS (4M float64: 42.7 MB of base64) with its request
  // around it; nested JSON arrays stay bounded by BODY_MAX_ITEMS (what 1 MiB of JSON can hold).
  BODY_LIMIT: integer(1, 1_073_741_824, 'bytes').default(50_331_648),
  BODY_MAX_ITEMS: integer(1, 1_000_000_000, 'commas in a JSON body (array elements and object members)').default(524_288),
  // Large bodies are parsed and their encoded arrays decoded on a body worker thread (with WORKERS > 0),
  // and all bodies in flight are bounded in bytes (a burst of large or compressed bodies: 503).
  BODY_WORKER_THRESHOLD_BYTES: integer(0, 1_073_741_824, 'bytes a request body must reach to be parsed on a worker thread').default(1_048_576),
  BODY_MAX_INFLIGHT_BYTES: integer(0, 1_099_511_627_776, 'bytes all request bodies being received or handled may hold at once; 0 turns the bound off').default(268_435_456),
  SHUTDOWN_GRACE_MS: integer(0, 3_600_000, 'milliseconds').default(10_000),
  // Limits on the work one request may ask for (refused with limit_exceeded before any large allocation).
  MAX_EXPR_LENGTH: integer(1, 10_000_000, 'characters of an expression').default(100_000),
  MAX_NODES: integer(1, 10_000_000, 'primitive steps of a function').default(100_000),
  MAX_TENSOR_ELEMENTS: integer(1, 1_000_000_000, 'elements of any one tensor').default(4_000_000),
  // Longer than any tensor with elements may be by default (4 × MAX_TENSOR_ELEMENTS), far below 2³²
  // (a JavaScript array's length); at most 2³¹ − 1, so that 32 dimensions multiply to a finite number.
  MAX_DIMENSION: integer(1, 2_147_483_647, 'length of any one dimension of a tensor').default(DEFAULT_MAX_DIMENSION),
  MAX_LIVE_ELEMENTS: integer(1, 10_000_000_000, 'elements held at once while a request runs').default(64_000_000),
  MAX_FLOPS: z.coerce.number({ error: 'must be a number (estimated floating-point operations per request)' }).positive({ error: 'must be positive' }).default(20e9),
  MAX_JACOBIAN_ELEMENTS: integer(1, 1_000_000_000, 'elements of a Jacobian or Hessian').default(1_000_000),
  MAX_ANSWER_ELEMENTS: integer(1, 1_000_000_000, 'numbers in one answer').default(1_000_000),
  MAX_POINTS: integer(1, 1_000_000, 'points of a `points` batch').default(1000),
  MAX_TRACE_ELEMENTS: integer(1, 1_000_000_000, 'numbers a trace returns').default(200_000),
  MAX_INPUTS: integer(1, 1_000_000, 'named inputs of one point (keys of `at`)').default(1000),
  MAX_DERIVED_NODES: integer(1, 100_000_000, 'steps of one derived (value + derivative) program').default(250_000),
  // Where work runs.
  WORKERS: integer(0, 256, 'worker threads for heavy requests; 0 runs everything on the event loop').default(availableParallelism()),
  INLINE_FLOPS: z.coerce.number({ error: 'must be a number (flops)' }).nonnegative({ error: 'must be ≥ 0' }).default(2e6),
  WORK_TIMEOUT_MS: integer(1, 3_600_000, 'milliseconds a heavy request may compute').default(60_000),
  MAX_QUEUE: integer(0, 1_000_000, 'heavy requests that may wait for a worker').default(64),
  CACHE_SIZE: integer(1, 1_000_000, 'prepared functions kept per thread').default(256),
  CACHE_MAX_BYTES: integer(0, 1_099_511_627_776, 'bytes of heap all prepared functions may hold, split between the event loop and the workers').default(256 * 1024 * 1024),
  WORKER_HEAP_MB: integer(16, 1_048_576, 'megabytes of heap (V8 old generation) of one worker thread; a worker past it fails its request with 503 and is replaced').default(768),
  WORKER_NICE: integer(0, 19, 'nice value of worker threads (Linux): heavy work yields the CPU to the event loop; 0 keeps the process priority').default(10),
  INLINE_ANSWER_ELEMENTS: integer(0, 1_000_000_000, 'numbers an answer may hold and still be computed and serialised on the event loop').default(20_000),
  INLINE_PLAN_NODES: integer(0, 100_000_000, 'estimated derived-graph steps a function may need and still be planned on the event loop').default(1_000),
  // The kernel backend of products and factorisations. The engine reads these two itself when it is
  // imported (in every thread, src/engine/tensor/backend/); they are here to be validated and listed.
  BLAS: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['auto', 'openblas', 'js'], { error: 'must be auto, openblas or js' }))
    .default('auto'),
  BLAS_THREADS: integer(1, 256, 'OpenBLAS threads per process; the worker pool already uses the cores').default(1),
  // Graph pictures: Graphviz lays out on the event loop, so the SVG size is bounded.
  GRAPH_MAX_NODES: integer(1, 100_000, 'nodes of a graph drawn as SVG by POST /graph').default(300),
  // Protection of the service as a whole.
  // Rate limiting is off by default: behind a proxy every client shares its address (see TRUST_PROXY).
  RATE_LIMIT_MAX: integer(0, 100_000_000, 'requests per client (its API key, else its address) per window; 0 turns rate limiting off').default(0),
  RATE_LIMIT_WINDOW_MS: integer(1, 86_400_000, 'milliseconds').default(60_000),
  // Behind a load balancer: whose X-Forwarded-For to believe, so that rate limits and logs see the
  // client's address rather than the proxy's. "" (default): none; "true": any; a number: that
  // many hops; else comma-separated addresses or CIDR ranges of the proxies.
  TRUST_PROXY: z
    .union([z.string(), z.boolean(), z.int().nonnegative(), z.array(z.string())])
    .default('')
    .transform((raw, ctx): boolean | number | string[] => {
      if (typeof raw !== 'string') return raw;
      const value = raw.trim();
      if (value === '' || value === 'false') return false;
      if (value === 'true') return true;
      if (/^\d+$/.test(value)) return Number(value);
      const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
      if (entries.some((e) => !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(e))) {
        ctx.addIssue({ code: 'custom', message: 'must be "", "true", a hop count, or comma-separated proxy addresses / CIDR ranges' });
        return z.NEVER;
      }
      return entries;
    }),
  MAX_EVENT_LOOP_DELAY_MS: integer(0, 60_000, 'milliseconds of event-loop delay past which new work gets 503 overloaded; 0 turns it off').default(1000),
  // Slow clients: a request must arrive whole, body included, within REQUEST_TIMEOUT_MS and its
  // headers within HEADERS_TIMEOUT_MS (else 408 and the connection is closed).
  REQUEST_TIMEOUT_MS: integer(100, 3_600_000, 'milliseconds a client may take to send a whole request, body included').default(30_000),
  HEADERS_TIMEOUT_MS: integer(100, 3_600_000, 'milliseconds a client may take to send the request headers (capped at REQUEST_TIMEOUT_MS)').default(10_000),
  KEEP_ALIVE_TIMEOUT_MS: integer(1, 3_600_000, 'milliseconds an idle keep-alive connection stays open').default(72_000),
  // Browsers: which web pages (origins) may call the service (CORS). "" (default): none, no CORS
  // headers at all; "*": any; else comma-separated exact origins such as https://course.example.
  CORS_ORIGINS: z
    .union([z.string(), z.array(z.string())])
    .default('')
    .transform((value, ctx): string[] => {
      const entries = (typeof value === 'string' ? value.split(',') : value).map((e) => e.trim()).filter((e) => e !== '');
      if (entries.includes('*') && entries.length > 1) {
        ctx.addIssue({ code: 'custom', message: 'must be "*" alone, or origins without "*"' });
        return z.NEVER;
      }
      const bad = entries.find((e) => e !== '*' && !isOrigin(e));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `must be "", "*" or comma-separated origins such as https://course.example (scheme, host and port only: ${JSON.stringify(bad)} is not one)` });
        return z.NEVER;
      }
      return entries;
    }),
  // Answers of at least this many bytes are compressed (gzip or br) when the client accepts it.
  COMPRESS_MIN_BYTES: integer(0, 1_073_741_824, 'bytes an answer must reach to be compressed when the client accepts gzip or br; 0 turns compression off').default(1024),
  // Access: API keys as comma-separated `id:sha256hex` entries (hashes only, never the keys).
  API_KEYS: apiKeyList().default([]),
  METRICS_API_KEYS: apiKeyList().default([]),
  METRICS_PORT: integer(0, 65_535, 'a port of its own for GET /metrics (then not served on PORT); 0 serves it on PORT').default(0),
  // Grading (POST /grade): how large a class one request may carry, and how much work it may ask for.
  GRADE_MAX_SUBMISSIONS: integer(1, 1_000_000, 'submissions in one /grade request').default(1000),
  GRADE_MAX_FLOPS: z.coerce.number({ error: 'must be a number (estimated floating-point operations of one /grade request)' }).positive({ error: 'must be positive' }).default(1e9),
  // Black-box probing (POST /probe): which URLs it may query, and how hard.
  PROBE_ALLOWED_ORIGINS: z
    .union([z.string(), z.array(z.string())])
    .transform((value, ctx) => {
      const entries = (typeof value === 'string' ? value.split(',') : value).map((e) => e.trim()).filter((e) => e !== '');
      try {
        return parseAllowedOrigins(entries);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        ctx.addIssue({ code: 'custom', message: `must be comma-separated http(s) origins such as http://127.0.0.1:8081 (${why})` });
        return z.NEVER;
      }
    })
    .default([]),
  PROBE_MAX_CONCURRENCY: integer(1, 1024, 'queries one probe keeps in flight').default(8),
  PROBE_MAX_OUTGOING: integer(1, 100_000, 'probe queries in flight at once across the whole server').default(64),
  PROBE_MAX_BUDGET: integer(1, 10_000_000, 'queries one probe may send').default(10_000),
  PROBE_MAX_RESPONSE_BYTES: integer(1, 1_073_741_824, 'bytes of one answer from a probe target').default(1_048_576),
  PROBE_DEFAULT_TIMEOUT_MS: integer(1, 3_600_000, 'milliseconds one probe query may take unless the request says timeoutMs').default(5000),
  PROBE_MAX_DURATION_MS: integer(1, 3_600_000, 'milliseconds one whole probe may take').default(120_000),
  PROBE_MAX_ELEMENTS: integer(1, 10_000_000_000, 'input elements one probe may send: input size × budget').default(50_000_000),
  PROBE_MAX_FLOPS: z.coerce
    .number({ error: 'must be a number (estimated floating-point operations of all the evaluations of one probe of an { expr } target)' })
    .positive({ error: 'must be positive' })
    .default(20e9),
  PROBE_MAX_OUTBOUND_BYTES: integer(1, 1_099_511_627_776, 'bytes of request bodies one probe may send to its target').default(67_108_864),
  PROBE_CLIENT_QUERIES_PER_MINUTE: integer(0, 1_000_000_000, 'queries one client’s probes may send per minute; 0: unlimited').default(20_000),
  // The demo models of `npm run demo:model`, which reads the same three variables: where the
  // playground's demo buttons point (they still need PROBE_ALLOWED_ORIGINS to be queried).
  DEMO_MODEL_HOST: z.string().trim().min(1, { error: 'must be the demo models’ host, such as 127.0.0.1' }).default('127.0.0.1'),
  DEMO_MODEL_PORT: integer(1, 65_535, 'the port of the MNIST demo model of npm run demo:model').default(8081),
  DEMO_TEXT_PORT: integer(1, 65_535, 'the port of the text demo model of npm run demo:model').default(8082),
  // Jobs (POST /jobs): where they queue, how many run at once, how long their answers are kept.
  // Without REDIS_URL they queue in this process; with it, in Redis (BullMQ), shared by every replica.
  REDIS_URL: z
    .string()
    .trim()
    .refine((url) => url === '' || /^rediss?:\/\/./.test(url), { error: 'must be "" (jobs in this process) or a redis:// or rediss:// URL' })
    .default(''),
  JOBS_MAX_QUEUED: integer(0, 10_000_000, 'jobs that may wait to start (all kinds); past it POST /jobs answers 503 overloaded').default(1000),
  JOBS_CONCURRENCY_PROBE: integer(1, 1024, 'probe jobs one replica runs at once').default(2),
  JOBS_CONCURRENCY_GRADE: integer(1, 1024, 'grade jobs one replica runs at once').default(1),
  JOBS_CONCURRENCY_COMPUTE: integer(1, 1024, 'compute (differentiation) jobs one replica runs at once').default(2),
  JOBS_RESULT_TTL_SECONDS: integer(1, 2_592_000, 'seconds a finished job (its answer or problem) is kept; then it is removed (404)').default(3600),
  JOBS_MAX_BYTES: integer(1, 1_099_511_627_776, 'bytes the jobs’ bodies and kept answers may hold, all clients together (in memory, or in Redis with REDIS_URL); past it POST /jobs answers 503 overloaded').default(512 * 1024 * 1024),
  // One client (its API key, else its address) cannot take every slot or byte (docs/jobs.md): past its share, 429.
  JOBS_MAX_QUEUED_PER_CLIENT: integer(1, 10_000_000, 'jobs one client may have waiting to start; past it its POST /jobs answers 429').default(100),
  JOBS_MAX_BYTES_PER_CLIENT: integer(1, 1_099_511_627_776, 'bytes one client’s job bodies and kept answers may hold; past it its POST /jobs answers 429 (DELETE of a finished job frees its answer)').default(128 * 1024 * 1024),
  JOBS_MAX_EVENT_STREAMS: integer(1, 1_000_000, 'GET /jobs/{id}/events streams open at once; past it 503').default(1000),
  JOBS_MAX_EVENT_STREAMS_PER_CLIENT: integer(1, 1_000_000, 'GET /jobs/{id}/events streams one client may hold open; past it 429').default(16),
  JOBS_ANSWER_CACHE_BYTES: integer(0, 1_099_511_627_776, 'bytes of finished jobs’ serialised answers kept to be sent to every reader of a job (one copy per job, not per connection)').default(256 * 1024 * 1024),
  WRITE_TIMEOUT_MS: integer(1000, 3_600_000, 'milliseconds a client may go without reading any of an answer being written to it; then its connection is closed').default(30_000),
  JOBS_PROBE_MAX_DURATION_MS: integer(1, 86_400_000, 'milliseconds one probe job may take, from its start (instead of PROBE_MAX_DURATION_MS)').default(3_600_000),
  JOBS_STALL_INTERVAL_MS: integer(1000, 3_600_000, 'with REDIS_URL: milliseconds after which a job whose replica stopped renewing its lock (it died) is run again by another').default(30_000),
});

export type Config = z.output<typeof configSchema>;

/** The engine's limits, from the configuration. */
export function limitsOf(config: Config): Limits {
  return {
    maxExprLength: config.MAX_EXPR_LENGTH,
    maxNodes: config.MAX_NODES,
    maxTensorElements: config.MAX_TENSOR_ELEMENTS,
    maxDimension: config.MAX_DIMENSION,
    maxLiveElements: config.MAX_LIVE_ELEMENTS,
    maxFlops: config.MAX_FLOPS,
    maxJacobianElements: config.MAX_JACOBIAN_ELEMENTS,
    maxPoints: config.MAX_POINTS,
    maxTraceElements: config.MAX_TRACE_ELEMENTS,
    maxAnswerElements: config.MAX_ANSWER_ELEMENTS,
    maxInputs: config.MAX_INPUTS,
    maxDerivedNodes: config.MAX_DERIVED_NODES,
  };
}

/** A configuration value that does not fit `configSchema`; the message names each variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type ConfigInput = Record<string, unknown>;

function parseConfig(input: ConfigInput): Config {
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? 'configuration');
    return `${name} ${issue.message}, got ${JSON.stringify(input[name])}`;
  });
  throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
}

/**
 * Reads the configuration from environment variables. An empty variable counts as unset, so it
 * takes its default. Throws `ConfigError` naming every variable that is wrong.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: ConfigInput = {};
  for (const name of Object.keys(configSchema.shape)) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') input[name] = value;
  }
  return parseConfig(input);
}

/** The defaults (no environment), with `overrides` applied and validated; for tests and tools. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  return parseConfig({ ...overrides });
}
