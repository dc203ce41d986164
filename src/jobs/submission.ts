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

export function queueFull(maxQueued: number): HttpProblem {
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

export function storeFull(maxBytes: number): HttpProblem {
  return new HttpProblem(503, 'overloaded', `The jobs kept here already hold ${maxBytes} bytes of bodies and answers (JOBS_MAX_BYTES); submit this one again later`, {}, {
    headers: { 'retry-after': '10' },
  });
}
