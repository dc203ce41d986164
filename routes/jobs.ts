// The jobs API (README "Jobs"): long work submitted, watched, fetched and cancelled by its id.

import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { jobJson, type FinishedJobs } from '../src/jobs/answers.js';
import { JOB_ID } from '../src/jobs/submission.js';
import { COMPUTE_ENDPOINTS, isFinal, JOB_STATES, type JobBackend, type JobSpec, type JobView } from '../src/jobs/types.js';
import { jobSpecFor } from '../src/jobs/work.js';
import { watchJob, type WatchSlots } from '../src/jobs/watch.js';
import { HttpProblem, problemResponses } from '../src/service/problem.js';
import { EventStream, guardWrites, sendBytes } from './answer.js';
import { probeClientOf } from './probe.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Where jobs queue and run (src/jobs): in this process, or in Redis with REDIS_URL. */
    jobs: JobBackend;
    /** Finished jobs' JSON, one Buffer per job shared by every reader (JOBS_ANSWER_CACHE_BYTES). */
    finishedJobs: FinishedJobs;
    /** Open event streams, per client and in all. */
    jobWatches: WatchSlots;
  }
}

export const JOBS_TAG = 'jobs';
const IDEMPOTENCY_KEY = 'idempotency-key';

const request = (endpoint: string) => z.unknown().describe(`The body ${endpoint} takes, checked as ${endpoint} checks it`);

const JobRequestSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('probe'), request: request('POST /probe') }),
  z.object({ kind: z.literal('grade'), request: request('POST /grade') }),
  z.object({
    kind: z.literal('compute'),
    endpoint: z.enum(COMPUTE_ENDPOINTS).describe('The differentiation endpoint to run'),
    request: request('that endpoint'),
  }),
]);

const JobSchema = z
  .object({
    id: z.string().describe('The job id: 128 random bits; the only way to the job'),
    kind: z.enum(['probe', 'grade', 'compute']),
    endpoint: z.enum(COMPUTE_ENDPOINTS).optional(),
    state: z.enum(JOB_STATES),
    progress: z
      .object({
        done: z.int().describe('Units done: probe queries (up to the planned ones), else 0 or 1'),
        total: z.int().describe('Units planned'),
        queries: z.int().optional().describe('Probes: queries sent so far, retries included'),
      })
      .describe('How far the job has come'),
    createdAt: z.string().describe('When it was submitted (ISO 8601)'),
    startedAt: z.string().optional().describe('When it last started running'),
    finishedAt: z.string().optional(),
    expiresAt: z.string().optional().describe('When a finished job is removed (JOBS_RESULT_TTL_SECONDS after it finished); 404 after'),
    result: z.unknown().optional().describe('succeeded: exactly the answer the synchronous endpoint gives'),
    problem: z.unknown().optional().describe('failed: exactly the problem the synchronous endpoint answers'),
  })
  .meta({ id: 'Job', description: 'A job: its state, progress, timings and, once finished, its answer' });

const IdParams = z.object({ id: z.string().describe('The id POST /jobs answered') });

function sendJob(reply: FastifyReply, view: JobView | Buffer): FastifyReply {
  return sendBytes(reply.type('application/json; charset=utf-8'), Buffer.isBuffer(view) ? view : Buffer.from(jobJson(view)));
}

function notFound(id: string): HttpProblem {
  return new HttpProblem(404, 'not_found', `There is no job ${id}: it never existed, it expired (JOBS_RESULT_TTL_SECONDS) or another API key submitted it`);
}

const jobResponse = { description: 'The job', content: { 'application/json': { schema: JobSchema } } };

/** Submits `spec` for `request`'s client (its API key, its Idempotency-Key) and answers 202 with the job. */
async function submitFor(request: FastifyRequest, reply: FastifyReply, spec: JobSpec): Promise<FastifyReply> {
  const jobs = request.server.jobs;
  jobs.check(spec);
  const idempotencyKey = request.headers[IDEMPOTENCY_KEY];
  const { view, created } = await jobs.submit({
    ...spec,
    owner: request.apiKeyId,
    client: probeClientOf(request),
    idempotencyKey: typeof idempotencyKey === 'string' && idempotencyKey !== '' ? idempotencyKey.slice(0, 255) : undefined,
  });
  reply.code(202).header('location', `/jobs/${view.id}`);
  if (!created) reply.header('idempotent-replayed', 'true');
  return sendJob(reply, view);
}

const AsyncQuery = z.object({
  async: z.enum(['true', 'false']).optional().describe('true: run the request as a job and answer 202 with it at once (as POST /jobs does; Idempotency-Key too)'),
});

/**
 * `?async=true` on every endpoint jobs run (POST /probe, /grade and the differentiation
 * endpoints): given each such route as it is registered (Fastify's onRoute hook, src/app.ts), it
 * documents the query and the 202 answer, and submits the body as a job before the route would
 * compute it.
 */
export function offerAsync(route: RouteOptions): void {
  if (route.method !== 'POST' || jobSpecFor(route.url, undefined) === undefined) return;
  const schema = route.schema ?? {};
  route.schema = { ...schema, querystring: AsyncQuery, response: { ...(schema.response as object), 202: jobResponse } };
  const asJob = async (request: FastifyRequest, reply: FastifyReply) => {
    if ((request.query as { async?: unknown }).async !== 'true') return;
    // The body as it came: the job checks it with the route's own schema.
    return submitFor(request, reply, jobSpecFor(route.url, request.body)!);
  };
  const existing = route.preValidation;
  route.preValidation = existing === undefined ? [asJob] : [asJob, ...(Array.isArray(existing) ? existing : [existing])];
}

const jobs: FastifyPluginAsyncZod = async (app) => {
  // Event streams end when the server shuts down (else they would hold it open), with a last event saying so.
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort());

  const lookup = async (id: string, owner: string | undefined): Promise<JobView> => {
    // Without its answer: a finished job's bytes come from app.finishedJobs, read once per job.
    const view = JOB_ID.test(id) ? await app.jobs.get(id, owner, { answer: false }) : undefined;
    if (view === undefined) throw notFound(id);
    return view;
  };
  /** The job's JSON: a finished job's shared Buffer, read with its answer once; 404 if it went meanwhile. */
  const jsonOf = async (view: JobView, owner: string | undefined): Promise<Buffer> => {
    const json = await app.finishedJobs.json(view, () => app.jobs.get(view.id, owner));
    if (json === undefined) throw notFound(view.id);
    return json;
  };

  app.post(
    '/jobs',
    {
      schema: {
        operationId: 'submitJob',
        tags: [JOBS_TAG],
        summary: 'Submit a probe, a grading or a differentiation as a job (202, Location: /jobs/{id})',
        headers: z.looseObject({
          [IDEMPOTENCY_KEY]: z.string().min(1).max(255).optional().describe('A retried submission with the same key and body returns the first job (another body: 422)'),
        }),
        body: JobRequestSchema.meta({
          examples: [{ kind: 'probe', request: { target: { expr: 'sum(sin(x))' }, at: [0.1, 0.2, 0.3], method: 'central' } }],
        }),
        response: { 202: jobResponse, ...problemResponses(400, 404, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      return submitFor(request, reply, { kind: body.kind, endpoint: body.kind === 'compute' ? body.endpoint : undefined, request: body.request });
    },
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        operationId: 'getJob',
        tags: [JOBS_TAG],
        summary: 'A job: state, progress, timings and, when finished, the answer',
        params: IdParams,
        response: { 200: jobResponse, ...problemResponses(404, 429, 503) },
      },
    },
    async (request, reply) => {
      const view = await lookup(request.params.id, request.apiKeyId);
      return sendJob(reply, await jsonOf(view, request.apiKeyId));
    },
  );

  app.get(
    '/jobs/:id/events',
    {
      schema: {
        operationId: 'getJobEvents',
        tags: [JOBS_TAG],
        summary: 'A job’s progress as server-sent events: one when it changes and at least every second, the last with its final state and answer',
        params: IdParams,
        response: {
          200: {
            description:
              'Events `queued`, `running`, `succeeded`, `failed` or `cancelled`, each with the Job as its data; `error`, with a problem as its data, when the stream ends without a final state (the job is gone, the job store is unreachable for a minute, the server is shutting down); `: heartbeat` comments while the job store does not answer (docs/jobs.md)',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          ...problemResponses(404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const owner = request.apiKeyId;
      const id = request.params.id;
      await lookup(id, owner);
      const release = app.jobWatches.take(probeClientOf(request));
      try {
        await streamEvents(request, reply, id, closing.signal, jsonOf);
      } finally {
        release();
      }
    },
  );

  app.delete(
    '/jobs/:id',
    {
      schema: {
        operationId: 'cancelJob',
        tags: [JOBS_TAG],
        summary: 'Cancel a queued or running job (its queries stop; it stays cancelled until it expires), or remove a finished one (its answer’s bytes are freed)',
        params: IdParams,
        response: { 200: jobResponse, ...problemResponses(404, 429, 503) },
      },
      // A DELETE carries no body: one sent with a JSON content type and nothing in it is not malformed JSON.
      onRequest: async (request) => {
        const length = request.headers['content-length'];
        if (request.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) delete request.headers['content-type'];
      },
    },
    async (request, reply) => {
      const view = JOB_ID.test(request.params.id) ? await app.jobs.cancel(request.params.id, request.apiKeyId) : undefined;
      if (view === undefined) throw notFound(request.params.id);
      if (isFinal(view.state)) app.finishedJobs.forget(view.id);
      return sendJob(reply, view);
    },
  );
};


/** How long, on shutdown, an event stream may take to send its last event before it is closed. */
const SHUTDOWN_EVENT_WAIT_MS = 1000;

/** What GET /jobs/{id}/events writes, with the headers Fastify (CORS, request id) set before it was hijacked. */
async function streamEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  id: string,
  closing: AbortSignal,
  jsonOf: (view: JobView, owner: string | undefined) => Promise<Buffer>,
): Promise<void> {
  const app = request.server;
  const owner = request.apiKeyId;
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, closing]);
  reply.raw.once('close', () => stop.abort());
  // Headers set by hooks so far (CORS, rate limits, x-request-id) are written with the stream's own.
  const headers = reply.getHeaders() as OutgoingHttpHeaders;
  reply.hijack();
  reply.raw.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    // nginx would otherwise hold events back in its buffer.
    'x-accel-buffering': 'no',
    'x-request-id': request.id,
  });
  guardWrites(reply.raw, app.config.WRITE_TIMEOUT_MS);
  const stream = new EventStream(reply.raw);
  // On shutdown a stream gets a second to take its last event; one whose client does not read is cut then (not after the write timeout).
  const cutOff = () => setTimeout(() => reply.raw.destroy(), SHUTDOWN_EVENT_WAIT_MS).unref();
  closing.addEventListener('abort', cutOff, { once: true });
  reply.raw.once('close', () => closing.removeEventListener('abort', cutOff));
  try {
    for await (const happening of watchJob(app.jobs, id, owner, signal)) {
      let open: boolean;
      if (happening.type === 'heartbeat') open = await stream.send(': heartbeat\n\n');
      else if (happening.type === 'problem') open = await stream.send(`event: error\ndata: ${JSON.stringify(happening.problem)}\n\n`);
      else if (!isFinal(happening.view.state)) open = await stream.send(`event: ${happening.view.state}\ndata: ${jobJson(happening.view)}\n\n`);
      // The final event: the job's shared bytes, written as they are.
      else open = await stream.send(`event: ${happening.view.state}\ndata: `, await jsonOf(happening.view, owner), '\n\n');
      if (!open) return;
    }
    if (closing.aborted) {
      const problem = new HttpProblem(503, 'shutting_down', 'The server is restarting: open the stream again (the job goes on)', {}, { headers: { 'retry-after': '1' } });
      await stream.send(`event: error\ndata: ${JSON.stringify(problem)}\n\n`);
    }
  } catch (error) {
    // Hijacked: nothing may escape to Fastify's error handler, which would write on the stream.
    const problem = error instanceof HttpProblem ? error : new HttpProblem(503, 'overloaded', 'The job could not be read; read it again shortly', {}, { headers: { 'retry-after': '5' } });
    if (!(error instanceof HttpProblem)) request.log.warn({ err: error }, 'job event stream failed');
    await stream.send(`event: error\ndata: ${JSON.stringify(problem)}\n\n`);
  } finally {
    stream.end();
  }
}

export default jobs;
