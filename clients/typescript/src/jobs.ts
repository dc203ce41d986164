// Jobs (README "Jobs"): work submitted, answered 202 at once with its id, then followed through
// GET /jobs/{id}/events (server-sent events: one whenever its state or progress changes, at least
// one a second, the last with the answer), fetched, or cancelled.

import type { components } from './schema.js';

/** What runs as a job: a probe, a grading, or a differentiation endpoint. */
export type JobEndpoint = 'probe' | 'grade' | 'eval' | 'grad' | 'jvp' | 'vjp' | 'jacobian' | 'hessian' | 'hvp' | 'check';

/** A job as the service writes it; `result` and `problem` are the synchronous endpoint's answer, undecoded. */
export type JobView = components['schemas']['Job'];
export type JobState = JobView['state'];

declare const answerOf: unique symbol;

/** A job, typed by the answer it will give (so that `wait` knows its type). */
export type Job<Answer = unknown> = JobView & { readonly [answerOf]?: Answer };

export const FINISHED: ReadonlySet<JobState> = new Set<JobState>(['succeeded', 'failed', 'cancelled']);

/** Succeeded, failed or cancelled: it will not change again. */
export function isFinished(job: JobView): boolean {
  return FINISHED.has(job.state);
}

/** `wait` on a job that was cancelled (by `cancel`, anyone holding its id, or the server shutting down). */
export class JobCancelledError extends Error {
  override readonly name = 'JobCancelledError';
  readonly job: JobView;

  constructor(job: JobView) {
    super(`job ${job.id} was cancelled`);
    this.job = job;
  }
}

export interface WaitOptions {
  /** Called whenever the job's state or progress changes (`job.progress.done` of `job.progress.total`). */
  onProgress?: (job: JobView) => void;
  /** Stops waiting (the job runs on; `run` cancels it). */
  signal?: AbortSignal;
}

export interface SubmitOptions {
  /** A retried submission with the same key and body gets the first job (default: a fresh random key per call). */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** One server-sent event: its name and its data (the lines of `data:` joined). */
export interface ServerSentEvent {
  event: string;
  data: string;
}

/** The events of a text/event-stream body, as they arrive. */
export async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let event = 'message';
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffered.search(/\r\n|\r|\n/)) >= 0) {
        if (end === buffered.length - 1 && buffered.endsWith('\r')) break; // a \r\n split between chunks
        const line = buffered.slice(0, end);
        buffered = buffered.slice(buffered.startsWith('\r\n', end) ? end + 2 : end + 1);
        if (line === '') {
          if (data.length > 0) yield { event, data: data.join('\n') };
          event = 'message';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = text;
        else if (field === 'data') data.push(text);
      }
    }
  } finally {
    // Ends the request when the caller stops early (a `break` out of `for await`).
    await reader.cancel().catch(() => undefined);
  }
}
