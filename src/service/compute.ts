// Where the work runs. Nothing a request asks for may stall the event loop, so a request is
// handled here only when it is cheap on every count: its function is small (or already planned),
// its planning fits INLINE_PLAN_NODES, its estimated work fits INLINE_FLOPS and its answer fits
// INLINE_ANSWER_ELEMENTS. Everything else is planned, run and serialised on a worker thread with a
// hard time limit and a heap limit (a worker past it fails its request with 503 and is replaced).
// Grading and graph layout always run on a worker. Every thread keeps its own cache of prepared
// functions within its share of CACHE_MAX_BYTES.

import { randomUUID } from 'node:crypto';
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { EngineError, isEngineError } from '../engine/errors.js';
import { Engine } from '../engine/engine.js';
import { PlanningDeferred, withPlanningAllowance } from '../engine/prepare.js';
import { analyze, type Analysis, type AnalyzeRequest } from '../explain/analyze.js';
import { graphPicture, renderSvg, type GraphRequest, type Picture } from '../explain/render.js';
import { planTrace, type TraceRequest } from '../explain/trace.js';
import { grade } from '../grade/grade.js';
import { completeAnswer, drawPicture, mapElements, writeAnswer, type DrawnPicture, type ProbeDraft } from '../probe/answer.js';
import type { Picture as SaliencyPicture } from '../probe/picture.js';
import type { GradeLimits, GradeRequest } from '../grade/types.js';
import type { Limits } from '../engine/prepare.js';
import { HttpProblem } from './problem.js';
import { jsonBytes } from './json-bytes.js';
import { msgpackBytes } from './msgpack-answer.js';
import { planRequest, readInputsOnce, withAlternative, type FunctionRequest, type Job, type OperationName, type RequestTable } from './request.js';

export interface ComputeOptions {
  limits: Limits;
  cacheSize: number;
  /** Bytes of heap every thread's cache of prepared functions may hold in all (split evenly). */
  cacheBytes?: number;
  /** Jobs estimated at or below this many flops run on the event loop. */
  inlineFlops: number;
  /** Answers of at most this many numbers are built on the event loop; larger ones on a worker. */
  inlineAnswerElements?: number;
  /** Estimated derived-graph steps the event loop may build while planning one request. */
  inlinePlanNodes?: number;
  /** Worker threads (0: everything inline; for tests). */
  workers: number;
  /** Megabytes of heap of each worker thread. */
  workerHeapMb?: number;
  /** The nice value of worker threads (Linux): above 0, heavy work yields the CPU to the event loop. */
  workerNice?: number;
  /** Tasks that may wait for a worker before new ones are refused (503 overloaded). */
  maxQueue: number;
  /** A worker task's hard time limit; past it the worker is replaced (503 timeout). */
  timeoutMs: number;
}

/** An answer already serialised to JSON (UTF-8): a large answer is built and serialised on a worker. */
export class SerializedAnswer {
  /** `json` holds MessagePack when `format` says so (the request asked for `Accept: application/msgpack`). */
  constructor(
    readonly json: Uint8Array,
    readonly format: 'json' | 'msgpack' = 'json',
  ) {}
}

/** Whether a task's answer is written as MessagePack (the service set its request's encoding so). */
function answersMsgpack(task: WorkerTask): boolean {
  const holder = task.op === 'probe-answer' ? (task as { draft?: unknown }).draft : (task as { request?: unknown }).request;
  return typeof holder === 'object' && holder !== null && (holder as { encoding?: unknown }).encoding === 'msgpack';
}

/** What the routes send: an answer object, or its JSON already serialised. */
export type Answer = object | SerializedAnswer;

/** A worker's cache, reported after every task (on a broadcast channel) so /metrics can add up the process. */
export interface CacheReport {
  thread: number;
  functions: number;
  bytes: number;
}

/** A worker's first message: its modules (the engine, the kernel backend) are loaded. */
export interface ReadyReport {
  thread: number;
  ready: true;
}

/** How long closing waits for workers still loading before it stops them anyway. */
const WORKER_LOAD_WAIT_MS = 5_000;

/** What a worker answers: the result, or the engine error it raised (errors do not cross threads intact). */
export type WorkerAnswer = (
  | { ok: true; result: unknown; flops?: number | undefined }
  | { ok: true; json: Uint8Array; flops?: number | undefined }
  | { ok: false; error: { code: EngineError['code']; message: string; position?: { line: number; column: number }; node?: string; path?: (string | number)[] } }
);

/** What a worker can be asked to do: an operation, a trace, an analysis, a graph picture, a layout, a grading. */
export type WorkerTask =
  | { op: OperationName; request: unknown; serialize?: boolean; maxFlops?: number }
  | { op: 'trace'; request: TraceRequest; serialize?: boolean }
  | { op: 'svg'; dot: string }
  | { op: 'analyze'; request: AnalyzeRequest }
  | { op: 'graph'; request: GraphRequest; maxSvgNodes: number }
  | { op: 'grade'; request: GradeRequest; limits: GradeLimits; serialize?: boolean }
  /** A probe's saliency picture, drawn as PNG. */
  | { op: 'picture'; picture: SaliencyPicture }
  /** A probe's answer from its draft: the picture drawn, the maps written, the JSON serialised. */
  | { op: 'probe-answer'; draft: ProbeDraft };

const inTypeScript = import.meta.url.endsWith('.ts');

/** How one call may be bounded by its caller (the prober bounds a whole probe this way). */
export interface RunOptions {
  /** Cancels the work: a job not yet started is refused, a running worker task is stopped. */
  signal?: AbortSignal | undefined;
  /**
   * A budget of estimated work shared by several calls: each job's estimate is checked against
   * `remaining` before it runs (422 limit_exceeded past it) and debited from it.
   */
  allowance?: { remaining: number } | undefined;
}

/** Past these sizes a request is planned (parsed, checked, differentiated) on a worker outright. */
const LARGE_EXPR_CHARACTERS = 2000;
const LARGE_GRAPH_NODES = 500;
const LARGE_POINT_COUNT = 100;
const MANY_INPUTS = 64;
/** Analyses and graph pictures build several derived graphs outside the cache: only small ones here. */
const SMALL_EXPLAIN_CHARACTERS = 500;
const SMALL_EXPLAIN_NODES = 50;

/** Node's BroadcastChannel has unref() (so it does not keep a thread alive); @types/node 20 omits it. */
export function unrefChannel(channel: BroadcastChannel): void {
  const withUnref: { unref?: () => void } = channel;
  withUnref.unref?.();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** An error a worker thread dies of when it exhausts its heap (Node's worker resourceLimits). */
function isOutOfMemory(e: unknown): boolean {
  return e instanceof Error && ((e as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' || /out of memory/i.test(e.message));
}

export class Compute {
  readonly engine: Engine;
  private readonly pool: Piscina | undefined;
  private readonly options: ComputeOptions;
  private readonly counts = { inline: 0, offloaded: 0, timedOut: 0, outOfMemory: 0, deferred: 0 };
  /** The latest cache report of each worker thread. */
  private readonly workerCaches = new Map<number, CacheReport>();
  /** Where the workers report their caches (and that they have loaded). */
  private readonly cacheReports: BroadcastChannel | undefined;
  /** Workers whose modules have loaded (by thread id). */
  private readonly readyWorkers = new Set<number>();
  private onWorkerReady: (() => void) | undefined;

  constructor(options: ComputeOptions) {
    this.options = options;
    const threads = options.workers + 1;
    const cacheBytes = Math.floor((options.cacheBytes ?? 256 * 2 ** 20) / threads);
    this.engine = new Engine(options.limits, { cacheSize: options.cacheSize, cacheBytes });
    if (options.workers > 0) {
      const cacheChannel = `adjoint-cache-${randomUUID()}`;
      const reports = new BroadcastChannel(cacheChannel);
      reports.onmessage = (event) => {
        const report = (event as { data: CacheReport | ReadyReport }).data;
        if ('ready' in report) {
          this.readyWorkers.add(report.thread);
          this.onWorkerReady?.();
        } else this.workerCaches.set(report.thread, report);
      };
      unrefChannel(reports);
      this.cacheReports = reports;
      const filename = new URL(`./worker.${inTypeScript ? 'ts' : 'js'}`, import.meta.url).href;
      this.pool = new Piscina({
        filename,
        minThreads: 1,
        maxThreads: options.workers,
        maxQueue: options.maxQueue,
        idleTimeout: 60_000,
        workerData: { limits: options.limits, cacheSize: options.cacheSize, cacheBytes, cacheChannel, nice: options.workerNice ?? 10 },
        resourceLimits: { maxOldGenerationSizeMb: options.workerHeapMb ?? 768 },
        // Under tests the worker is TypeScript: load it through tsx.
        execArgv: inTypeScript ? ['--import', 'tsx'] : [],
      });
      // A worker that dies is replaced by the pool; its task's promise rejects on its own.
      this.pool.on('error', () => undefined);
    }
  }

  private get inlineAnswerElements(): number {
    return this.options.inlineAnswerElements ?? 20_000;
  }

  /**
   * A large function (a long expression, a big graph, many points or named inputs) is planned
   * on a worker outright: parsing and differentiating it takes long enough to stall the event loop.
   */
  private planElsewhere(request: FunctionRequest): boolean {
    if (this.pool === undefined) return false;
    return (
      (request.expr?.length ?? 0) > LARGE_EXPR_CHARACTERS ||
      (request.graph?.nodes.length ?? 0) > LARGE_GRAPH_NODES ||
      (request.points?.length ?? 0) > LARGE_POINT_COUNT ||
      (isObject(request.at) && Object.keys(request.at).length > MANY_INPUTS)
    );
  }

  /**
   * Plan here within the event loop's planning allowance; undefined when the planning (building
   * the derivative programs) is too large for it and must be done on a worker.
   */
  private planHere(plan: () => Job): Job | undefined {
    if (this.pool === undefined) return plan();
    try {
      return withPlanningAllowance(this.options.inlinePlanNodes ?? 1000, plan);
    } catch (e) {
      if (e instanceof PlanningDeferred) {
        this.counts.deferred++;
        return undefined;
      }
      throw e;
    }
  }

  /** Whether a planned job is cheap enough to run and serialise on the event loop. */
  private cheap(job: Job): boolean {
    return this.pool === undefined || (job.flops <= this.options.inlineFlops && job.answer <= this.inlineAnswerElements);
  }

  /** Plan the request here, then run it here or on a worker; the answer as an object (for the prober). */
  async run<K extends OperationName>(op: K, request: RequestTable[K], options: RunOptions = {}): Promise<Record<string, unknown>> {
    const answer = await this.answerNow(op, request, options, false);
    return answer as Record<string, unknown>;
  }

  /**
   * Like `run`, but for the routes: a large answer comes back already serialised, and the answer of
   * a request cheap enough to run here comes back at once, not as a promise (the route sends it in
   * the same turn); one run on a worker comes as a promise. Errors are thrown, or rejected with.
   */
  respondNow<K extends OperationName>(op: K, request: RequestTable[K], options: RunOptions = {}): Answer | Promise<Answer> {
    return this.answerNow(op, request, options, true);
  }

  /** MAX_INPUTS checked here, before a request with many names is copied to a worker. */
  private checkInputCounts(request: FunctionRequest & { shapes?: unknown }): void {
    if (isObject(request.shapes)) this.engine.checkInputCount(Object.keys(request.shapes).length, ['shapes']);
    if (isObject(request.at)) this.engine.checkInputCount(Object.keys(request.at).length, ['at']);
    request.points?.forEach((at, i) => isObject(at) && this.engine.checkInputCount(Object.keys(at).length, ['points', i]));
  }

  /** The answer, or the promise of it when it is computed on a worker; an engine error names the endpoint it suggests. */
  private answerNow<K extends OperationName>(op: K, request: RequestTable[K], options: RunOptions, serialize: boolean): Answer | Promise<Answer> {
    let answer: Answer | Promise<Answer>;
    try {
      answer = this.start(op, request, options, serialize);
    } catch (e) {
      throw withEndpoint(e);
    }
    return answer instanceof Promise ? answer.catch((e: unknown) => Promise.reject(withEndpoint(e))) : answer;
  }

  /** Plan the request here (or on a worker when it is large), then answer it here when cheap, else on a worker. */
  private start<K extends OperationName>(op: K, request: RequestTable[K], options: RunOptions, serialize: boolean): Answer | Promise<Answer> {
    options.signal?.throwIfAborted();
    this.checkInputCounts(request);
    if (this.planElsewhere(request)) return this.offloadWithin({ op, request, serialize }, options);
    // Inputs read once, here: planning reads them, and a worker gets their memory moved (a route's
    // body, answered once, gives up the elements decoded from it: `serialize` is the routes' call).
    const read = this.pool === undefined ? { request, transfer: [] } : readInputsOnce(this.engine, request, { moveBodyArrays: serialize });
    const job = this.planHere(() => planRequest(this.engine, op, read.request));
    if (job === undefined) return this.offloadWithin({ op, request: read.request, serialize }, options, read.transfer);
    debit(options.allowance, job.flops);
    if (this.cheap(job)) return this.inline(job);
    return this.offload({ op, request: read.request, serialize }, options, read.transfer);
  }

  /** Offload a task planned on the worker: its work is checked against the allowance there and debited here. */
  private async offloadWithin(task: Extract<WorkerTask, { op: OperationName }>, options: RunOptions, transfer: ArrayBuffer[] = []): Promise<Answer> {
    const allowance = options.allowance;
    if (allowance === undefined) return this.offload(task, options, transfer);
    debit(allowance, 0);
    return this.offload({ ...task, maxFlops: Math.min(this.options.limits.maxFlops, allowance.remaining) }, options, transfer);
  }

  /** The lecture's tables: planned here, run here or on a worker like the differentiation operations. */
  async trace(request: TraceRequest): Promise<Answer> {
    this.checkInputCounts(request);
    if (this.planElsewhere(request)) return this.offload({ op: 'trace', request, serialize: true });
    const read = this.pool === undefined ? { request, transfer: [] } : readInputsOnce(this.engine, request);
    const job = this.planHere(() => planTrace(this.engine, read.request));
    if (job === undefined || !this.cheap(job)) return this.offload({ op: 'trace', request: read.request, serialize: true }, {}, read.transfer);
    return this.inline(job);
  }

  /** A small function's explanation is built here; any other on a worker. */
  private explainHere(request: FunctionRequest): boolean {
    if (this.pool === undefined) return true;
    return (
      !this.planElsewhere(request) &&
      (request.expr?.length ?? 0) <= SMALL_EXPLAIN_CHARACTERS &&
      (request.graph?.nodes.length ?? 0) <= SMALL_EXPLAIN_NODES
    );
  }

  /** Shapes and costs: building the derivative graphs of all but a small function is done on a worker. */
  async analyze(request: AnalyzeRequest): Promise<Analysis> {
    this.checkInputCounts(request);
    if (this.explainHere(request)) {
      this.counts.inline++;
      return analyze(this.engine, request);
    }
    return this.offloadValue<Analysis>({ op: 'analyze', request });
  }

  /** The graph picture: DOT built here for a small function; SVG always laid out on a worker. */
  async graph(request: GraphRequest, maxSvgNodes: number): Promise<Picture> {
    this.checkInputCounts(request);
    if (this.explainHere(request)) return graphPicture(this.engine, request, maxSvgNodes, (dot) => this.svg(dot));
    return this.offloadValue<Picture>({ op: 'graph', request, maxSvgNodes });
  }

  /** Lay out a graph (DOT text the service generated) as SVG: Graphviz can take a second on a large graph. */
  async svg(dot: string): Promise<string> {
    if (this.pool === undefined) return renderSvg(dot);
    return (await this.offloadValue<{ svg: string }>({ op: 'svg', dot })).svg;
  }

  /** Grade a class: on a worker when there is a pool (a large class is seconds of work). */
  async grade(request: GradeRequest, limits: GradeLimits, options: RunOptions = {}): Promise<Answer> {
    options.signal?.throwIfAborted();
    if (this.pool === undefined) {
      this.counts.inline++;
      return grade(this.engine, request, limits);
    }
    // A cancelled grading job stops its worker task.
    return this.offload({ op: 'grade', request, limits, serialize: true }, { signal: options.signal });
  }

  /** A probe's picture: drawn (deflated) on a worker when there is a pool, it takes no time of the event loop. */
  async drawPicture(picture: SaliencyPicture): Promise<DrawnPicture> {
    if (this.pool === undefined) {
      this.counts.inline++;
      return drawPicture(picture);
    }
    return this.offloadValue<DrawnPicture>({ op: 'picture', picture });
  }

  /**
   * A probe's answer from its draft: written here when it is small and has no picture; otherwise
   * the picture drawn, the maps written and the JSON serialised on a worker (the draft's arrays are
   * copied there, which is cheap; writing a million numbers as JSON text takes about a second).
   */
  async probeAnswer(draft: ProbeDraft): Promise<Answer> {
    if (this.pool === undefined || (draft.picture === undefined && mapElements(draft) <= this.inlineAnswerElements)) {
      this.counts.inline++;
      return draft.picture === undefined ? writeAnswer(draft, undefined) : completeAnswer(draft);
    }
    return this.offload({ op: 'probe-answer', draft });
  }

  private inline(job: Job): Record<string, unknown> {
    this.counts.inline++;
    return job.run();
  }

  /** Jobs run so far: inline, on workers, stopped at the time limit, failed for memory, planned elsewhere. */
  jobs(): { inline: number; offloaded: number; timedOut: number; outOfMemory: number; deferred: number } {
    return { ...this.counts };
  }

  /** Prepared functions kept, and the bytes they hold, on the event loop and on every worker. */
  caches(): { functions: number; bytes: number } {
    let functions = this.engine.cachedFunctions;
    let bytes = this.engine.cachedBytes;
    for (const report of this.workerCaches.values()) {
      functions += report.functions;
      bytes += report.bytes;
    }
    return { functions, bytes };
  }

  /** Offload a task whose answer is never serialised (an analysis, a picture, a layout). */
  private async offloadValue<T extends object>(task: WorkerTask): Promise<T> {
    const answer = await this.offload<T>(task);
    if (answer instanceof SerializedAnswer) throw new Error(`a ${task.op} task answered serialised JSON`);
    return answer;
  }

  /**
   * Run `task` on a worker. Its result crosses the thread boundary as structured-clone data that
   * `answerTask` made for this very task, so it is typed here as the task's result `T`.
   */
  private async offload<T extends object = object>(task: WorkerTask, options: RunOptions = {}, transfer: ArrayBuffer[] = []): Promise<T | SerializedAnswer> {
    const pool = this.pool!;
    this.counts.offloaded++;
    if (pool.queueSize >= this.options.maxQueue) {
      throw new HttpProblem(503, 'overloaded', `${pool.queueSize} heavy requests are already waiting; send this one again shortly`, {}, {
        headers: { 'retry-after': '2' },
      });
    }
    let answer: WorkerAnswer | Uint8Array;
    try {
      const timeout = AbortSignal.timeout(this.options.timeoutMs);
      const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
      // The inputs' memory moves to the worker (the task's tensors are not used here again).
      answer = (await pool.run(task, { signal, transferList: transfer })) as WorkerAnswer | Uint8Array;
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (e instanceof Error && e.name === 'AbortError') {
        this.counts.timedOut++;
        throw new HttpProblem(503, 'timeout', `the computation took longer than ${this.options.timeoutMs} ms (WORK_TIMEOUT_MS) and was stopped`, {}, {
          headers: { 'retry-after': '5' },
        });
      }
      if (isOutOfMemory(e)) {
        this.counts.outOfMemory++;
        throw new HttpProblem(
          503,
          'out_of_memory',
          `the computation ran out of memory on its worker (WORKER_HEAP_MB = ${this.options.workerHeapMb ?? 768}) and was stopped: ask for less (a smaller function, fewer derivatives or points)`,
          {},
          { headers: { 'retry-after': '5' } },
        );
      }
      throw e;
    }
    // A serialised answer arrives as its bytes alone (moved, not copied).
    if (answer instanceof Uint8Array) return new SerializedAnswer(answer, answersMsgpack(task) ? 'msgpack' : 'json');
    if (answer.ok) {
      if (options.allowance !== undefined && answer.flops !== undefined) options.allowance.remaining -= answer.flops;
      return 'json' in answer ? new SerializedAnswer(answer.json, answersMsgpack(task) ? 'msgpack' : 'json') : (answer.result as T);
    }
    const { code, message, ...where } = answer.error;
    throw new EngineError(code, message, where);
  }

  get pendingTasks(): number {
    return this.pool?.queueSize ?? 0;
  }

  /**
   * Stops the workers. A worker still loading its modules (a shutdown right after start-up) is
   * waited for first, up to WORKER_LOAD_WAIT_MS: terminating a thread in the middle of loading a
   * native library or a module through a loader hook can abort the whole process on Node 20.
   */
  async close(): Promise<void> {
    const pool = this.pool;
    if (pool !== undefined) {
      const loading = () => pool.threads.some((t) => !this.readyWorkers.has(t.threadId));
      if (loading()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, WORKER_LOAD_WAIT_MS);
          this.onWorkerReady = () => {
            if (loading()) return;
            clearTimeout(timer);
            resolve();
          };
        });
        this.onWorkerReady = undefined;
      }
    }
    this.cacheReports?.close();
    await pool?.destroy();
  }
}

/** An engine error with the endpoint it suggests named (the engine names none); any other error as it is. */
function withEndpoint(e: unknown): unknown {
  return isEngineError(e) ? withAlternative(e) : e;
}

/** Debit `flops` from a shared allowance, refusing the job when it would overdraw it. */
function debit(allowance: RunOptions['allowance'], flops: number): void {
  if (allowance === undefined) return;
  if (flops > allowance.remaining) {
    throw new EngineError(
      'limit_exceeded',
      `this evaluation needs about ${flops.toExponential(2)} floating-point operations, more than the ${Math.max(0, allowance.remaining).toExponential(2)} left of its allowance`,
    );
  }
  allowance.remaining -= flops;
}

/** The worker side: an engine of its own (with its own cache), answers that survive the thread boundary. */
export async function answerTask(engine: Engine, task: WorkerTask, reports?: BroadcastChannel): Promise<WorkerAnswer> {
  const answer = await answerTaskOnly(engine, task);
  reports?.postMessage({ thread: threadId, functions: engine.cachedFunctions, bytes: engine.cachedBytes } satisfies CacheReport);
  return answer;
}

function finish(result: object, serialize: boolean | undefined, flops?: number, msgpack = false): WorkerAnswer {
  if (!serialize) return { ok: true, result, flops };
  return { ok: true, json: msgpack ? msgpackBytes(result) : jsonBytes(result) };
}

async function answerTaskOnly(engine: Engine, task: WorkerTask): Promise<WorkerAnswer> {
  try {
    if (task.op === 'svg') return { ok: true, result: { svg: await renderSvg(task.dot) } };
    if (task.op === 'graph') return { ok: true, result: { ...(await graphPicture(engine, task.request, task.maxSvgNodes, renderSvg)) } };
    if (task.op === 'analyze') return { ok: true, result: analyze(engine, task.request) };
    if (task.op === 'grade') return finish(grade(engine, task.request, task.limits), task.serialize);
    if (task.op === 'trace') return finish(planTrace(engine, task.request).run(), task.serialize, undefined, answersMsgpack(task));
    if (task.op === 'picture') return { ok: true, result: drawPicture(task.picture) };
    if (task.op === 'probe-answer') return finish(completeAnswer(task.draft), true, undefined, answersMsgpack(task));
    const job = planRequest(engine, task.op, task.request as never, task.maxFlops);
    return finish(job.run(), task.serialize, job.flops, answersMsgpack(task));
  } catch (e) {
    if (isEngineError(e)) {
      const raised = withAlternative(e);
      const error: Extract<WorkerAnswer, { ok: false }>['error'] = { code: raised.code, message: raised.message };
      if (raised.position) error.position = raised.position;
      if (raised.node !== undefined) error.node = raised.node;
      if (raised.path) error.path = raised.path;
      return { ok: false, error };
    }
    throw e;
  }
}
