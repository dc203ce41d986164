// A job's progress as a stream of happenings, for GET /jobs/{id}/events: the backend is read every
// WATCH_POLL_MS (the same for both backends: a Redis backend's progress is written by whichever
// replica runs the job), a view is yielded when it changed and at least every HEARTBEAT_MS while the
// job is not finished (so a proxy between never sees an idle stream), and the final view ends it.
// The job store failing or hanging (Redis unreachable) does not end the stream: heartbeats go on
// every HEARTBEAT_MS until the store answers again, or until the outage limit (60 s) without it, when the
// stream ends with the problem. Nothing here knows HTTP: the route writes the happenings.

import { setTimeout as sleep } from 'node:timers/promises';
import { HttpProblem, toHttpProblem } from '../service/problem.js';
import { isFinal, type JobBackend, type JobView } from './types.js';

const WATCH_POLL_MS = 250;
const HEARTBEAT_MS = 1000;
/** How long one read of the job may take before the stream sends a heartbeat instead (and waits on): about a heartbeat a second. */
const READ_WAIT_MS = 750;

export type Happening =
  /** The job as it is now; the final one (`isFinal(view.state)`) is read without its answer. */
  | { type: 'view'; view: JobView }
  /** Nothing new could be read (the job store is slow or unreachable); the stream is alive. */
  | { type: 'heartbeat' }
  /** The stream ends without a final state: the job is gone, or the job store was unreachable too long. */
  | { type: 'problem'; problem: HttpProblem };

export interface WatchOptions {
  /** How long the job store may fail or hang before the stream gives up (default 60 s). */
  outageLimitMs?: number;
}

/** Happenings of job `id` until it is finished, it is gone, the job store is lost, or `signal` aborts. */
export async function* watchJob(backend: JobBackend, id: string, owner: string | undefined, signal: AbortSignal, options: WatchOptions = {}): AsyncGenerator<Happening> {
  const outageLimitMs = options.outageLimitMs ?? 60_000;
  let last = '';
  let lastAt = 0;
  let failingSince: number | undefined;
  // At most one read in flight: a hung read is waited for (with heartbeats) rather than stacked.
  let reading: Promise<{ view: JobView | undefined } | { error: unknown }> | undefined;
  while (!signal.aborted) {
    reading ??= backend.get(id, owner, { answer: false }).then(
      (view) => ({ view }),
      (error: unknown) => ({ error }),
    );
    const read = await Promise.race([reading, sleep(READ_WAIT_MS, undefined, { signal }).catch(() => undefined)]);
    if (signal.aborted) return;
    const now = Date.now();
    if (read === undefined || 'error' in read) {
      if (read !== undefined) reading = undefined;
      failingSince ??= now;
      if (now - failingSince >= outageLimitMs) {
        const cause = read === undefined ? undefined : toHttpProblem(read.error);
        yield {
          type: 'problem',
          problem: new HttpProblem(503, 'overloaded', `The job store has not answered for ${Math.round((now - failingSince) / 1000)} s (${cause?.detail ?? 'no answer'}); the job may still be running: read it again later`, {}, {
            headers: { 'retry-after': '10' },
          }),
        };
        return;
      }
      if (now - lastAt >= HEARTBEAT_MS - WATCH_POLL_MS) {
        lastAt = now;
        yield { type: 'heartbeat' };
      }
    } else {
      reading = undefined;
      failingSince = undefined;
      const { view } = read;
      if (view === undefined) {
        yield { type: 'problem', problem: new HttpProblem(404, 'not_found', `The job ${id} is gone: it expired (JOBS_RESULT_TTL_SECONDS) or was deleted`) };
        return;
      }
      const seen = JSON.stringify([view.state, view.progress]);
      // Within one poll of the heartbeat: no two events are more than HEARTBEAT_MS apart.
      if (seen !== last || now - lastAt >= HEARTBEAT_MS - WATCH_POLL_MS || isFinal(view.state)) {
        last = seen;
        lastAt = now;
        yield { type: 'view', view };
      }
      if (isFinal(view.state)) return;
    }
    try {
      await sleep(WATCH_POLL_MS, undefined, { signal });
    } catch {
      return;
    }
  }
}

/**
 * Open event streams, per client and in all (JOBS_MAX_EVENT_STREAMS_PER_CLIENT, JOBS_MAX_EVENT_STREAMS):
 * each stream holds a slot until it ends, so that no client can hold every connection open.
 */
export class WatchSlots {
  readonly #perClient = new Map<string, number>();
  #open = 0;

  constructor(private readonly limits: { perClient: number; total: number }) {}

  get open(): number {
    return this.#open;
  }

  /** Takes a slot for `client` (429 or 503 when none is free); the function returned gives it back, once. */
  take(client: string): () => void {
    const mine = this.#perClient.get(client) ?? 0;
    if (mine >= this.limits.perClient) {
      throw new HttpProblem(429, 'rate_limited', `This client already has ${mine} event streams open (JOBS_MAX_EVENT_STREAMS_PER_CLIENT): close one, or poll GET /jobs/{id}`, {}, {
        headers: { 'retry-after': '5' },
      });
    }
    if (this.#open >= this.limits.total) {
      throw new HttpProblem(503, 'overloaded', `${this.#open} event streams are open (JOBS_MAX_EVENT_STREAMS): poll GET /jobs/{id}, or open the stream again later`, {}, {
        headers: { 'retry-after': '5' },
      });
    }
    this.#perClient.set(client, mine + 1);
    this.#open++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#open--;
      const left = this.#perClient.get(client)! - 1;
      if (left === 0) this.#perClient.delete(client);
      else this.#perClient.set(client, left);
    };
  }
}
