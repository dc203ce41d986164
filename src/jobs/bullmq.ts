// The Redis backend (REDIS_URL): BullMQ queues, one per kind, shared by every replica. Each replica
// submits to them and works on them (at most JOBS_CONCURRENCY_<KIND> jobs at once); a job's state,
// progress and answer live in Redis, so any replica answers for any job.
//
// What lives where (docs/jobs.md):
// - the BullMQ job holds only who submitted it and how many bytes it holds: reading a job's state
//   (GET, event streams) never loads its request or its answer;
// - its request body is a key of its own, read only by the worker that runs it, deleted when the
//   job finishes or is cancelled;
// - its answer is a key of its own with the result's lifetime, read once per replica (the routes
//   keep one Buffer per finished job);
// - a ledger (three keys, changed only by one Lua script) counts each client's waiting jobs and
//   bytes, and everyone's, against JOBS_MAX_QUEUED(_PER_CLIENT) and JOBS_MAX_BYTES(_PER_CLIENT);
// - an Idempotency-Key is claimed by one atomic SET-if-absent that stores the body's hash before
//   the body is stored, so concurrent retries make one job and another body is refused every time.
//
// A replica that dies mid-job stops renewing the job's lock: BullMQ's stalled-job check on another
// replica puts the job back in its queue within about two JOBS_STALL_INTERVAL_MS, and it is run
// again from the start. A replica that is alive renews its locks every quarter of that interval,
// so a Redis outage shorter than about three quarters of it re-runs nothing (the renewal waits for
// the connection and lands before the lock lapses). Cancelling sets a key, only while the job is
// not finished (atomically), that every replica's running job looks at every CANCEL_POLL_MS; a
// cancelled job is reported cancelled whatever its work did after.

import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { isFinal, JOB_KINDS, type JobBackend, type JobKind, type JobProgress, type JobSettings, type JobSpec, type JobState, type JobSubmission, type JobView, type JobWork, type Submitted } from './types.js';
import { HttpProblem } from '../service/problem.js';
import { answerTooLarge, fingerprintOf, idempotencySlot, keyReused, newJobId, storeLimitProblem, type StoreLimit } from './submission.js';

/** What a job holds in BullMQ besides its kind (its queue): never its request, never its answer. */
interface JobData {
  endpoint?: JobSubmission['endpoint'];
  owner: string | null;
  client: string;
  /** Its Idempotency-Key's Redis key, forgotten with the job. */
  slot?: string;
}

/** BullMQ's keys and ours start with this. */
const PREFIX = 'adjoint';
/** A job's failedReason when it was cancelled (any other reason is its problem's JSON). */
const CANCELLED = 'adjoint:cancelled';
/** How often a running job looks for its cancel key and writes its progress. */
const CANCEL_POLL_MS = 250;
/** How many times a job may be taken back from a replica that stopped (then it fails). */
const MAX_STALLS = 2;
/** How long a retry waits for the job of an Idempotency-Key claimed by a submission still storing it (then 409, retry). */
const CLAIM_WAIT_MS = 10_000;
const CLAIM_POLL_MS = 50;
/** How old a claim whose job never appeared must be to be taken over (its submission died before storing the job). */
const CLAIM_STALE_MS = 120_000;
/** How long closing waits for Redis before it drops the connections. */
const CLOSE_WAIT_MS = 3000;
/** How long a job's request, its ledger entry and its claim outlive it at most when its job is lost (a replica died and BullMQ gave up on it). */
const LOST_JOB_SECONDS = 7 * 24 * 3600;

const stateOf: Record<string, JobState> = {
  waiting: 'queued',
  prioritized: 'queued',
  delayed: 'queued',
  'waiting-children': 'queued',
  active: 'running',
  completed: 'succeeded',
  failed: 'failed',
};

/**
 * The ledger of what each client holds (KEYS: entries, counts, expiries). An entry per job:
 * "client TAB bytes TAB queued"; counts: q and b for everyone, q:<client> and b:<client> per client;
 * expiries: when each entry is released by itself (a finished job's expiry; a lost job's, later).
 * ARGV: op, now, id, then the op's own.
 */
const LEDGER_SCRIPT = `
local entries, counts, expiries = KEYS[1], KEYS[2], KEYS[3]
local op, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local function count(field) return tonumber(redis.call('HGET', counts, field) or '0') end
local function add(client, queued, bytes)
  if queued ~= 0 then
    redis.call('HINCRBY', counts, 'q', queued)
    redis.call('HINCRBY', counts, 'q:' .. client, queued)
  end
  if bytes ~= 0 then
    redis.call('HINCRBY', counts, 'b', bytes)
    redis.call('HINCRBY', counts, 'b:' .. client, bytes)
  end
  if count('q:' .. client) <= 0 and count('b:' .. client) <= 0 then redis.call('HDEL', counts, 'q:' .. client, 'b:' .. client) end
end
local function entry(job)
  local text = redis.call('HGET', entries, job)
  if not text then return nil end
  local client, bytes, queued = string.match(text, '^(.*)\t(%d+)\t(%d)$')
  return client, tonumber(bytes), tonumber(queued)
end
local function release(job)
  local client, bytes, queued = entry(job)
  if client then add(client, -queued, -bytes) end
  redis.call('HDEL', entries, job)
  redis.call('ZREM', expiries, job)
end
for _, due in ipairs(redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, 100)) do release(due) end
if op == 'reserve' then
  local client, bytes, expires = ARGV[4], tonumber(ARGV[5]), ARGV[6]
  if count('q:' .. client) + 1 > tonumber(ARGV[7]) then return 'client-queued' end
  if count('b:' .. client) + bytes > tonumber(ARGV[8]) then return 'client-bytes' end
  if count('q') + 1 > tonumber(ARGV[9]) then return 'queued' end
  if count('b') + bytes > tonumber(ARGV[10]) then return 'bytes' end
  redis.call('HSET', entries, id, client .. '\t' .. bytes .. '\t1')
  add(client, 1, bytes)
  redis.call('ZADD', expiries, expires, id)
  return 'ok'
elseif op == 'start' then
  local client, bytes, queued = entry(id)
  if client and queued == 1 then
    redis.call('HSET', entries, id, client .. '\t' .. bytes .. '\t0')
    add(client, -1, 0)
  end
elseif op == 'settle' then
  local client, bytes, queued = entry(id)
  if client then
    local held = tonumber(ARGV[4])
    -- An answer past what its client, or everyone, may keep is refused (ARGV[6], ARGV[7]: those bounds).
    if ARGV[6] and held > bytes then
      if count('b:' .. client) + held - bytes > tonumber(ARGV[6]) then return 'client-bytes' end
      if count('b') + held - bytes > tonumber(ARGV[7]) then return 'bytes' end
    end
    redis.call('HSET', entries, id, client .. '\t' .. held .. '\t0')
    add(client, -queued, held - bytes)
    redis.call('ZADD', expiries, ARGV[5], id)
  end
elseif op == 'release' then
  release(id)
elseif op == 'queued' then
  return count('q')
end
return 'ok'
`;

/** Claims an Idempotency-Key (KEYS[1]) with "id fingerprint claimedAt" unless it is held: then what holds it. */
const CLAIM_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
`;

/** Replaces (ARGV[2], with EX ARGV[3]) or, without ARGV[2], deletes an Idempotency-Key (KEYS[1]) only while it still holds ARGV[1]. */
const SWAP_CLAIM_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) else redis.call('DEL', KEYS[1]) end
return 1
`;

/** Cancels a job (KEYS: its BullMQ hash, its cancel key) only while it is not finished: ARGV now, lifetime (ms). */
const CANCEL_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'finishedOn') == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX')
return 1
`;

const LEDGER_KEYS = [`${PREFIX}:jobs:ledger`, `${PREFIX}:jobs:held`, `${PREFIX}:jobs:expiries`];

export class BullMqJobs implements JobBackend {
  readonly name = 'bullmq' as const;
  /** Submissions, reads and cancels: a command fails soon while Redis is unreachable (503), never hangs. */
  readonly #redis: Redis;
  /** The workers': their commands wait for a reconnection (BullMQ's blocking reads and lock renewals need it). */
  readonly #workRedis: Redis;
  readonly #queues: Map<JobKind, Queue>;
  readonly #workers: Worker[];
  /** Jobs this replica runs now, by id: their work is stopped when it shuts down, and never started twice here. */
  readonly #running = new Map<string, { controller: AbortController; done: Promise<string> }>();
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
        // A lock lapses JOBS_STALL_INTERVAL_MS after its last renewal; renewed at least every quarter
        // of it (BullMQ looks every half of lockRenewTime and renews locks older than that).
        lockDuration: settings.stallIntervalMs,
        lockRenewTime: settings.stallIntervalMs / 4,
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

  get(id: string, owner: string | undefined, options: { answer?: boolean } = {}): Promise<JobView | undefined> {
    return reach(() => this.#get(id, owner, options.answer !== false));
  }

  cancel(id: string, owner: string | undefined): Promise<JobView | undefined> {
    return reach(() => this.#cancel(id, owner));
  }

  async queued(): Promise<number> {
    return reach(async () => Number(await this.#ledger(this.#redis, 'queued', '-')));
  }

  async #submit(submission: JobSubmission): Promise<Submitted> {
    const { fingerprint } = fingerprintOf(submission);
    const body = JSON.stringify(submission.request);
    const bytes = Buffer.byteLength(body);
    const id = newJobId();
    let claim: { key: string; value: string } | undefined;
    if (submission.idempotencyKey !== undefined) {
      const key = `${PREFIX}:jobs:idempotency:${createHash('sha256').update(idempotencySlot(submission.owner, submission.idempotencyKey)).digest('base64url')}`;
      const value = `${id} ${fingerprint} ${Date.now()}`;
      const earlier = await this.#claim(key, value, fingerprint, submission.owner);
      if (earlier !== undefined) return earlier;
      claim = { key, value };
    }
    const unclaim = async () => {
      if (claim !== undefined) await this.#redis.eval(SWAP_CLAIM_SCRIPT, 1, claim.key, claim.value);
    };
    const now = Date.now();
    const reserved = (await this.#ledger(this.#redis, 'reserve', id, submission.client, bytes, now + LOST_JOB_SECONDS * 1000, this.settings.maxQueuedPerClient, this.settings.maxBytesPerClient, this.settings.maxQueued, this.settings.maxBytes)) as StoreLimit | 'ok';
    if (reserved !== 'ok') {
      await unclaim();
      throw storeLimitProblem(reserved, this.settings);
    }
    try {
      await this.#redis.set(bodyKey(id), body, 'EX', LOST_JOB_SECONDS);
      const ttl = { age: this.settings.resultTtlSeconds };
      const data: JobData = { owner: submission.owner ?? null, client: submission.client };
      if (submission.endpoint !== undefined) data.endpoint = submission.endpoint;
      if (claim !== undefined) data.slot = claim.key;
      const job = await this.#queue(submission.kind).add(submission.kind, data, { jobId: id, attempts: 1, removeOnComplete: ttl, removeOnFail: ttl });
      return { view: (await this.#view(submission.kind, job as Job<JobData, string>, 'queued', false))!, created: true };
    } catch (error) {
      await Promise.allSettled([this.#ledger(this.#redis, 'release', id), this.#redis.del(bodyKey(id)), unclaim()]);
      throw error;
    }
  }

  /**
   * Claims an Idempotency-Key for a new job (undefined), or answers with the job it names. Another
   * body is refused while the key names a job, or a submission that is storing one.
   */
  async #claim(key: string, value: string, fingerprint: string, owner: string | undefined): Promise<Submitted | undefined> {
    const started = Date.now();
    for (;;) {
      const held = (await this.#redis.eval(CLAIM_SCRIPT, 1, key, value, LOST_JOB_SECONDS)) as string | null;
      if (held === null) return undefined;
      const [id = '', heldPrint, at] = held.split(' ');
      const view = await this.#get(id, owner, false);
      if (view !== undefined) {
        if (heldPrint !== fingerprint) throw keyReused();
        return { view, created: false };
      }
      // Its job is gone (expired, deleted; its key is forgotten with it), or its submission died before storing it: the key is free again.
      if (Date.now() - Number(at) >= CLAIM_STALE_MS) {
        if ((await this.#redis.eval(SWAP_CLAIM_SCRIPT, 1, key, held, value, LOST_JOB_SECONDS)) === 1) return undefined;
        continue;
      }
      // Claimed by a submission that is storing its job now (a large body takes a while).
      if (heldPrint !== fingerprint) throw keyReused();
      if (Date.now() - started >= CLAIM_WAIT_MS) throw claimPending();
      await sleep(CLAIM_POLL_MS);
    }
  }

  async #get(id: string, owner: string | undefined, answer: boolean): Promise<JobView | undefined> {
    const found = await this.#find(id, owner);
    if (found === undefined) return undefined;
    const state = await found.job.getState();
    if (state === 'unknown') return undefined;
    const mapped = stateOf[state] ?? 'queued';
    // The job was read before its state: a job that finished in between is read again.
    const job = isFinal(mapped) && found.job.finishedOn === undefined ? await this.#queue(found.kind).getJob(id) : found.job;
    if (job === undefined) return undefined;
    const view = await this.#view(found.kind, job as Job<JobData, string>, mapped, answer);
    if (view === undefined) return undefined;
    if (view.expiresAt !== undefined && view.expiresAt <= Date.now()) {
      // BullMQ removes old finished jobs as others finish; one past its time is gone already for clients.
      await this.#remove(found.kind, job as Job<JobData, string>);
      return undefined;
    }
    return view;
  }

  async #cancel(id: string, owner: string | undefined): Promise<JobView | undefined> {
    const found = await this.#find(id, owner);
    if (found === undefined) return undefined;
    const view = await this.#get(id, owner, false);
    if (view === undefined) return undefined;
    if (isFinal(view.state)) {
      // A finished job is removed, its answer with it: its bytes count against its client no more.
      await this.#remove(found.kind, found.job);
      return view;
    }
    const lifetimeMs = (this.settings.resultTtlSeconds + LOST_JOB_SECONDS) * 1000;
    const cancelled = await this.#redis.eval(CANCEL_SCRIPT, 2, this.#queue(found.kind).toKey(id), cancelKey(id), Date.now(), lifetimeMs);
    // A cancelled job no longer waits: its client may queue another at once.
    if (cancelled === 1) await this.#ledger(this.#redis, 'start', id);
    return this.#get(id, owner, false);
  }

  /** Removes a finished (or expired) job and everything it holds. */
  async #remove(kind: JobKind, job: Job<JobData, string>): Promise<void> {
    const id = job.id!;
    await job.remove().catch(() => undefined);
    const keys = [answerKey(id), bodyKey(id), cancelKey(id)];
    await this.#redis.del(...keys);
    if (job.data.slot !== undefined) {
      const held = await this.#redis.get(job.data.slot);
      if (held?.startsWith(`${id} `)) await this.#redis.eval(SWAP_CLAIM_SCRIPT, 1, job.data.slot, held);
    }
    await this.#ledger(this.#redis, 'release', id);
    void kind;
  }

  #ledger(redis: Redis, op: 'reserve' | 'start' | 'settle' | 'release' | 'queued', id: string, ...args: (string | number)[]): Promise<unknown> {
    return redis.eval(LEDGER_SCRIPT, LEDGER_KEYS.length, ...LEDGER_KEYS, op, Date.now(), id, ...args);
  }

  /**
   * Stops taking jobs and closes the connections without waiting for the jobs running here: their
   * locks lapse and another replica runs them again (a restart loses no job).
   */
  async close(): Promise<void> {
    this.#closing = true;
    for (const { controller } of this.#running.values()) controller.abort(new Error('the server is shutting down'));
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

  /** The job as a client sees it; undefined when its answer is asked for and is gone. */
  async #view(kind: JobKind, job: Job<JobData, string>, state: JobState, answer: boolean): Promise<JobView | undefined> {
    const ttlMs = this.settings.resultTtlSeconds * 1000;
    const progress = isProgress(job.progress) ? job.progress : { done: 0, total: 1 };
    const view: JobView = { id: job.id!, kind, state, progress: { ...progress }, createdAt: job.timestamp };
    if (job.data.endpoint !== undefined) view.endpoint = job.data.endpoint;
    if (job.processedOn !== undefined && state !== 'queued') view.startedAt = job.processedOn;
    // A cancelled job is cancelled from the moment its key is set, whichever replica notices it,
    // whatever its work did after (the key is set only while the job is not finished).
    const cancelledAt = await this.#redis.get(cancelKey(view.id));
    if (cancelledAt !== null) return Object.assign(view, { state: 'cancelled', finishedAt: Number(cancelledAt), expiresAt: Number(cancelledAt) + ttlMs });
    if (!isFinal(state)) return view;
    const finishedAt = job.finishedOn ?? Date.now();
    Object.assign(view, { finishedAt, expiresAt: finishedAt + ttlMs });
    if (state === 'succeeded') {
      if (!answer) return view;
      // A job finished by a replica of an earlier version holds its answer as BullMQ's return value.
      const result = (await this.#redis.get(answerKey(view.id))) ?? (job.returnvalue || null);
      if (result === null) return undefined;
      view.result = result;
    } else if (job.failedReason === CANCELLED) view.state = 'cancelled';
    else if (answer) view.problem = job.failedReason.startsWith('{') ? job.failedReason : this.work.problemOf(new Error(job.failedReason));
    return view;
  }

  /** Runs one job on this replica (once: BullMQ handing back a job this replica still runs gets the same run). */
  #process(kind: JobKind, job: Job<JobData, string>): Promise<string> {
    const id = job.id!;
    const running = this.#running.get(id);
    if (running !== undefined) return running.done;
    const controller = new AbortController();
    const done = this.#run(kind, job, controller).finally(() => this.#running.delete(id));
    this.#running.set(id, { controller, done });
    return done;
  }

  /** A job's work: its request read here only, its progress written every CANCEL_POLL_MS, its cancel key looked at as often. */
  async #run(kind: JobKind, job: Job<JobData, string>, controller: AbortController): Promise<string> {
    const id = job.id!;
    const redis = this.#workRedis;
    const expires = () => Date.now() + this.settings.resultTtlSeconds * 1000;
    // A job cancelled while it waited fails as cancelled without running; no domain failure is retried.
    if ((await redis.get(cancelKey(id))) !== null) {
      await Promise.all([redis.del(bodyKey(id)), this.#ledger(redis, 'settle', id, 0, expires())]);
      throw new UnrecoverableError(CANCELLED);
    }
    await this.#ledger(redis, 'start', id);
    let latest: JobProgress | undefined;
    const tick = async () => {
      if ((await redis.get(cancelKey(id))) !== null) controller.abort(new Error('the job was cancelled'));
      if (latest !== undefined) {
        const progress = latest;
        latest = undefined;
        await job.updateProgress({ ...progress });
      }
    };
    const timer = setInterval(() => void tick().catch(() => undefined), CANCEL_POLL_MS);
    let outcome: { json: string } | { problem: string };
    try {
      const body = await redis.get(bodyKey(id));
      // A job queued by a replica of an earlier version holds its request in BullMQ's data.
      const earlier = (job.data as { request?: unknown }).request;
      if (body === null && earlier === undefined) throw new HttpProblem(503, 'overloaded', 'The job’s request is no longer in the job store (Redis lost it): submit it again');
      const { data } = job;
      const json = await this.work.run(
        { kind, endpoint: data.endpoint, request: body === null ? earlier : (JSON.parse(body) as unknown), owner: data.owner ?? undefined, client: data.client },
        { signal: controller.signal, onProgress: (progress) => (latest = progress) },
      );
      if ((await redis.get(cancelKey(id))) !== null) controller.abort(new Error('the job was cancelled'));
      controller.signal.throwIfAborted();
      const last = latest ?? (isProgress(job.progress) ? job.progress : undefined);
      const total = last?.total ?? 1;
      await job.updateProgress({ ...last, done: total, total });
      outcome = { json };
    } catch (error) {
      // Shutting down: the job is left to lapse (its lock is no longer renewed) and run again by another replica.
      if (this.#closing) await new Promise<never>(() => undefined);
      if (controller.signal.aborted) {
        await Promise.all([redis.del(bodyKey(id)), this.#ledger(redis, 'settle', id, 0, expires())]);
        throw new UnrecoverableError(CANCELLED);
      }
      outcome = { problem: this.work.problemOf(error) };
    } finally {
      clearInterval(timer);
    }
    // The answer (or problem) is what the job holds from now on; its request is let go. An answer
    // past what its client (or everyone) may keep is dropped: the job fails saying so.
    const ttlMs = this.settings.resultTtlSeconds * 1000;
    if ('json' in outcome) {
      const bytes = Buffer.byteLength(outcome.json);
      const kept = await this.#ledger(redis, 'settle', id, bytes, expires(), this.settings.maxBytesPerClient, this.settings.maxBytes);
      if (kept === 'ok') await redis.set(answerKey(id), outcome.json, 'PX', ttlMs);
      else outcome = { problem: JSON.stringify(answerTooLarge(kept as 'client-bytes' | 'bytes', bytes, this.settings)) };
    }
    await Promise.all([
      redis.del(bodyKey(id)),
      'problem' in outcome ? this.#ledger(redis, 'settle', id, Buffer.byteLength(outcome.problem), expires()) : undefined,
      job.data.slot === undefined ? undefined : redis.expire(job.data.slot, this.settings.resultTtlSeconds),
    ]);
    if ('problem' in outcome) throw new UnrecoverableError(outcome.problem);
    return '';
  }
}

function claimPending(): HttpProblem {
  return new HttpProblem(409, 'idempotency_conflict', 'A submission with this Idempotency-Key is still being stored: send it again in a few seconds to get its job', {}, {
    headers: { 'retry-after': '5' },
  });
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

function bodyKey(id: string): string {
  return `${PREFIX}:jobs:body:${id}`;
}

function answerKey(id: string): string {
  return `${PREFIX}:jobs:answer:${id}`;
}
