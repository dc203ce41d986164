// What the jobs tests share: submitting, reading and waiting for jobs through the HTTP API (inject),
// and reading a job's answer as the bytes the API sent.

import { expect } from 'vitest';
import type { App } from '../../src/app.js';

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
    expect(got.status).toBe(200);
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
