// A job's progress as a stream of views, for GET /jobs/{id}/events: the backend is read every
// WATCH_POLL_MS (the same for both backends: a Redis backend's progress is written by whichever
// replica runs the job), a view is yielded when it changed and at least every HEARTBEAT_MS while the
// job is not finished (so a proxy between never sees an idle stream), and the final view ends it.

import { setTimeout as sleep } from 'node:timers/promises';
import { isFinal, type JobBackend, type JobView } from './types.js';

const WATCH_POLL_MS = 250;
const HEARTBEAT_MS = 1000;

/** Views of job `id` until it is finished, it is gone (expired), or `signal` aborts. */
export async function* watchJob(backend: JobBackend, id: string, owner: string | undefined, signal: AbortSignal): AsyncGenerator<JobView> {
  let last = '';
  let lastAt = 0;
  while (!signal.aborted) {
    const view = await backend.get(id, owner);
    if (view === undefined) return;
    const seen = JSON.stringify([view.state, view.progress]);
    const now = Date.now();
    // Within one poll of the heartbeat: no two events are more than HEARTBEAT_MS apart.
    if (seen !== last || now - lastAt >= HEARTBEAT_MS - WATCH_POLL_MS || isFinal(view.state)) {
      last = seen;
      lastAt = now;
      yield view;
    }
    if (isFinal(view.state)) return;
    try {
      await sleep(WATCH_POLL_MS, undefined, { signal });
    } catch {
      return;
    }
  }
}
