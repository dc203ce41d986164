// The words of docs/configuration.md: what each setting of `configSchema` means, in sections.
// `npm run docs:config` writes the page from the schema (names, defaults, ranges) and these words;
// a test fails when the page is stale. A setting added to the schema without an entry here fails
// to compile (CONFIG_DOCS is keyed by the schema's names) and is refused by `configurationPage`
// until a section lists it.

import { z } from 'zod';
import { configSchema } from './config.js';

type Name = keyof typeof configSchema.shape;

interface SettingDoc {
  /** What it does, in Markdown (one table cell). */
  meaning: string;
  /** The default as the page shows it, where the schema's own is not telling (empty, or per machine). */
  default?: string;
}

const CONFIG_DOCS: Record<Name, SettingDoc> = {
  // Listening and logging
  PORT: { meaning: 'TCP port to listen on (`0`: any free port)' },
  HOST: { meaning: 'address to bind' },
  LOG_LEVEL: { meaning: '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`' },
  SHUTDOWN_GRACE_MS: { meaning: 'on SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway (exit code 1, logged at error with the number left unanswered)' },
  // Request bodies and slow clients
  BODY_LIMIT: { meaning: 'largest request body in bytes (48 MiB: room for a base64 tensor of `MAX_TENSOR_ELEMENTS`), as sent and, for a gzip or br body, once decompressed; a larger one gets 413 `limit_exceeded`' },
  BODY_MAX_ITEMS: { meaning: 'commas a JSON body may hold (array elements and object members; what 1 MiB of JSON can hold), counted before it is parsed; more gets 413 `limit_exceeded` saying to send large arrays as base64' },
  BODY_WORKER_THRESHOLD_BYTES: { meaning: 'bodies of this many bytes or more (once decompressed) are parsed, and their base64 decoded, on a body worker thread, off the event loop (docs/bodies.md)' },
  BODY_MAX_INFLIGHT_BYTES: { meaning: 'bytes all request bodies being received or handled may hold at once (256 MiB); past it a body over 64 KiB gets 503 `overloaded` with `Retry-After` (docs/bodies.md); `0`: unbounded' },
  REQUEST_TIMEOUT_MS: { meaning: 'time a client has to send a whole request, body included (past it: 408 `timeout` and the connection is closed; checked at least every second)' },
  HEADERS_TIMEOUT_MS: { meaning: 'time a client has to send the request headers (at most `REQUEST_TIMEOUT_MS`)' },
  KEEP_ALIVE_TIMEOUT_MS: { meaning: 'how long an idle keep-alive connection stays open (longer than a load balancer\'s idle timeout, typically 60 s)' },
  WRITE_TIMEOUT_MS: { meaning: 'a connection whose client reads nothing of an answer for this long is closed (answers of 1 MiB or more are written in slices, each after the last drained; docs/jobs.md)' },
  COMPRESS_MIN_BYTES: { meaning: 'answers of at least this many bytes are compressed (br or gzip) when the request\'s `Accept-Encoding` allows; `0`: never compressed' },
  // What one request may cost
  MAX_EXPR_LENGTH: { meaning: 'characters of an expression' },
  MAX_NODES: { meaning: 'primitive steps of a function (or graph nodes)' },
  MAX_TENSOR_ELEMENTS: { meaning: 'elements of any one tensor: an input, an intermediate or a result' },
  MAX_DIMENSION: { meaning: 'length of any one dimension of any tensor (2²⁴; at most 2³¹ − 1); a tensor with no elements counts its rows against `MAX_TENSOR_ELEMENTS` and the answer limits (docs/shapes.md)' },
  MAX_LIVE_ELEMENTS: { meaning: 'elements held at once while one request computes (reverse mode keeps intermediates)' },
  MAX_FLOPS: { meaning: 'estimated floating-point operations of one request' },
  MAX_JACOBIAN_ELEMENTS: { meaning: 'elements of a Jacobian or Hessian' },
  MAX_ANSWER_ELEMENTS: { meaning: 'numbers in one answer (value, derivatives, every point of a `points` batch); a million numbers is about 20 MB of JSON' },
  MAX_POINTS: { meaning: 'points of a `points` batch' },
  MAX_TRACE_ELEMENTS: { meaning: 'numbers a trace returns (every step\'s value, tangent and adjoint)' },
  MAX_INPUTS: { meaning: 'named inputs of one point (keys of `at`, `shapes`); send many numbers as one array input' },
  MAX_DERIVED_NODES: { meaning: 'steps of one derived value-plus-derivative program (about 600 bytes of heap each)' },
  // Where work runs
  WORKERS: { meaning: 'worker threads for heavy requests (`0`: everything on the event loop)', default: 'number of cores' },
  WORKER_HEAP_MB: { meaning: 'heap (V8 old generation) of one worker thread: a worker past it fails its request with 503 `out_of_memory` and is replaced' },
  WORKER_NICE: { meaning: 'nice value of the worker threads (Linux): heavy work yields the CPU to the event loop; `0` keeps the process\'s priority' },
  INLINE_FLOPS: { meaning: 'requests estimated at or below this many flops (and cheap on every other count) run on the event loop' },
  INLINE_ANSWER_ELEMENTS: { meaning: 'answers of more numbers are built and serialised on a worker' },
  INLINE_PLAN_NODES: { meaning: 'estimated derived-graph steps the event loop may build for one request; a function needing more is differentiated on a worker' },
  WORK_TIMEOUT_MS: { meaning: 'a heavy request\'s time limit (503 `timeout`)' },
  MAX_QUEUE: { meaning: 'heavy requests that may wait for a worker (past it: 503 `overloaded`)' },
  CACHE_SIZE: { meaning: 'prepared functions kept per thread (LRU)' },
  CACHE_MAX_BYTES: { meaning: 'heap all prepared functions may hold (256 MiB), weighed per function and split evenly between the event loop and the workers' },
  BLAS: { meaning: 'the kernel backend of products and factorisations: `auto` (OpenBLAS if it loads, else the JavaScript kernels with a warning), `openblas` (start-up fails without it) or `js` (see [Native kernels](architecture.md#native-kernels-openblas))' },
  BLAS_THREADS: { meaning: 'OpenBLAS threads per process (the worker pool already uses the cores)' },
  GRAPH_MAX_NODES: { meaning: 'nodes of a graph `POST /graph` lays out as SVG (more: 422 `limit_exceeded`; DOT is not limited)' },
  MAX_EVENT_LOOP_DELAY_MS: { meaning: 'event-loop delay past which new work gets 503 `overloaded` (`/healthz`, `/readyz`, `/metrics` still answer); `0` turns it off' },
  // Access and protection
  API_KEYS: { meaning: 'comma-separated `id:sha256` entries, each an id (letters, digits, `.` `_` `-`) and the SHA-256 of a key in hex, never the key itself. When set, every computing endpoint needs `Authorization: Bearer <key>` (see [Access and protection](operations.md#access-and-protection))', default: '(empty: no keys)' },
  METRICS_API_KEYS: { meaning: 'the same for `GET /metrics`: when set, a scrape needs one of these keys (an `API_KEYS` key does not open it); empty: `/metrics` is open', default: '(empty)' },
  METRICS_PORT: { meaning: 'a port of its own for `GET /metrics` (then not served on `PORT`); `0`: served on `PORT`' },
  RATE_LIMIT_MAX: { meaning: 'requests per client per window: a client with an API key is counted by its key, any other by its address (past it: 429 `rate_limited` with `Retry-After`). `/healthz`, `/readyz` and `/metrics` are never limited. Off by default: behind a proxy, set `TRUST_PROXY` too, or every client shares the proxy\'s address', default: '`0` (off)' },
  RATE_LIMIT_WINDOW_MS: { meaning: 'the rate-limit window' },
  TRUST_PROXY: { meaning: 'behind a load balancer: `true` (any), a hop count, or comma-separated proxy addresses/CIDR ranges whose `X-Forwarded-For` is believed, so rate limits and logs see each client\'s address', default: '(empty)' },
  CORS_ORIGINS: { meaning: 'web pages that may call the service from a browser: comma-separated exact origins (`https://course.example,http://localhost:8888`) or `*` for any. Empty: no CORS headers at all (see [Access and protection](operations.md#access-and-protection))', default: '(empty: CORS off)' },
  // Grading
  GRADE_MAX_SUBMISSIONS: { meaning: 'submissions in one `POST /grade` request (more: 422 `limit_exceeded`)' },
  GRADE_MAX_FLOPS: { meaning: 'estimated work of one `POST /grade` request (more: 422 `limit_exceeded`)' },
  // Probing
  PROBE_ALLOWED_ORIGINS: { meaning: 'comma-separated origins `POST /probe` may query (`http://127.0.0.1:8081,https://model.internal`), normalised by the WHATWG URL parser; empty: URL targets off. A non-public address is queried only when an entry names that very address and port', default: '(empty: URL targets off)' },
  PROBE_MAX_CONCURRENCY: { meaning: 'queries one probe keeps in flight (a request\'s `concurrency` is capped here)' },
  PROBE_MAX_OUTGOING: { meaning: 'probe queries in flight at once across the whole server (further queries wait their turn)' },
  PROBE_MAX_BUDGET: { meaning: 'queries one probe may send (a larger `budget`: 422 `limit_exceeded`)' },
  PROBE_MAX_ELEMENTS: { meaning: 'input elements one probe may send, input size × budget (bounds its work on the event loop)' },
  PROBE_MAX_RESPONSE_BYTES: { meaning: 'largest answer read from a probe target (larger: 502 `probe_target_error`)' },
  PROBE_DEFAULT_TIMEOUT_MS: { meaning: 'a probe query\'s time limit when the request gives no `timeoutMs` (past it: 504 `probe_timeout`)' },
  PROBE_MAX_DURATION_MS: { meaning: 'a whole probe\'s time limit, from the request\'s arrival, retry waits included: past it the answer is 504 `probe_timeout` at once, queries in flight are aborted and evaluations cancelled' },
  PROBE_MAX_FLOPS: { meaning: 'estimated floating-point operations of all the evaluations of one probe of an `{ expr }` target, the exact gradient included (a plan that would pass it: 422 `limit_exceeded` after the first evaluation, naming a budget that fits)' },
  PROBE_MAX_OUTBOUND_BYTES: { meaning: 'bytes of request bodies one probe may send (64 MiB): estimated before anything is sent (a plan over it: 422 `limit_exceeded`), then counted as the bodies go, retries included' },
  PROBE_CLIENT_QUERIES_PER_MINUTE: { meaning: 'queries all the probes of one client (its API key when it sends one, else its address) may send to URL targets per minute: a probe planning more than the client has left gets 429 `rate_limited` with `Retry-After`, one planning more than a whole minute allows 422; `0`: unlimited' },
  DEMO_MODEL_HOST: { meaning: 'the host of the demo models of `npm run demo:model` (which reads the same variable): where the playground\'s demo buttons point. The service queries them only when `PROBE_ALLOWED_ORIGINS` lists them' },
  DEMO_MODEL_PORT: { meaning: 'the port of the MNIST demo model (`npm run demo:model` serves it there): where the playground\'s MNIST button points' },
  DEMO_TEXT_PORT: { meaning: 'the port of the text demo model (`npm run demo:model` serves it there): where the playground\'s text button points' },
  // Jobs
  REDIS_URL: { meaning: '`redis://` or `rediss://` URL of the Redis that holds the jobs (BullMQ), shared by every replica (see [jobs](jobs.md))', default: '(empty: jobs in the process)' },
  JOBS_MAX_QUEUED: { meaning: 'jobs that may wait to start, all kinds (past it: 503 `overloaded`)' },
  JOBS_CONCURRENCY_PROBE: { meaning: 'probe jobs one replica runs at once' },
  JOBS_CONCURRENCY_GRADE: { meaning: 'grade jobs one replica runs at once' },
  JOBS_CONCURRENCY_COMPUTE: { meaning: 'differentiation jobs one replica runs at once' },
  JOBS_MAX_BYTES: { meaning: 'bytes the jobs\' bodies and kept answers may hold, all clients (in memory, or in Redis; 512 MiB; past it: 503 `overloaded`)' },
  JOBS_MAX_QUEUED_PER_CLIENT: { meaning: 'one client\'s share of waiting jobs (an API key, or an address without keys; past it: 429; docs/jobs.md)' },
  JOBS_MAX_BYTES_PER_CLIENT: { meaning: 'one client\'s share of the bytes of job bodies and kept answers (past it: 429, and an answer that does not fit fails its job with 429; docs/jobs.md)' },
  JOBS_MAX_EVENT_STREAMS: { meaning: 'open `GET /jobs/{id}/events` streams per replica (past it: 503 with `Retry-After`)' },
  JOBS_MAX_EVENT_STREAMS_PER_CLIENT: { meaning: 'open `GET /jobs/{id}/events` streams per client (past it: 429 with `Retry-After`)' },
  JOBS_ANSWER_CACHE_BYTES: { meaning: 'finished jobs\' JSON kept to be sent to every reader (one copy per job, shared by every connection)' },
  JOBS_RESULT_TTL_SECONDS: { meaning: 'how long a finished job (its answer or problem) is kept; then 404' },
  JOBS_PROBE_MAX_DURATION_MS: { meaning: 'how long one probe job may take from its start (an hour), instead of `PROBE_MAX_DURATION_MS` (past it: the job fails with 504 `probe_timeout`)' },
  JOBS_STALL_INTERVAL_MS: { meaning: 'with `REDIS_URL`: how long a running job\'s lock lasts unrenewed, and how often replicas look for lapsed ones; a job whose replica died is run again elsewhere within about twice this' },
};

const SECTIONS: readonly { title: string; names: readonly Name[] }[] = [
  { title: 'Listening and logging', names: ['PORT', 'HOST', 'LOG_LEVEL', 'SHUTDOWN_GRACE_MS'] },
  { title: 'Request bodies and slow clients', names: ['BODY_LIMIT', 'BODY_MAX_ITEMS', 'BODY_WORKER_THRESHOLD_BYTES', 'BODY_MAX_INFLIGHT_BYTES', 'REQUEST_TIMEOUT_MS', 'HEADERS_TIMEOUT_MS', 'KEEP_ALIVE_TIMEOUT_MS', 'WRITE_TIMEOUT_MS', 'COMPRESS_MIN_BYTES'] },
  { title: 'What one request may cost', names: ['MAX_EXPR_LENGTH', 'MAX_NODES', 'MAX_TENSOR_ELEMENTS', 'MAX_DIMENSION', 'MAX_LIVE_ELEMENTS', 'MAX_FLOPS', 'MAX_JACOBIAN_ELEMENTS', 'MAX_ANSWER_ELEMENTS', 'MAX_POINTS', 'MAX_TRACE_ELEMENTS', 'MAX_INPUTS', 'MAX_DERIVED_NODES'] },
  { title: 'Where work runs', names: ['WORKERS', 'WORKER_HEAP_MB', 'WORKER_NICE', 'INLINE_FLOPS', 'INLINE_ANSWER_ELEMENTS', 'INLINE_PLAN_NODES', 'WORK_TIMEOUT_MS', 'MAX_QUEUE', 'CACHE_SIZE', 'CACHE_MAX_BYTES', 'BLAS', 'BLAS_THREADS', 'GRAPH_MAX_NODES', 'MAX_EVENT_LOOP_DELAY_MS'] },
  { title: 'Access and protection', names: ['API_KEYS', 'METRICS_API_KEYS', 'METRICS_PORT', 'RATE_LIMIT_MAX', 'RATE_LIMIT_WINDOW_MS', 'TRUST_PROXY', 'CORS_ORIGINS'] },
  { title: 'Grading', names: ['GRADE_MAX_SUBMISSIONS', 'GRADE_MAX_FLOPS'] },
  { title: 'Probing', names: ['PROBE_ALLOWED_ORIGINS', 'PROBE_MAX_CONCURRENCY', 'PROBE_MAX_OUTGOING', 'PROBE_MAX_BUDGET', 'PROBE_MAX_ELEMENTS', 'PROBE_MAX_RESPONSE_BYTES', 'PROBE_DEFAULT_TIMEOUT_MS', 'PROBE_MAX_DURATION_MS', 'PROBE_MAX_FLOPS', 'PROBE_MAX_OUTBOUND_BYTES', 'PROBE_CLIENT_QUERIES_PER_MINUTE', 'DEMO_MODEL_HOST', 'DEMO_MODEL_PORT', 'DEMO_TEXT_PORT'] },
  { title: 'Jobs', names: ['REDIS_URL', 'JOBS_MAX_QUEUED', 'JOBS_CONCURRENCY_PROBE', 'JOBS_CONCURRENCY_GRADE', 'JOBS_CONCURRENCY_COMPUTE', 'JOBS_MAX_BYTES', 'JOBS_MAX_QUEUED_PER_CLIENT', 'JOBS_MAX_BYTES_PER_CLIENT', 'JOBS_MAX_EVENT_STREAMS', 'JOBS_MAX_EVENT_STREAMS_PER_CLIENT', 'JOBS_ANSWER_CACHE_BYTES', 'JOBS_RESULT_TTL_SECONDS', 'JOBS_PROBE_MAX_DURATION_MS', 'JOBS_STALL_INTERVAL_MS'] },
];

const INTRO = `Every setting is an environment variable, validated when the server starts. A bad value stops
it with exit code 1 and a message naming the variable:
\`adjoint: Invalid configuration: PORT must be an integer from 0 to 65535 (the TCP port; 0 picks a free one), got "eighty"\`.
An empty variable counts as unset. \`npm run demo:model\` reads \`DEMO_MODEL_HOST\`, \`DEMO_MODEL_PORT\` and
\`DEMO_TEXT_PORT\` too (and \`DEMO_MODEL_NOISE\`, \`DEMO_MODEL_LATENCY_MS\`, \`DEMO_MODEL_SEED\`, which are
its own: [probing](probing.md#the-demo-models)).`;

const NOTES = `## Outside the service

Logs are pino JSON lines on stdout. Request bodies are never logged.

Not the service's own setting, but one that matters for large tensors: glibc's allocator returns
freed multi-megabyte blocks to the kernel, and touching fresh pages is slow on some VMs.
\`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728\`
keeps blocks under 32 MiB in the process for reuse. On the development VM, 5 MB base64 requests
were a sixth faster with it set for the service alone, and a third faster with it set for the
client as well ([BENCHMARKS.md](../BENCHMARKS.md), "Large tensors over HTTP"; noisy figures). The cost is up to
128 MiB kept per allocator arena (the event loop and each worker thread) against the container's
memory limit, so it is left to the deployment (the Dockerfile does not set it).`;

interface JsonSchemaField {
  default?: unknown;
  type?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}

/** The values a setting accepts, as the schema says: a range for numbers, else "text". */
function accepts(field: JsonSchemaField): string {
  if (field.type !== 'integer' && field.type !== 'number') return 'text';
  const kind = field.type === 'integer' ? 'integer' : 'number';
  const low = field.exclusiveMinimum !== undefined ? `> ${field.exclusiveMinimum}` : field.minimum !== undefined ? `≥ ${field.minimum}` : '';
  if (field.maximum !== undefined && field.minimum !== undefined) return `${kind}, ${field.minimum} to ${field.maximum}`;
  return low === '' ? kind : `${kind} ${low}`;
}

function defaultOf(field: JsonSchemaField, doc: SettingDoc): string {
  if (doc.default !== undefined) return doc.default;
  const value = field.default;
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) return '(empty)';
  return `\`${String(value)}\``;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** docs/configuration.md, from the schema and CONFIG_DOCS. Throws when a setting is in no section, or in two. */
export function configurationPage(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, JsonSchemaField> };
  const names = Object.keys(configSchema.shape) as Name[];
  const listed = SECTIONS.flatMap((section) => section.names);
  const missing = names.filter((name) => !listed.includes(name));
  const twice = listed.filter((name, i) => listed.indexOf(name) !== i);
  if (missing.length > 0 || twice.length > 0) {
    throw new Error(`src/service/config-docs.ts: every setting belongs to exactly one section (missing: ${missing.join(', ') || 'none'}; twice: ${twice.join(', ') || 'none'})`);
  }
  const lines = [
    '# Configuration',
    '',
    '<!-- Generated by `npm run docs:config` from the configuration schema (src/service/config.ts) and',
    '     the words in src/service/config-docs.ts. Edit those, not this file: a test fails when it is stale. -->',
    '',
    INTRO,
    '',
    ...SECTIONS.map((section) => `- [${section.title}](#${section.title.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')})`),
    '- [Outside the service](#outside-the-service)',
  ];
  for (const section of SECTIONS) {
    lines.push('', `## ${section.title}`, '', '| variable | default | accepts | meaning |', '| --- | --- | --- | --- |');
    for (const name of section.names) {
      const field = schema.properties[name] ?? {};
      const doc = CONFIG_DOCS[name];
      lines.push(`| \`${name}\` | ${cell(defaultOf(field, doc))} | ${cell(accepts(field))} | ${cell(doc.meaning)} |`);
    }
  }
  lines.push('', NOTES, '');
  return lines.join('\n');
}
