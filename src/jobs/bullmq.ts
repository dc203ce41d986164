// The Redis backend (REDIS_URL): BullMQ queues, one per kind, shared by every replica. Each replica
// submits to them and works on them (at most JOBS_CONCURRENCY_<KIND> jobs at once); a job's state,
// progress and answer live in Redis, so any replica answers for any job. A replica that dies
// mid-job stops renewing the job's lock: BullMQ's stalled-job check on another replica puts the job
// back in its queue within about two JOBS_STALL_INTERVAL_MS, and it is run again from the start.
// Cancelling sets a key every replica's running job looks at (every CANCEL_POLL_MS).

import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { isFinal, JOB_KINDS, type JobBackend, type JobKind, type JobProgress, type JobSettings, type JobSpec, type JobState, type JobSubmission, type JobView, type JobWork, type Submitted } from './types.js';
import { HttpProblem } from '../service/problem.js';
import { fingerprintOf, idempotencySlot, keyReused, newJobId, queueFull } from './submission.js';

/** What a job holds in Redis besides its kind (its queue). */
interface JobData {
  endpoint?: JobSubmission['endpoint'];
  request: unknown;
  owner: string | null;
  client: string;
}

/** BullMQ's keys and ours start with this. */
const PREFIX = 'adjoint';
/** A job's failedReason when it was cancelled (any other reason is its problem's JSON). */
const CANCELLED = 'adjoint:cancelled';
/** How often a running job looks for its cancel key and writes its progress. */
const CANCEL_POLL_MS = 250;
/** How many times a job may be taken back from a replica that stopped (then it fails). */
const MAX_STALLS = 2;
/** How often, and how far apart, a key naming a job not found is looked at again before it is taken over. */
const CLAIM_ATTEMPTS = 3;
const CLAIM_WAIT_MS = 50;
/** How long closing waits for Redis before it drops the connections. */
const CLOSE_WAIT_MS = 3000;
/** How long an Idempotency-Key is remembered when its job is gone (it is forgotten with its job at the latest). */
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

const stateOf: Record<string, JobState> = {
  waiting: 'queued',
  prioritized: 'queued',
  delayed: 'queued',
  'waiting-children': 'queued',
  active: 'running',
  completed: 'succeeded',
  failed: 'failed',
};

export class BullMqJobs implements JobBackend {
  readonly name = 'bullmq' as const;
  /** Submissions, reads and cancels: a command fails soon while Redis is unreachable (503), never hangs. */
  readonly #redis: Redis;
  /** The workers': their commands wait for a reconnection (BullMQ's blocking reads need it). */
  readonly #workRedis: Redis;
  readonly #queues: Map<JobKind, Queue>;
  readonly #workers: Worker[];
  /** Jobs this replica runs now, to stop their work when it shuts down. */
  readonly #running = new Set<AbortController>();
  #closing = false;

  constructor(
    url: string,
    private readonly work: JobWork,
    private readonly settings: JobSettings & { stallIntervalMs: number },
    log: (error: Error) => void = () => undefined,
  ) {
    this.#redis = new Redis(url, { maxRetriesPerRequest: 1 });
    this.#workRedis = new Redis(url, { maxRetriesPerRequest: null });
    for (const client of [this.#redis, this.#workRedis]) client.on('error', log);
    const connection = this.#redis;
    this.#queues = new Map(JOB_KINDS.map((kind) => [kind, new Queue(queueName(kind), { connection, prefix: PREFIX })]));
    for (const queue of this.#queues.values()) queue.on('error', log);
    this.#workers = JOB_KINDS.map((kind) => {
      const worker = new Worker(queueName(kind), (job: Job<JobData, string>) => this.#process(kind, job), {
        connection: this.#workRedis,
        prefix: PREFIX,
        concurrency: settings.concurrency[kind],
        lockDuration: settings.stallIntervalMs,
        stalledInterval: settings.stallIntervalMs,
        maxStalledCount: MAX_STALLS,
      });
      worker.on('error', log);
      return worker;
    });
  }

  check(spec: JobSpec): void {
    this.work.check(spec);
  }

  submit(submission: JobSubmission): Promise<Submitted> {
    return reach(() => this.#submit(submission));
  }

  get(id: string, owner: string | undefined): Promise<JobView | undefined> {
    return reach(() => this.#get(id, owner));
  }

  cancel(id: string, owner: string | undefined): Promise<JobView | undefined> {
    return reach(() => this.#cancel(id, owner));
  }

  queued(): Promise<number> {
    return reach(() => this.#queuedNow());
  }

  async #submit(submission: JobSubmission): Promise<Submitted> {
    const { fingerprint } = fingerprintOf(submission);
    const id = newJobId();
    let slotKey: string | undefined;
    if (submission.idempotencyKey !== undefined) {
      slotKey = `${PREFIX}:jobs:idempotency:${createHash('sha256').update(idempotencySlot(submission.owner, submission.idempotencyKey)).digest('base64url')}`;
      const earlier = await this.#claim(slotKey, { id, fingerprint }, submission.owner);
      if (earlier !== undefined) return earlier;
    }
    if ((await this.#queuedNow()) >= this.settings.maxQueued) {
      if (slotKey !== undefined) await this.#redis.del(slotKey);
      throw queueFull(this.settings.maxQueued);
    }
    const ttl = { age: this.settings.resultTtlSeconds };
    const data: JobData = { request: submission.request, owner: submission.owner ?? null, client: submission.client };
    if (submission.endpoint !== undefined) data.endpoint = submission.endpoint;
    const job = await this.#queue(submission.kind).add(submission.kind, data, { jobId: id, attempts: 1, removeOnComplete: ttl, removeOnFail: ttl });
    return { view: await this.#view(submission.kind, job as Job<JobData, string>, 'queued'), created: true };
  }

  /** Claims an Idempotency-Key for job `claim.id`; the job the key names already, if it names one that is still there. */
  async #claim(slotKey: string, claim: { id: string; fingerprint: string }, owner: string | undefined): Promise<Submitted | undefined> {
    const mine = JSON.stringify(claim);
    for (let attempt = 1; ; attempt++) {
      if ((await this.#redis.set(slotKey, mine, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX')) !== null) return undefined;
      const earlier = JSON.parse((await this.#redis.get(slotKey)) ?? '{}') as { id?: string; fingerprint?: string };
      const view = earlier.id === undefined ? undefined : await this.#get(earlier.id, owner);
      if (view !== undefined) {
        if (earlier.fingerprint !== claim.fingerprint) throw keyReused();
        return { view, created: false };
      }
      // A submission that claimed the key a moment ago may not have added its job yet.
      if (attempt < CLAIM_ATTEMPTS) {
        await sleep(CLAIM_WAIT_MS);
        continue;
      }
      // Its job is gone (expired): the key is free again.
      await this.#redis.set(slotKey, mine, 'EX', IDEMPOTENCY_TTL_SECONDS);
      return undefined;
    }
  }

  async #get(id: string, owner: string | undefined): Promise<JobView | undefined> {
    const found = await this.#find(id, owner);
    if (found === undefined) return undefined;
    const state = await found.job.getState();
    if (state === 'unknown') return undefined;
    const mapped = stateOf[state] ?? 'queued';
    // The job was read before its state: a job that finished in between is read again, with its answer.
    const job = isFinal(mapped) && found.job.finishedOn === undefined ? await this.#queue(found.kind).getJob(id) : found.job;
    if (job === undefined) return undefined;
    const view = await this.#view(found.kind, job as Job<JobData, string>, mapped);
    if (view.expiresAt !== undefined && view.expiresAt <= Date.now()) {
      // BullMQ removes old finished jobs as others finish; one past its time is gone already for clients.
      await job.remove().catch(() => undefined);
      return undefined;
    }
    return view;
  }

  async #cancel(id: string, owner: string | undefined): Promise<JobView | undefined> {
    const view = await this.#get(id, owner);
    if (view === undefined || isFinal(view.state)) return view;
    await this.#redis.set(cancelKey(id), String(Date.now()), 'EX', this.settings.resultTtlSeconds + IDEMPOTENCY_TTL_SECONDS);
    return this.#get(id, owner);
  }

  async #queuedNow(): Promise<number> {
    const counts = await Promise.all([...this.#queues.values()].map((queue) => queue.getJobCounts('waiting', 'prioritized', 'delayed')));
    return counts.reduce((sum, count) => sum + Object.values(count).reduce((a, b) => a + b, 0), 0);
  }

  /**
   * Stops taking jobs and closes the connections without waiting for the jobs running here: their
   * locks lapse and another replica runs them again (a restart loses no job).
   */
  async close(): Promise<void> {
    this.#closing = true;
    for (const controller of this.#running) controller.abort(new Error('the server is shutting down'));
    const graceful = (async () => {
      await Promise.all(this.#workers.map((worker) => worker.close(true)));
      await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
      await Promise.all([this.#redis, this.#workRedis].map((client) => client.quit()));
    })();
    // Redis unreachable: closing politely would wait for it forever.
    await Promise.race([graceful.catch(() => undefined), sleep(CLOSE_WAIT_MS, undefined, { ref: false })]);
    for (const client of [this.#redis, this.#workRedis]) client.disconnect();
  }

  #queue(kind: JobKind): Queue {
    return this.#queues.get(kind)!;
  }

  async #find(id: string, owner: string | undefined): Promise<{ kind: JobKind; job: Job<JobData, string> } | undefined> {
    const jobs = await Promise.all(JOB_KINDS.map((kind) => this.#queue(kind).getJob(id)));
    const index = jobs.findIndex((job) => job !== undefined);
    const job = jobs[index] as Job<JobData, string> | undefined;
    if (job === undefined || (job.data.owner ?? undefined) !== owner) return undefined;
    return { kind: JOB_KINDS[index]!, job };
  }

  async #view(kind: JobKind, job: Job<JobData, string>, state: JobState): Promise<JobView> {
    const ttlMs = this.settings.resultTtlSeconds * 1000;
    const progress = isProgress(job.progress) ? job.progress : { done: 0, total: 1 };
    const view: JobView = { id: job.id!, kind, state, progress: { ...progress }, createdAt: job.timestamp };
    if (job.data.endpoint !== undefined) view.endpoint = job.data.endpoint;
    if (job.processedOn !== undefined && state !== 'queued') view.startedAt = job.processedOn;
    if (!isFinal(state)) {
      // A cancelled job is cancelled from the moment its key is set, whichever replica notices it.
      const cancelledAt = await this.#redis.get(cancelKey(view.id));
      if (cancelledAt !== null) Object.assign(view, { state: 'cancelled', finishedAt: Number(cancelledAt), expiresAt: Number(cancelledAt) + ttlMs });
      return view;
    }
    const finishedAt = job.finishedOn ?? Date.now();
    Object.assign(view, { finishedAt, expiresAt: finishedAt + ttlMs });
    if (state === 'succeeded') view.result = job.returnvalue;
    else if (job.failedReason === CANCELLED) view.state = 'cancelled';
    else view.problem = job.failedReason.startsWith('{') ? job.failedReason : this.work.problemOf(new Error(job.failedReason));
    return view;
  }

  /** Runs one job on this replica: its progress written every CANCEL_POLL_MS, its cancel key looked at as often. */
  async #process(kind: JobKind, job: Job<JobData, string>): Promise<string> {
    const id = job.id!;
    // A job cancelled while it waited fails as cancelled without running; no domain failure is retried.
    if ((await this.#workRedis.get(cancelKey(id))) !== null) throw new UnrecoverableError(CANCELLED);
    const controller = new AbortController();
    this.#running.add(controller);
    let latest: JobProgress | undefined;
    const tick = async () => {
      if ((await this.#workRedis.get(cancelKey(id))) !== null) controller.abort(new Error('the job was cancelled'));
      if (latest !== undefined) {
        const progress = latest;
        latest = undefined;
        await job.updateProgress({ ...progress });
      }
    };
    const timer = setInterval(() => void tick().catch(() => undefined), CANCEL_POLL_MS);
    try {
      const { data } = job;
      const json = await this.work.run(
        { kind, endpoint: data.endpoint, request: data.request, owner: data.owner ?? undefined, client: data.client },
        { signal: controller.signal, onProgress: (progress) => (latest = progress) },
      );
      const last = latest ?? (isProgress(job.progress) ? job.progress : undefined);
      const total = last?.total ?? 1;
      await job.updateProgress({ ...last, done: total, total });
      return json;
    } catch (error) {
      // Shutting down: the job is left to lapse (its lock is no longer renewed) and run again by another replica.
      if (this.#closing) await new Promise<never>(() => undefined);
      if (controller.signal.aborted) throw new UnrecoverableError(CANCELLED);
      throw new UnrecoverableError(this.work.problemOf(error));
    } finally {
      clearInterval(timer);
      this.#running.delete(controller);
    }
  }
}

/** A failure to reach Redis as the problem a client gets: 503, try again (a problem already made passes as it is). */
async function reach<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof HttpProblem) throw error;
    throw new HttpProblem(503, 'overloaded', 'The job store (Redis) cannot be reached; send the request again shortly', {}, { headers: { 'retry-after': '5' }, cause: error });
  }
}

function isProgress(value: unknown): value is JobProgress {
  return typeof value === 'object' && value !== null && typeof (value as Partial<JobProgress>).done === 'number';
}

function queueName(kind: JobKind): string {
  return `jobs-${kind}`;
}

function cancelKey(id: string): string {
  return `${PREFIX}:jobs:cancel:${id}`;
}
