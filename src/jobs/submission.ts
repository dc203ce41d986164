// What both backends do alike with a submission: its id, its fingerprint for Idempotency-Key, and
// the problems a submission can be refused with.

import { createHash, randomBytes } from 'node:crypto';
import { HttpProblem } from '../service/problem.js';
import type { JobSpec } from './types.js';

/** 128 random bits, base64url (22 characters): an id is the only way to a job, so it cannot be guessed. */
export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}

/** Ids as newJobId makes them: anything else is not a job (404 without a lookup). */
export const JOB_ID = /^[A-Za-z0-9_-]{22}$/;

/** What an Idempotency-Key is compared on (the kind, the endpoint and the body, hashed), and the body's size. */
export function fingerprintOf(spec: JobSpec): { fingerprint: string; bytes: number } {
  const json = JSON.stringify([spec.kind, spec.endpoint ?? null, spec.request]);
  return { fingerprint: createHash('sha256').update(json).digest('base64url'), bytes: Buffer.byteLength(json) };
}

/** Where an Idempotency-Key is remembered: per owner, so one key's jobs never answer another's. */
export function idempotencySlot(owner: string | undefined, key: string): string {
  return `${owner === undefined ? '-' : `key:${owner}`}\n${key}`;
}

function queueFull(maxQueued: number): HttpProblem {
  return new HttpProblem(503, 'overloaded', `${maxQueued} jobs are already waiting (JOBS_MAX_QUEUED); submit this one again later`, {}, {
    headers: { 'retry-after': '10' },
  });
}

export function keyReused(): HttpProblem {
  return new HttpProblem(
    422,
    'idempotency_conflict',
    'This Idempotency-Key was already used for a job with another body: send the same body again to get that job, or use a new key for a new job',
  );
}

function storeFull(maxBytes: number): HttpProblem {
  return new HttpProblem(503, 'overloaded', `The jobs kept here already hold ${maxBytes} bytes of bodies and answers (JOBS_MAX_BYTES); submit this one again later`, {}, {
    headers: { 'retry-after': '10' },
  });
}

/** A limit of the job store: one client's share (429, its own doing) or everyone's (503). */
export type StoreLimit = 'client-queued' | 'client-bytes' | 'queued' | 'bytes';

/** Which limit a submission of `bytes` would pass, given what the client and everyone hold now; undefined: none. */
export function limitPassed(
  held: { clientQueued: number; clientBytes: number; queued: number; bytes: number },
  bytes: number,
  settings: { maxQueuedPerClient: number; maxBytesPerClient: number; maxQueued: number; maxBytes: number },
): StoreLimit | undefined {
  if (held.clientQueued + 1 > settings.maxQueuedPerClient) return 'client-queued';
  if (held.clientBytes + bytes > settings.maxBytesPerClient) return 'client-bytes';
  if (held.queued + 1 > settings.maxQueued) return 'queued';
  if (held.bytes + bytes > settings.maxBytes) return 'bytes';
  return undefined;
}

/** The problem a submission past `limit` is answered with. */
export function storeLimitProblem(limit: StoreLimit, settings: { maxQueuedPerClient: number; maxBytesPerClient: number; maxQueued: number; maxBytes: number }): HttpProblem {
  switch (limit) {
    case 'client-queued':
      return new HttpProblem(429, 'rate_limited', `This client already has ${settings.maxQueuedPerClient} jobs waiting to start (JOBS_MAX_QUEUED_PER_CLIENT); submit this one once some have started`, {}, {
        headers: { 'retry-after': '10' },
      });
    case 'client-bytes':
      return new HttpProblem(
        429,
        'rate_limited',
        `This client's jobs already hold up to ${settings.maxBytesPerClient} bytes of bodies and kept answers (JOBS_MAX_BYTES_PER_CLIENT): DELETE /jobs/{id} the finished jobs whose answers you have read, or wait for them to expire`,
        {},
        { headers: { 'retry-after': '10' } },
      );
    case 'queued':
      return queueFull(settings.maxQueued);
    case 'bytes':
      return storeFull(settings.maxBytes);
  }
}

/**
 * The problem a job fails with when its answer does not fit in what its client (or everyone) may
 * keep: the answer is dropped rather than kept past the bound.
 */
export function answerTooLarge(limit: 'client-bytes' | 'bytes', bytes: number, settings: { maxBytesPerClient: number; maxBytes: number }): HttpProblem {
  if (limit === 'client-bytes') {
    return new HttpProblem(
      429,
      'rate_limited',
      `The answer (${bytes} bytes) does not fit in what this client's jobs may keep (JOBS_MAX_BYTES_PER_CLIENT = ${settings.maxBytesPerClient}): DELETE /jobs/{id} the finished jobs whose answers you have read, then submit this one again`,
      {},
      { headers: { 'retry-after': '10' } },
    );
  }
  return new HttpProblem(503, 'overloaded', `The answer (${bytes} bytes) does not fit in what the job store may keep (JOBS_MAX_BYTES = ${settings.maxBytes}); submit this one again later`, {}, {
    headers: { 'retry-after': '10' },
  });
}

/** A timer for any delay: setTimeout fires at once past 2^31 - 1 ms (24.8 days), so a longer delay waits in steps. */
export function longTimeout(callback: () => void, delayMs: number): { clear(): void } {
  const STEP_MS = 2 ** 31 - 1;
  const due = Date.now() + delayMs;
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = due - Date.now();
    timer = left > STEP_MS ? setTimeout(arm, STEP_MS) : setTimeout(callback, Math.max(0, left));
    timer.unref();
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
