// The in-process backend (the default): a bounded queue per kind in this process's memory, each
// kind running at most its concurrency at once on the service's own compute (the worker pool) and
// prober. Nothing to install; a job does not survive a restart of the process, and every replica
// has its own jobs (use REDIS_URL and ./bullmq.ts for that).

import { isFinal, JOB_KINDS, type JobBackend, type JobKind, type JobProgress, type JobSpec, type JobSettings, type JobState, type JobSubmission, type JobView, type JobWork, type Submitted } from './types.js';
import { answerTooLarge, fingerprintOf, idempotencySlot, keyReused, limitPassed, longTimeout, newJobId, storeLimitProblem } from './submission.js';

interface Entry {
  view: JobView;
  submission: JobSubmission;
  fingerprint: string;
  /** What it holds in memory: its body while it waits or runs, then its answer. */
  bytes: number;
  controller: AbortController;
  idempotency?: string | undefined;
  expiry?: { clear(): void } | undefined;
}

/** What one client holds: jobs waiting to start, and bytes of bodies and kept answers. */
interface Holding {
  queued: number;
  bytes: number;
}

/** A FIFO queue whose taken entries are dropped in batches (shift() on 10,000 entries is quadratic). */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

export class InProcessJobs implements JobBackend {
  readonly name = 'in-process' as const;
  readonly #jobs = new Map<string, Entry>();
  readonly #keys = new Map<string, string>();
  readonly #waiting = new Map<JobKind, Fifo<Entry>>(JOB_KINDS.map((kind) => [kind, new Fifo<Entry>()]));
  readonly #running = new Map<JobKind, number>(JOB_KINDS.map((kind) => [kind, 0]));
  readonly #held = new Map<string, Holding>();
  #queued = 0;
  #bytes = 0;
  #closed = false;

  constructor(
    private readonly work: JobWork,
    private readonly settings: JobSettings,
  ) {}

  check(spec: JobSpec): void {
    this.work.check(spec);
  }

  async submit(submission: JobSubmission): Promise<Submitted> {
    const { fingerprint, bytes } = fingerprintOf(submission);
    const slot = submission.idempotencyKey === undefined ? undefined : idempotencySlot(submission.owner, submission.idempotencyKey);
    const earlier = slot === undefined ? undefined : this.#jobs.get(this.#keys.get(slot) ?? '');
    if (earlier !== undefined) {
      if (earlier.fingerprint !== fingerprint) throw keyReused();
      return { view: copy(earlier.view), created: false };
    }
    const mine = this.#holding(submission.client);
    const passed = limitPassed({ clientQueued: mine.queued, clientBytes: mine.bytes, queued: this.#queued, bytes: this.#bytes }, bytes, this.settings);
    if (passed !== undefined) throw storeLimitProblem(passed, this.settings);
    const id = newJobId();
    const view: JobView = { id, kind: submission.kind, state: 'queued', progress: { done: 0, total: 1 }, createdAt: Date.now() };
    if (submission.endpoint !== undefined) view.endpoint = submission.endpoint;
    const job: Entry = { view, submission, fingerprint, bytes: 0, controller: new AbortController(), idempotency: slot };
    this.#jobs.set(id, job);
    this.#hold(job, bytes);
    if (slot !== undefined) this.#keys.set(slot, id);
    this.#queued++;
    mine.queued++;
    this.#waiting.get(submission.kind)!.push(job);
    this.#pump(submission.kind);
    return { view: copy(view), created: true };
  }

  async get(id: string, owner: string | undefined, options: { answer?: boolean } = {}): Promise<JobView | undefined> {
    const job = this.#find(id, owner);
    if (job === undefined) return undefined;
    return options.answer === false ? { ...copy(job.view), result: undefined, problem: undefined } : copy(job.view);
  }

  async cancel(id: string, owner: string | undefined): Promise<JobView | undefined> {
    const job = this.#find(id, owner);
    if (job === undefined) return undefined;
    if (isFinal(job.view.state)) {
      // A finished job is removed: its answer's bytes count against its client no more.
      this.#remove(job);
    } else {
      // A queued job is skipped when its turn comes; a running one stops its queries and evaluations now.
      if (job.view.state === 'queued') this.#unqueue(job);
      this.#finish(job, 'cancelled');
      job.controller.abort(new Error('the job was cancelled'));
    }
    return { ...copy(job.view), result: undefined, problem: undefined };
  }

  async queued(): Promise<number> {
    return this.#queued;
  }

  /** Stops every job: running ones are cancelled (their queries stop), queued ones never start. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#jobs.values()) {
      if (!isFinal(job.view.state)) this.#finish(job, 'cancelled');
      job.controller.abort(new Error('the server is shutting down'));
    }
    for (const job of this.#jobs.values()) job.expiry?.clear();
  }

  #find(id: string, owner: string | undefined): Entry | undefined {
    const job = this.#jobs.get(id);
    return job !== undefined && job.submission.owner === owner ? job : undefined;
  }

  #holding(client: string): Holding {
    let holding = this.#held.get(client);
    if (holding === undefined) {
      holding = { queued: 0, bytes: 0 };
      this.#held.set(client, holding);
    }
    return holding;
  }

  /** Sets what `job` holds to `bytes`, for its client and in all. */
  #hold(job: Entry, bytes: number): void {
    const holding = this.#holding(job.submission.client);
    holding.bytes += bytes - job.bytes;
    this.#bytes += bytes - job.bytes;
    job.bytes = bytes;
    this.#forgetIdle(job.submission.client, holding);
  }

  /** Which byte bound keeping `bytes` instead of what `job` holds now would pass; undefined: none. */
  #answerLimit(job: Entry, bytes: number): 'client-bytes' | 'bytes' | undefined {
    const more = bytes - job.bytes;
    if (this.#holding(job.submission.client).bytes + more > this.settings.maxBytesPerClient) return 'client-bytes';
    if (this.#bytes + more > this.settings.maxBytes) return 'bytes';
    return undefined;
  }

  #unqueue(job: Entry): void {
    this.#queued--;
    const holding = this.#holding(job.submission.client);
    holding.queued--;
    this.#forgetIdle(job.submission.client, holding);
  }

  #forgetIdle(client: string, holding: Holding): void {
    if (holding.queued === 0 && holding.bytes === 0) this.#held.delete(client);
  }

  /** Forgets a job, its answer and its Idempotency-Key. */
  #remove(job: Entry): void {
    if (this.#jobs.get(job.view.id) !== job) return;
    job.expiry?.clear();
    this.#jobs.delete(job.view.id);
    this.#hold(job, 0);
    if (job.idempotency !== undefined && this.#keys.get(job.idempotency) === job.view.id) this.#keys.delete(job.idempotency);
  }

  /** Starts waiting jobs of `kind` while it has room. */
  #pump(kind: JobKind): void {
    const waiting = this.#waiting.get(kind)!;
    while (!this.#closed && this.#running.get(kind)! < this.settings.concurrency[kind]) {
      const job = waiting.shift();
      if (job === undefined) return;
      if (job.view.state !== 'queued') continue;
      this.#unqueue(job);
      this.#start(job);
    }
  }

  #start(job: Entry): void {
    const kind = job.view.kind;
    this.#running.set(kind, this.#running.get(kind)! + 1);
    job.view.state = 'running';
    job.view.startedAt = Date.now();
    const onProgress = (progress: JobProgress) => {
      if (job.view.state === 'running') job.view.progress = { ...progress };
    };
    // A job never runs in the turn that submitted it: the submission is answered first.
    setImmediate(() => {
      this.work
        .run(job.submission, { signal: job.controller.signal, onProgress })
        .then(
          (json) => {
            if (job.view.state !== 'running') return;
            job.view.progress = { ...job.view.progress, done: job.view.progress.total };
            // An answer past what its client (or everyone) may keep is dropped: the job fails saying so.
            const limit = this.#answerLimit(job, json.length);
            if (limit === undefined) this.#finish(job, 'succeeded', { result: json });
            else this.#finish(job, 'failed', { problem: JSON.stringify(answerTooLarge(limit, json.length, this.settings)) });
          },
          (error: unknown) => {
            if (job.view.state === 'running') this.#finish(job, 'failed', { problem: this.work.problemOf(error) });
          },
        )
        .finally(() => {
          this.#running.set(kind, this.#running.get(kind)! - 1);
          this.#pump(kind);
        });
    });
  }

  /** The final state; the job and its Idempotency-Key are forgotten JOBS_RESULT_TTL_SECONDS later. */
  #finish(job: Entry, state: JobState, outcome: { result?: string; problem?: string } = {}): void {
    const now = Date.now();
    const ttlMs = this.settings.resultTtlSeconds * 1000;
    Object.assign(job.view, { state, finishedAt: now, expiresAt: now + ttlMs }, outcome);
    // The body is let go (a running job's work keeps its own reference until it settles); the answer is kept.
    job.submission = { ...job.submission, request: undefined };
    this.#hold(job, (outcome.result?.length ?? 0) + (outcome.problem?.length ?? 0));
    // JOBS_RESULT_TTL_SECONDS may be up to 30 days, past what one setTimeout can wait.
    if (!this.#closed) job.expiry = longTimeout(() => this.#remove(job), ttlMs);
  }
}

function copy(view: JobView): JobView {
  return { ...view, progress: { ...view.progress } };
}
