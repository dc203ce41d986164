// What the jobs tests share: submitting, reading and waiting for jobs through the HTTP API (inject),
// and reading a job's answer as the bytes the API sent.

import { expect } from 'vitest';
import type { App } from '../../src/app.js';
import type { JobBackend, JobSubmission, JobView, JobWork, RunContext } from '../../src/jobs/types.js';

export interface JobBody {
  id: string;
  state: string;
  progress: { done: number; total: number; queries?: number };
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  expiresAt?: string;
  result?: unknown;
  problem?: { code: string; status: number };
}

type Headers = Record<string, string>;

export async function submit(app: App, body: unknown, headers: Headers = {}) {
  const response = await app.inject({ method: 'POST', url: '/jobs', payload: body as object, headers });
  return { status: response.statusCode, headers: response.headers, job: response.json<JobBody>(), text: response.body };
}

export async function read(app: App, id: string, headers: Headers = {}) {
  const response = await app.inject({ method: 'GET', url: `/jobs/${id}`, headers });
  return { status: response.statusCode, job: response.json<JobBody>(), text: response.body };
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Reads the job until it is finished (or `until` says so), at most `timeoutMs`. */
export async function waitFor(app: App, id: string, options: { until?: (job: JobBody) => boolean; timeoutMs?: number; headers?: Headers } = {}) {
  const until = options.until ?? ((job) => FINAL.has(job.state));
  const deadline = Date.now() + (options.timeoutMs ?? 40_000);
  for (;;) {
    const got = await read(app, id, options.headers);
    // A busy machine may delay the event loop past MAX_EVENT_LOOP_DELAY_MS: 503 overloaded, read again.
    if (got.status === 503 && got.job.problem === undefined && (got.job as unknown as { code?: string }).code === 'overloaded' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    expect(got.status, got.text).toBe(200);
    if (until(got.job)) return got;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${got.job.state} after ${options.timeoutMs ?? 40_000} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The answer's bytes inside a job's JSON (the API splices them in last): `"result":<bytes>}`. */
export function answerBytes(text: string, field: 'result' | 'problem'): string {
  const marker = `,"${field}":`;
  const at = text.indexOf(marker);
  expect(at).toBeGreaterThan(0);
  expect(text.endsWith('}')).toBe(true);
  return text.slice(at + marker.length, -1);
}

/** A class of 1000 submissions: a grading that takes a while (about a second, more on a cold worker). */
export function longGrading() {
  const submissions = Array.from({ length: 1000 }, (_, i) => ({ id: `s${i}`, answers: { derivative: { x: i % 2 === 1 ? 'cos(x) * exp(sin(x)) * (1 + x^2) + 2*x*exp(sin(x))' : 'x' } } }));
  return { reference: { expr: 'exp(sin(x)) * (1 + x^2)' }, submissions };
}

/** Work that ignores its abort signal (as a grading on the event loop does): it answers after `ms` whatever happens. */
export function stubbornWork(ms: number): JobWork & { runs: number } {
  const work = {
    runs: 0,
    check: () => undefined,
    run: async (_job: JobSubmission, context: RunContext) => {
      work.runs++;
      context.onProgress({ done: 0, total: 1 });
      await new Promise((resolve) => setTimeout(resolve, ms));
      return '{"answer":42}';
    },
    problemOf: (error: unknown) => JSON.stringify({ status: 500, code: 'internal_error', detail: String(error) }),
  };
  return work;
}

export const STORE_SETTINGS = {
  maxQueued: 100,
  concurrency: { probe: 1, grade: 1, compute: 1 },
  resultTtlSeconds: 60,
  maxBytes: 1e9,
  maxQueuedPerClient: 100,
  maxBytesPerClient: 1e9,
};

/** Submits a grade job to `backend` directly, cancels it once it runs, and reads it after its work would have ended. */
export async function cancelWhileRunning(backend: JobBackend, workMs: number): Promise<{ cancelled: JobView | undefined; later: JobView | undefined }> {
  const { view } = await backend.submit({ kind: 'grade', request: {}, owner: undefined, client: 'ip:127.0.0.1' });
  for (let deadline = Date.now() + 20_000; (await backend.get(view.id, undefined))?.state !== 'running'; ) {
    if (Date.now() > deadline) throw new Error('the job did not start');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const cancelled = await backend.cancel(view.id, undefined);
  await new Promise((resolve) => setTimeout(resolve, workMs + 1500));
  return { cancelled, later: await backend.get(view.id, undefined) };
}
