// Where the work runs. A request is planned on the event loop (parsing, checking and
// differentiating are cached and cheap for ordinary functions); a job whose estimated cost is small
// runs inline, a larger one on a worker thread with a hard time limit. Large functions are planned
// on a worker too, and grading and graph layout always run there, so no request stalls the others.

import { Piscina } from 'piscina';
import { EngineError, isEngineError } from '../engine/errors.js';
import { Engine, type FunctionRequest, type Job, type OperationName, type RequestTable } from '../engine/operations.js';
import { analyze, type Analysis, type AnalyzeRequest } from '../explain/analyze.js';
import { graphPicture, renderSvg, type GraphRequest, type Picture } from '../explain/render.js';
import { planTrace, type TraceRequest } from '../explain/trace.js';
import { grade } from '../grade/grade.js';
import type { GradeLimits, GradeRequest } from '../grade/types.js';
import type { Limits } from '../engine/prepare.js';
import { HttpProblem } from './problem.js';

export interface ComputeOptions {
  limits: Limits;
  cacheSize: number;
  /** Jobs estimated at or below this many flops run on the event loop. */
  inlineFlops: number;
  /** Worker threads (0: everything inline; for tests). */
  workers: number;
  /** Tasks that may wait for a worker before new ones are refused (503 overloaded). */
  maxQueue: number;
  /** A worker task's hard time limit; past it the worker is replaced (503 timeout). */
  timeoutMs: number;
}

/** What a worker answers: the result, or the engine error it raised (errors do not cross threads intact). */
export type WorkerAnswer =
  | { ok: true; result: Record<string, unknown> }
  | { ok: false; error: { code: EngineError['code']; message: string; position?: { line: number; column: number }; node?: string; path?: (string | number)[] } };

/** What a worker can be asked to do: an operation, a trace, an analysis, a graph picture, a layout, a grading. */
export type WorkerTask =
  | { op: OperationName; request: unknown }
  | { op: 'trace'; request: TraceRequest }
  | { op: 'svg'; dot: string }
  | { op: 'analyze'; request: AnalyzeRequest }
  | { op: 'graph'; request: GraphRequest; maxSvgNodes: number }
  | { op: 'grade'; request: GradeRequest; limits: GradeLimits };

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

/** Past these sizes a request is planned (parsed, checked, differentiated) on a worker too. */
const LARGE_EXPR_CHARACTERS = 5000;
const LARGE_GRAPH_NODES = 1000;
const LARGE_POINT_COUNT = 100;

export class Compute {
  readonly engine: Engine;
  private readonly pool: Piscina | undefined;
  private readonly options: ComputeOptions;
  private readonly counts = { inline: 0, offloaded: 0, timedOut: 0 };

  constructor(options: ComputeOptions) {
    this.options = options;
    this.engine = new Engine(options.limits, options.cacheSize);
    if (options.workers > 0) {
      const filename = new URL(`./worker.${inTypeScript ? 'ts' : 'js'}`, import.meta.url).href;
      this.pool = new Piscina({
        filename,
        minThreads: 1,
        maxThreads: options.workers,
        maxQueue: options.maxQueue,
        idleTimeout: 60_000,
        workerData: { limits: options.limits, cacheSize: options.cacheSize },
        // Under tests the worker is TypeScript: load it through tsx.
        execArgv: inTypeScript ? ['--import', 'tsx'] : [],
      });
      // A worker that dies is replaced by the pool; its task's promise rejects on its own.
      this.pool.on('error', () => undefined);
    }
  }

  /**
   * A large function (a long expression, a big graph, many points) is planned on a worker as
   * well: parsing and differentiating it takes long enough to stall the event loop.
   */
  private planElsewhere(request: FunctionRequest): boolean {
    if (this.pool === undefined) return false;
    return (
      (request.expr?.length ?? 0) > LARGE_EXPR_CHARACTERS ||
      (request.graph?.nodes.length ?? 0) > LARGE_GRAPH_NODES ||
      (request.points?.length ?? 0) > LARGE_POINT_COUNT
    );
  }

  /** Plan the request here, then run it here or on a worker. */
  async run<K extends OperationName>(op: K, request: RequestTable[K], options: RunOptions = {}): Promise<Record<string, unknown>> {
    options.signal?.throwIfAborted();
    if (this.planElsewhere(request)) return this.offload({ op, request }, options);
    const job = this.engine.plan(op, request);
    debit(options.allowance, job.flops);
    if (this.pool === undefined || job.flops <= this.options.inlineFlops) return this.inline(job);
    return this.offload({ op, request }, options);
  }

  /** The lecture's tables: planned here, run here or on a worker like the differentiation operations. */
  async trace(request: TraceRequest): Promise<Record<string, unknown>> {
    if (this.planElsewhere(request)) return this.offload({ op: 'trace', request });
    const job = planTrace(this.engine, request);
    if (this.pool === undefined || job.flops <= this.options.inlineFlops) return this.inline(job);
    return this.offload({ op: 'trace', request });
  }

  /** Shapes and costs: building the derivative graphs of a large function is done on a worker. */
  async analyze(request: AnalyzeRequest): Promise<Analysis> {
    if (!this.planElsewhere(request)) {
      this.counts.inline++;
      return analyze(this.engine, request);
    }
    return (await this.offload({ op: 'analyze', request })) as unknown as Analysis;
  }

  /** The graph picture: DOT built here for a small function; SVG always laid out on a worker. */
  async graph(request: GraphRequest, maxSvgNodes: number): Promise<Picture> {
    if (!this.planElsewhere(request)) return graphPicture(this.engine, request, maxSvgNodes, (dot) => this.svg(dot));
    return (await this.offload({ op: 'graph', request, maxSvgNodes })) as unknown as Picture;
  }

  /** Lay out a graph (DOT text the service generated) as SVG: Graphviz can take a second on a large graph. */
  async svg(dot: string): Promise<string> {
    if (this.pool === undefined) return renderSvg(dot);
    return (await this.offload({ op: 'svg', dot })).svg as string;
  }

  /** Grade a class: on a worker when there is a pool (a large class is seconds of work). */
  async grade(request: GradeRequest, limits: GradeLimits): Promise<Record<string, unknown>> {
    if (this.pool === undefined) {
      this.counts.inline++;
      return grade(this.engine, request, limits) as unknown as Record<string, unknown>;
    }
    return this.offload({ op: 'grade', request, limits });
  }

  private inline(job: Job): Record<string, unknown> {
    this.counts.inline++;
    return job.run();
  }

  /** Jobs run so far: inline, on workers, and stopped at the time limit. */
  jobs(): { inline: number; offloaded: number; timedOut: number } {
    return { ...this.counts };
  }

  private async offload(task: WorkerTask, options: RunOptions = {}): Promise<Record<string, unknown>> {
    const pool = this.pool!;
    this.counts.offloaded++;
    if (pool.queueSize >= this.options.maxQueue) {
      throw new HttpProblem(503, 'overloaded', `${pool.queueSize} heavy requests are already waiting; send this one again shortly`, {}, {
        headers: { 'retry-after': '2' },
      });
    }
    let answer: WorkerAnswer;
    try {
      const timeout = AbortSignal.timeout(this.options.timeoutMs);
      const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
      answer = (await pool.run(task, { signal })) as WorkerAnswer;
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (e instanceof Error && e.name === 'AbortError') {
        this.counts.timedOut++;
        throw new HttpProblem(503, 'timeout', `the computation took longer than ${this.options.timeoutMs} ms (WORK_TIMEOUT_MS) and was stopped`);
      }
      throw e;
    }
    if (answer.ok) return answer.result;
    const { code, message, ...where } = answer.error;
    throw new EngineError(code, message, where);
  }

  get pendingTasks(): number {
    return this.pool?.queueSize ?? 0;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
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
export async function answerTask(engine: Engine, task: WorkerTask): Promise<WorkerAnswer> {
  try {
    if (task.op === 'svg') return { ok: true, result: { svg: await renderSvg(task.dot) } };
    if (task.op === 'graph') return { ok: true, result: { ...(await graphPicture(engine, task.request, task.maxSvgNodes, renderSvg)) } };
    if (task.op === 'analyze') return { ok: true, result: analyze(engine, task.request) as unknown as Record<string, unknown> };
    const result =
      task.op === 'grade'
        ? (grade(engine, task.request, task.limits) as unknown as Record<string, unknown>)
        : task.op === 'trace'
          ? planTrace(engine, task.request).run()
          : engine.plan(task.op, task.request as never).run();
    return { ok: true, result };
  } catch (e) {
    if (isEngineError(e)) {
      const error: Extract<WorkerAnswer, { ok: false }>['error'] = { code: e.code, message: e.message };
      if (e.position) error.position = e.position;
      if (e.node !== undefined) error.node = e.node;
      if (e.path) error.path = e.path;
      return { ok: false, error };
    }
    throw e;
  }
}
