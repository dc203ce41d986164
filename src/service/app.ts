// The app factory, used by the server and by the tests. Like fastify/demo it registers the
// external plugins, then the app's own (request ids, shutdown, metrics, errors); src/app.ts adds routes/.

import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import fastifyCompress from '@fastify/compress';
import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyUnderPressure from '@fastify/under-pressure';
import { stdTimeFunctions } from 'pino';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  type RawServerDefault,
} from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import type { HostResolver } from '../probe/guard.js';
import { Prober } from '../probe/probe.js';
import { kernelBackend } from '../engine/tensor/backend/index.js';
import { limitsOf, type Config } from './config.js';
import { Compute } from './compute.js';
import { registerComputeMetrics, setupMetrics } from './metrics.js';
import { swaggerOptions } from './openapi.js';
import { HttpProblem, isClientAbort, PROBLEM_CONTENT_TYPE, toHttpProblem } from './problem.js';
import { installAccess, securitySchemes, withSecurity } from './access.js';
import { installBodyParsing } from './body.js';
import { answerBytes, serializerCompiler } from './serialize.js';
import { installMsgpackAnswers } from './msgpack-answer.js';
import { RedisQuotas } from '../probe/redis-quotas.js';
import { clientErrorHandler, timeoutOptions } from './connections.js';

/** Whether the app still takes new requests; it stops when shutdown begins. */
export class Lifecycle {
  #draining = false;
  #inFlight = 0;

  get draining(): boolean {
    return this.#draining;
  }

  /** Requests received and not yet answered (or abandoned by their client). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Counts `response` in flight until it closes (answered, or its connection lost). */
  track(response: ServerResponse): void {
    this.#inFlight += 1;
    response.once('close', () => (this.#inFlight -= 1));
  }

  /** From now on every new request is answered 503 `shutting_down`; in-flight ones finish. */
  drain(): void {
    this.#draining = true;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    lifecycle: Lifecycle;
    /** This app's Prometheus registry. */
    metrics: Registry;
    /** The engine and its worker pool. */
    compute: Compute;
    /** Black-box gradient estimation (POST /probe). */
    prober: Prober;
  }
}

export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

export interface BuildAppOptions {
  /** `false` silences the log (tests). Default: pino JSON lines at `config.LOG_LEVEL`. */
  logger?: boolean;
  /** Where the log lines go instead of stdout (tests read them). */
  logStream?: { write(line: string): void };
  /** How probe target hosts are resolved (default: the system's DNS); tests inject their own. */
  resolveHost?: HostResolver;
}

export const REQUEST_ID_HEADER = 'x-request-id';

/** The one inline style Swagger UI's page has: the logo's SVG in its top bar. */
const SWAGGER_UI_LOGO_STYLE = '.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}';

/**
 * The Content-Security-Policy of Swagger UI (/docs): its own scripts and style sheets plus, by its
 * hash, the logo's inline style (test/browser/docs.test.ts fails on any other violation), requests
 * to this server only, no framing. The plugin's own default (`staticCSP: true`) adds
 * `upgrade-insecure-requests`: the page's own requests would go to https, which fails where the
 * service is served over plain HTTP.
 */
export const SWAGGER_UI_CSP =
  "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; form-action 'self'; " +
  "frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; " +
  `style-src 'self' 'sha256-${createHash('sha256').update(SWAGGER_UI_LOGO_STYLE).digest('base64')}'`;

function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}
/** Liveness, readiness and metrics: never refused for pressure, never rate-limited. */
const UNPRESSURED = new Set(['/healthz', '/readyz', '/metrics']);
/** An incoming request id is kept only when it is a short token that is safe to log and echo. */
const SANE_REQUEST_ID = /^[\w.:@~+/=-]{1,128}$/;

function requestIdOf(request: IncomingMessage): string {
  const incoming = request.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

function loggerOptions(config: Config, options: BuildAppOptions): FastifyServerOptions['logger'] {
  if (options.logger === false) return false;
  // Fastify's request serializer logs method, url, host and remote address: never a body.
  // ISO-8601 timestamps ("time":"2026-11-26T12:00:00.000Z") read better than epoch milliseconds.
  const base = { level: config.LOG_LEVEL, timestamp: stdTimeFunctions.isoTime };
  return options.logStream ? { ...base, stream: options.logStream } : base;
}

/** Answers with the problem for `error`, logging a 5xx (an unexpected one with its stack). */
function problemSender(config: Config) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const problem = toHttpProblem(error, { bodyLimit: config.BODY_LIMIT });
    const logged = { code: problem.code, status: problem.status };
    if (isClientAbort(error)) {
      // The client hung up (or was cut off for sending too slowly): its doing, not a failure.
      request.log.info({ reason: 'client_aborted' }, 'connection closed before the whole request arrived');
    } else if (problem.code === 'internal_error') {
      request.log.error({ ...logged, err: problem.cause }, 'request failed');
    } else if (problem.status >= 500) {
      request.log.warn(logged, 'request refused');
    } else {
      request.log.info(logged, 'request rejected');
    }
    // A string body skips the route's response serializer: the problem is already final.
    return reply
      .code(problem.status)
      .headers({ ...problem.headers, [REQUEST_ID_HEADER]: request.id })
      .type(PROBLEM_CONTENT_TYPE)
      .send(JSON.stringify(problem));
  };
}

/**
 * The service without its routes: plugins, configuration, the engine's compute, the prober, the
 * error model. The composition root (src/app.ts) registers routes/ on it.
 */
export function buildService(config: Config, options: BuildAppOptions = {}): App {
  const sendProblem = problemSender(config);
  const app = createFastify(config, options, sendProblem);
  registerPlugins(app, config);
  decorateServices(app, config, options);
  installLifecycle(app);
  // API keys (API_KEYS, METRICS_API_KEYS); decorates every request with `apiKeyId`.
  installAccess(app, { apiKeys: config.API_KEYS, metricsKeys: config.METRICS_API_KEYS });
  installProblems(app, sendProblem);
  return app;
}

/** Fastify with the service's server options, validation, serialisation and body parsing. */
function createFastify(config: Config, options: BuildAppOptions, sendProblem: ReturnType<typeof problemSender>): App {
  const app = Fastify({
    logger: loggerOptions(config, options),
    bodyLimit: config.BODY_LIMIT,
    // A hop count becomes the function form: trust the nearest n proxies.
    trustProxy: typeof config.TRUST_PROXY === 'number' ? trustHops(config.TRUST_PROXY) : config.TRUST_PROXY,
    requestIdHeader: false,
    genReqId: requestIdOf,
    // While closing, the onRequest hook below answers new requests with a problem instead.
    return503OnClosing: false,
    // Errors met before routing (a malformed URL) get a problem too.
    frameworkErrors: sendProblem,
    // Slow clients are cut off (REQUEST_TIMEOUT_MS, HEADERS_TIMEOUT_MS) with a problem.
    ...timeoutOptions(config),
    clientErrorHandler,
    // On close, idle keep-alive connections are closed at once (busy ones after their answer, below).
    forceCloseConnections: 'idle',
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  // The provider's serializer, with a cheaper check that is the same for schemas that convert nothing.
  app.setSerializerCompiler(serializerCompiler);
  // Large ASCII answers (base64 arrays) are written as bytes; hooks added later (compression) see those.
  app.addHook('onSend', (_request, _reply, payload, done) => done(null, answerBytes(payload)));
  // Bodies are JSON or MessagePack only: a text/plain body gets 415 rather than a confusing schema error.
  app.removeContentTypeParser('text/plain');
  // JSON without __proto__ keys (400 validation_error), compressed only as gzip or br (else 415),
  // large bodies parsed on a worker, all bodies in flight bounded in bytes (503).
  installBodyParsing(app, {
    maxItems: config.BODY_MAX_ITEMS,
    workerThresholdBytes: config.BODY_WORKER_THRESHOLD_BYTES,
    maxInflightBytes: config.BODY_MAX_INFLIGHT_BYTES,
    maxTensorElements: config.MAX_TENSOR_ELEMENTS,
    workers: config.WORKERS,
    workerNice: config.WORKER_NICE,
    workerHeapMb: config.WORKER_HEAP_MB,
  });
  // Answers in MessagePack when Accept prefers it (problems stay problem+json).
  installMsgpackAnswers(app);
  return app;
}

/** Response headers a web page's script may read (CORS): request id, retry hints, rate-limit state, a job's place. */
const CORS_EXPOSED_HEADERS = ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'www-authenticate', 'location', 'idempotent-replayed'];
/** Request headers a web page may send: JSON bodies (maybe compressed), API keys, its own request id, a job's Idempotency-Key. */
const CORS_ALLOWED_HEADERS = ['content-type', 'content-encoding', 'authorization', REQUEST_ID_HEADER, 'idempotency-key'];

/**
 * The external plugins: CORS, compressed answers, the OpenAPI document and its UI, rate limiting,
 * back-pressure.
 */
function registerPlugins(app: App, config: Config): void {
  if (config.CORS_ORIGINS.length > 0) {
    const any = config.CORS_ORIGINS.includes('*');
    const allowed = new Set(config.CORS_ORIGINS);
    // Registered first, so that a preflight is answered before rate limiting or back-pressure sees it
    // (API keys are checked after onRequest: a preflight never carries one). Another origin gets no
    // CORS headers at all, and its preflight is answered like any unknown OPTIONS request (404).
    app.register(fastifyCors, {
      origin: any ? '*' : (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
      // DELETE cancels a job.
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      // Keys travel in Authorization, not in cookies: no credentials mode.
      credentials: false,
      maxAge: 600,
    });
  }
  if (config.COMPRESS_MIN_BYTES > 0) {
    // Answers only: compressed request bodies are decoded, with their bound, by ./body.ts.
    app.register(fastifyCompress, {
      global: true,
      globalDecompression: false,
      threshold: config.COMPRESS_MIN_BYTES,
      encodings: ['br', 'gzip'],
    });
  }
  app.register(fastifySwagger, {
    ...swaggerOptions,
    openapi: { ...swaggerOptions.openapi, components: { securitySchemes } },
    // Each operation says whether it needs a key (src/service/access.ts decides, for both).
    transform: withSecurity(swaggerOptions.transform),
  });
  app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // Swagger UI's own scripts and styles only; no third-party validator badge.
    staticCSP: SWAGGER_UI_CSP,
    uiConfig: { validatorUrl: null },
  });
  if (config.RATE_LIMIT_MAX > 0) {
    app.register(fastifyRateLimit, {
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      // Health checks and scrapes come from shared addresses and must always be answered.
      allowList: (request) => UNPRESSURED.has(request.routeOptions.url ?? ''),
      // A client with an API key is counted by its key, wherever it connects from.
      keyGenerator: (request) => (request.apiKeyId === undefined ? request.ip : `key:${request.apiKeyId}`),
      // The plugin sets Retry-After and the x-ratelimit-* headers; the error handler keeps them.
      errorResponseBuilder: (_request, context) =>
        new HttpProblem(429, 'rate_limited', `More than ${context.max} requests in ${context.after}: retry in ${context.after}`),
    });
  }
  if (config.MAX_EVENT_LOOP_DELAY_MS > 0) {
    app.register(fastifyUnderPressure, {
      maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
      // Liveness, readiness and metrics still answer under pressure; new work is refused.
      pressureHandler: async (request) => {
        if (UNPRESSURED.has(request.routeOptions.url ?? '')) return;
        throw new HttpProblem(503, 'overloaded', 'The server is overloaded (its event loop is delayed); send the request again shortly', {}, {
          headers: { 'retry-after': '5' },
        });
      },
    });
  }
}

/** The app's own parts: configuration, lifecycle, metrics, the engine's compute, the prober. */
function decorateServices(app: App, config: Config, options: BuildAppOptions): void {
  app.decorate('config', config);
  app.decorate('lifecycle', new Lifecycle());
  app.decorate('metrics', setupMetrics(app));
  app.decorate(
    'compute',
    new Compute({
      limits: limitsOf(config),
      cacheSize: config.CACHE_SIZE,
      cacheBytes: config.CACHE_MAX_BYTES,
      inlineFlops: config.INLINE_FLOPS,
      inlineAnswerElements: config.INLINE_ANSWER_ELEMENTS,
      inlinePlanNodes: config.INLINE_PLAN_NODES,
      workers: config.WORKERS,
      workerHeapMb: config.WORKER_HEAP_MB,
      workerNice: config.WORKER_NICE,
      maxQueue: config.MAX_QUEUE,
      timeoutMs: config.WORK_TIMEOUT_MS,
    }),
  );
  app.addHook('onClose', async () => app.compute.close());
  registerComputeMetrics(app.metrics, {
    caches: () => app.compute.caches(),
    cacheBudgetBytes: config.CACHE_MAX_BYTES,
    pendingTasks: () => app.compute.pendingTasks,
    jobs: () => app.compute.jobs(),
    kernels: kernelBackend(),
  });
  // With REDIS_URL, replicas share the clients' query windows (PROBE_CLIENT_QUERIES_PER_MINUTE).
  const quotas =
    config.REDIS_URL === '' || config.PROBE_CLIENT_QUERIES_PER_MINUTE === 0
      ? undefined
      : new RedisQuotas(config.REDIS_URL, config.PROBE_CLIENT_QUERIES_PER_MINUTE, 60_000, Date.now, (err) => app.log.warn({ err }, 'probe quotas: Redis connection error'));
  if (quotas !== undefined) app.addHook('onClose', () => quotas.close());
  app.decorate(
    'prober',
    new Prober({
      quotas,
      allowedOrigins: config.PROBE_ALLOWED_ORIGINS,
      maxConcurrency: config.PROBE_MAX_CONCURRENCY,
      maxOutgoing: config.PROBE_MAX_OUTGOING,
      maxBudget: config.PROBE_MAX_BUDGET,
      maxResponseBytes: config.PROBE_MAX_RESPONSE_BYTES,
      defaultTimeoutMs: config.PROBE_DEFAULT_TIMEOUT_MS,
      maxDurationMs: config.PROBE_MAX_DURATION_MS,
      maxTensorElements: config.MAX_TENSOR_ELEMENTS,
      maxAnswerElements: config.MAX_ANSWER_ELEMENTS,
      maxElements: config.PROBE_MAX_ELEMENTS,
      maxFlops: config.PROBE_MAX_FLOPS,
      maxOutboundBytes: config.PROBE_MAX_OUTBOUND_BYTES,
      clientQueriesPerMinute: config.PROBE_CLIENT_QUERIES_PER_MINUTE,
      evaluator: app.compute,
      resolve: options.resolveHost,
    }),
  );
}

/** Request ids, shutdown tracking and draining (503 shutting_down once it begins). */
function installLifecycle(app: App): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    app.lifecycle.track(reply.raw);
    if (app.lifecycle.draining) {
      const detail = 'The server is shutting down; send the request again';
      throw new HttpProblem(503, 'shutting_down', detail, {}, { headers: { 'retry-after': '1' } });
    }
  });
  app.addHook('preClose', async () => app.lifecycle.drain());
  // While shutting down, a keep-alive connection closes once its last answer is sent. Node's
  // server.close() closes the connections idle at that moment only: one whose answer was still
  // being computed would stay open (KEEP_ALIVE_TIMEOUT_MS) and hold the process past the last
  // answer. (A `Connection: close` on that answer would drop a request pipelined behind it.)
  app.addHook('onResponse', async () => {
    if (app.lifecycle.draining) app.server.closeIdleConnections();
  });
}

/** Every error, and every unknown route, answered as a problem. */
function installProblems(app: App, sendProblem: ReturnType<typeof problemSender>): void {
  app.setErrorHandler((error, request, reply) => sendProblem(error, request, reply));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0];
    const problem = new HttpProblem(404, 'not_found', `There is no ${request.method} ${path}`);
    return sendProblem(problem, request, reply);
  });
}
