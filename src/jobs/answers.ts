// A finished job as the JSON bytes every reader of it is sent: serialised once per job (not per
// connection, not per poll) and shared by every answer and event stream that writes it, within a
// byte budget (JOBS_ANSWER_CACHE_BYTES). A job's JSON never changes once it is finished, so an entry
// is good for as long as the job exists; the caller checks that (and who owns it) before asking here.

import { isFinal, type JobView } from './types.js';

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

interface Entry {
  /** Which finish of the job the bytes are (a job id is never reused, but this costs nothing to check). */
  finishedAt: number | undefined;
  state: JobView['state'];
  json: Buffer;
}

export class FinishedJobs {
  /** Insertion order is use order: a hit moves its entry to the end, the oldest is evicted first. */
  readonly #entries = new Map<string, Entry>();
  /** Serialisations under way, so that readers arriving together wait for one instead of each making its own. */
  readonly #building = new Map<string, Promise<Buffer | undefined>>();
  #bytes = 0;
  /** How many times a job's JSON was built (for /metrics and for the tests that prove one copy is shared). */
  builds = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The JSON bytes of finished job `view` (read without its answer); `full` reads it with its answer
   * when they are not held. Undefined when the job is gone by then.
   */
  async json(view: JobView, full: () => Promise<JobView | undefined>): Promise<Buffer | undefined> {
    if (!isFinal(view.state)) return Buffer.from(jobJson(view));
    const held = this.#entries.get(view.id);
    if (held !== undefined && held.finishedAt === view.finishedAt && held.state === view.state) {
      this.#entries.delete(view.id);
      this.#entries.set(view.id, held);
      return held.json;
    }
    const pending = this.#building.get(view.id);
    if (pending !== undefined) return pending;
    const building = this.#build(view.id, full).finally(() => this.#building.delete(view.id));
    this.#building.set(view.id, building);
    return building;
  }

  /** Drops a job's bytes (it was removed); connections still writing them keep their reference until done. */
  forget(id: string): void {
    const held = this.#entries.get(id);
    if (held === undefined) return;
    this.#entries.delete(id);
    this.#bytes -= held.json.byteLength;
  }

  async #build(id: string, full: () => Promise<JobView | undefined>): Promise<Buffer | undefined> {
    const view = await full();
    if (view === undefined) return undefined;
    this.builds++;
    const json = Buffer.from(jobJson(view));
    if (!isFinal(view.state) || json.byteLength > this.maxBytes) return json;
    this.forget(id);
    this.#entries.set(id, { finishedAt: view.finishedAt, state: view.state, json });
    this.#bytes += json.byteLength;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.json.byteLength;
    }
    return json;
  }
}
