// Jobs (README "Jobs"): long work (a probe, a grading, a differentiation) run apart from the
// request that asked for it, with its state, progress and answer kept for a while. One interface,
// two backends: in-process (./in-process.ts, the default) and BullMQ on Redis (./bullmq.ts).
// Nothing here knows HTTP: the routes (routes/jobs.ts) turn views into answers.

export const JOB_KINDS = ['probe', 'grade', 'compute'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** The differentiation endpoints a `compute` job may run: the same operations as POST /<endpoint>. */
export const COMPUTE_ENDPOINTS = ['eval', 'grad', 'jvp', 'vjp', 'jacobian', 'hessian', 'hvp', 'check'] as const;
export type ComputeEndpoint = (typeof COMPUTE_ENDPOINTS)[number];

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** The states a job never leaves. */
export function isFinal(state: JobState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

/** What a job runs: the same body the synchronous endpoint takes. */
export interface JobSpec {
  kind: JobKind;
  /** `compute` jobs: which differentiation endpoint. */
  endpoint?: ComputeEndpoint | undefined;
  request: unknown;
}

/** A job as submitted: what it runs, and on whose behalf. */
export interface JobSubmission extends JobSpec {
  /** The submitting API key's id (undefined: keys are off); only that key sees the job. */
  owner: string | undefined;
  /**
   * Who the submission counts against: the probe's outbound queries (PROBE_CLIENT_QUERIES_PER_MINUTE)
   * and the client's share of the job store (JOBS_MAX_QUEUED_PER_CLIENT, JOBS_MAX_BYTES_PER_CLIENT).
   */
  client: string;
  /** The client's Idempotency-Key: a second submission with it returns the first job. */
  idempotencyKey?: string | undefined;
}

/** How far a job has come: units of work done of the total, and for probes the queries spent. */
export interface JobProgress {
  done: number;
  total: number;
  queries?: number | undefined;
}

/** What a client sees of a job. `result` and `problem` are JSON text, exactly the synchronous endpoint's answer. */
export interface JobView {
  id: string;
  kind: JobKind;
  endpoint?: ComputeEndpoint | undefined;
  state: JobState;
  progress: JobProgress;
  /** Epoch milliseconds. */
  createdAt: number;
  startedAt?: number | undefined;
  finishedAt?: number | undefined;
  /** Epoch ms after which a finished job is removed (404). */
  expiresAt?: number | undefined;
  /** The answer's JSON, when succeeded. */
  result?: string | undefined;
  /** The problem's JSON (application/problem+json), when failed. */
  problem?: string | undefined;
}

/** What running a job may use: a signal that stops it (cancelled), and where to report progress. */
export interface RunContext {
  signal: AbortSignal;
  onProgress(progress: JobProgress): void;
}

/** Runs a job's work; resolves with the answer's JSON text, rejects with the error the endpoint would have answered. */
export interface JobWork {
  /** Checks a submission as the synchronous endpoint checks its body; throws the same 400 problem. */
  check(spec: JobSpec): void;
  run(job: JobSubmission, context: RunContext): Promise<string>;
  /** The problem (as JSON) the synchronous endpoint would have answered for `error`. */
  problemOf(error: unknown): string;
}

/** The submit answer: the job, and whether this call created it (false: an Idempotency-Key's earlier job). */
export interface Submitted {
  view: JobView;
  created: boolean;
}

export interface JobBackend {
  readonly name: 'in-process' | 'bullmq';
  /** Checks a submission's body as its synchronous endpoint would (throws its 400 problem). */
  check(spec: JobSpec): void;
  /**
   * Queues a job; throws a 429 problem past the client's share (JOBS_MAX_QUEUED_PER_CLIENT,
   * JOBS_MAX_BYTES_PER_CLIENT), a 503 past the store's (JOBS_MAX_QUEUED, JOBS_MAX_BYTES), a 422 when
   * the Idempotency-Key was used for another body.
   */
  submit(job: JobSubmission): Promise<Submitted>;
  /**
   * The job, if it exists, has not expired, and belongs to `owner`; else undefined (never says which).
   * With `answer: false` a finished job's `result` and `problem` are left out (not even read).
   */
  get(id: string, owner: string | undefined, options?: { answer?: boolean }): Promise<JobView | undefined>;
  /**
   * Cancels a queued or running job (its queries stop; it stays `cancelled` until it expires); a
   * finished job is removed, its answer's bytes freed. The job as it was left, without its answer.
   */
  cancel(id: string, owner: string | undefined): Promise<JobView | undefined>;
  /** Jobs waiting to start, all kinds (for /metrics and tests). */
  queued(): Promise<number>;
  close(): Promise<void>;
}

/** The settings both backends read (JOBS_* in the configuration). */
export interface JobSettings {
  maxQueued: number;
  concurrency: Record<JobKind, number>;
  resultTtlSeconds: number;
  /** Bytes the waiting and running jobs' bodies and the kept answers may hold, all clients together. */
  maxBytes: number;
  /** The same, and the jobs waiting to start, for one client (its API key, else its address). */
  maxQueuedPerClient: number;
  maxBytesPerClient: number;
}
