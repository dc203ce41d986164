// The jobs API (README "Jobs"): long work submitted, watched, fetched and cancelled by its id.

import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { JOB_ID } from '../src/jobs/submission.js';
import { COMPUTE_ENDPOINTS, JOB_STATES, type JobBackend, type JobSpec, type JobView } from '../src/jobs/types.js';
import { jobSpecFor } from '../src/jobs/work.js';
import { watchJob } from '../src/jobs/watch.js';
import { HttpProblem, problemResponses } from '../src/service/problem.js';
import { probeClientOf } from './probe.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Where jobs queue and run (src/jobs): in this process, or in Redis with REDIS_URL. */
    jobs: JobBackend;
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

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** A job as JSON, its answer spliced in as the bytes the synchronous endpoint would have sent. */
export function jobJson(view: JobView): string {
  const { id, kind, endpoint, state, progress, result, problem } = view;
  const times = { createdAt: iso(view.createdAt), startedAt: iso(view.startedAt), finishedAt: iso(view.finishedAt), expiresAt: iso(view.expiresAt) };
  const head = JSON.stringify({ id, kind, endpoint, state, progress, ...times });
  const tail = result !== undefined ? `,"result":${result}` : problem !== undefined ? `,"problem":${problem}` : '';
  return `${head.slice(0, -1)}${tail}}`;
}

function sendJob(reply: FastifyReply, view: JobView): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(Buffer.from(jobJson(view)));
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
  // Event streams end when the server shuts down (else they would hold it open).
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort());

  const lookup = async (id: string, owner: string | undefined): Promise<JobView> => {
    const view = JOB_ID.test(id) ? await app.jobs.get(id, owner) : undefined;
    if (view === undefined) throw notFound(id);
    return view;
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
    async (request, reply) => sendJob(reply, await lookup(request.params.id, request.apiKeyId)),
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
            description: 'Events `queued`, `running`, `succeeded`, `failed` or `cancelled`, each with the Job as its data',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          ...problemResponses(404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const owner = request.apiKeyId;
      await lookup(request.params.id, owner);
      const stop = new AbortController();
      const signal = AbortSignal.any([stop.signal, closing.signal]);
      reply.raw.once('close', () => stop.abort());
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        // nginx would otherwise hold events back in its buffer.
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      });
      for await (const view of watchJob(app.jobs, request.params.id, owner, signal)) {
        reply.raw.write(`event: ${view.state}\ndata: ${jobJson(view)}\n\n`);
      }
      reply.raw.end();
    },
  );

  app.delete(
    '/jobs/:id',
    {
      schema: {
        operationId: 'cancelJob',
        tags: [JOBS_TAG],
        summary: 'Cancel a queued or running job (its queries stop); a finished job is left as it is',
        params: IdParams,
        response: { 200: jobResponse, ...problemResponses(404, 429, 503) },
      },
    },
    async (request, reply) => {
      const view = JOB_ID.test(request.params.id) ? await app.jobs.cancel(request.params.id, request.apiKeyId) : undefined;
      if (view === undefined) throw notFound(request.params.id);
      return sendJob(reply, view);
    },
  );
};

export default jobs;
