// The model being probed, seen only through its answers: an HTTP endpoint (through the guarded
// client, with retries) or a local expression that is only ever evaluated. Every query is counted
// on the probe's QueryMeter before it is sent; an HTTP query's body is also counted against the
// probe's outbound bytes, and a retry against its client's queries per minute. An evaluation gets
// the probe's signal (cancelled at its deadline) and its allowance of floating-point operations.

import { Semaphore } from './semaphore.js';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { RequestTable } from '../service/request.js';
import type { BodyTemplate } from './body-template.js';
import { untilAborted, type TargetClient } from './client.js';
import { SLICE_MS } from './estimators.js';
import type { OutboundBytes } from './limits.js';
import { ProbeFailure } from './failure.js';
import { resolvePointer } from './json-pointer.js';
import type { DrawnPicture } from './answer.js';
import type { Picture } from './picture.js';

/** Counts queries against the budget. The planned queries are always affordable; retries take what is left. */
export class QueryMeter {
  private spentSoFar = 0;
  private unsent: number;

  constructor(
    readonly budget: number,
    planned: number,
  ) {
    if (planned > budget) throw new Error(`planned ${planned} queries over a budget of ${budget}`);
    this.unsent = planned;
  }

  get spent(): number {
    return this.spentSoFar;
  }

  /** Planned queries not sent (yet). */
  get unsentPlanned(): number {
    return this.unsent;
  }

  /** A planned query is being sent. */
  first(): void {
    if (this.unsent <= 0) throw new Error('more queries than planned');
    this.unsent--;
    this.spentSoFar++;
  }

  /** Whether a query may be sent again without leaving a planned one without budget (only ever turns false). */
  canRetry(): boolean {
    return this.spentSoFar + this.unsent < this.budget;
  }

  /** A query is sent again; false when the budget has no room for it. */
  retry(): boolean {
    if (!this.canRetry()) return false;
    this.spentSoFar++;
    return true;
  }
}

export interface BlackBox {
  /** The target's answer at one input: a number or a (nested) array of logits. */
  logits(input: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export interface RetryPolicy {
  /** Sends after the first, per query. */
  maxRetries: number;
  /** Backoff when the target gives no Retry-After: base · 2^retry, at most maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const RETRY_POLICY: RetryPolicy = { maxRetries: 4, baseDelayMs: 100, maxDelayMs: 2000 };

/** What bounds an HTTP probe's sending besides its budget. */
export interface SendLimits {
  /** The bytes of request bodies the probe may still send. */
  outbound?: OutboundBytes | undefined;
  /** Whether a retry still fits its client's queries per minute (and counts it when it does). */
  retryAllowed?: (() => boolean) | undefined;
}

export class HttpBlackBox implements BlackBox {
  constructor(
    private readonly client: TargetClient,
    private readonly template: BodyTemplate,
    private readonly pointer: { text: string; tokens: readonly string[] },
    private readonly meter: QueryMeter,
    private readonly signal: AbortSignal,
    /** Epoch ms past which no retry is waited for. */
    private readonly deadline: number,
    /** The server-wide bound on queries in flight, across probes. */
    private readonly outgoing: Semaphore = new Semaphore(Infinity),
    private readonly limits: SendLimits = {},
    private readonly policy: RetryPolicy = RETRY_POLICY,
  ) {}

  async logits(input: unknown): Promise<unknown> {
    const inputJson = JSON.stringify(input);
    const bytes = this.template.bytes(Buffer.byteLength(inputJson, 'utf8'));
    // Counted before the body is even built: a body that would pass the bound is never made.
    this.limits.outbound?.take(bytes);
    const body = this.template.render(inputJson);
    this.meter.first();
    for (let retry = 0; ; retry++) {
      await this.outgoing.acquire(this.signal);
      let attempt;
      try {
        // The place is given back however the client ends: an answer, a throw (even a synchronous
        // one), or the probe stopped while a client never settles.
        attempt = await untilAborted(Promise.resolve().then(() => this.client.send(body, this.signal)), this.signal);
      } finally {
        this.outgoing.release();
      }
      if (attempt.kind === 'answer') {
        const logits = resolvePointer(attempt.json, this.pointer.tokens);
        if (logits === undefined) {
          throw new ProbeFailure('target_error', `The target's answer has nothing at outputPath "${this.pointer.text}"`);
        }
        return logits;
      }
      const why = attempt.kind === 'busy' ? `answered ${attempt.status}` : `could not be reached (${attempt.reason})`;
      if (retry >= this.policy.maxRetries) {
        throw new ProbeFailure('target_error', `The target ${why} ${retry + 1} times in a row`);
      }
      const backoff = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** retry);
      // Retry-After is honoured as given; only our own backoff is jittered (so retries spread out).
      const wait = attempt.kind === 'busy' && attempt.retryAfterMs !== undefined ? attempt.retryAfterMs : backoff * (0.5 + Math.random() / 2);
      if (!this.meter.canRetry()) throw this.noRoom(why);
      if (Date.now() + wait > this.deadline) {
        throw new ProbeFailure(
          'target_error',
          `The target ${why}; waiting ${Math.ceil(wait / 1000)} s to send it again would pass the probe's time limit (PROBE_MAX_DURATION_MS)`,
        );
      }
      try {
        await sleep(wait, undefined, { signal: this.signal });
      } catch {
        throw this.signal.reason;
      }
      if (!this.meter.canRetry()) throw this.noRoom(why);
      // The probe ends if either refuses, so neither count needs to be given back.
      this.limits.outbound?.take(bytes);
      if (this.limits.retryAllowed?.() === false) {
        throw new ProbeFailure(
          'target_error',
          `The target ${why}, and this client's PROBE_CLIENT_QUERIES_PER_MINUTE leaves no room to send it again this minute`,
        );
      }
      this.meter.retry();
    }
  }

  private noRoom(why: string): ProbeFailure {
    return new ProbeFailure('target_error', `The target ${why}, and the budget of ${this.meter.budget} queries leaves no room to send it again`);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** How the prober bounds an evaluation (the service's RunOptions). */
export interface EvaluationOptions {
  /** Cancels it: a job not yet started is refused, a running worker task is stopped. */
  signal?: AbortSignal | undefined;
  /** Estimated floating-point operations left to the whole probe; each job is debited (422 limit_exceeded past it). */
  allowance?: { remaining: number } | undefined;
}

/** Runs the engine's operations (the service's Compute: small jobs inline, large ones on workers). */
export interface Evaluator {
  run<K extends 'eval' | 'vjp'>(op: K, request: RequestTable[K], options?: EvaluationOptions): Promise<Record<string, unknown>>;
  /** Draws a picture off the event loop (the service's worker threads); without it the prober draws it itself. */
  drawPicture?(picture: Picture): Promise<DrawnPicture>;
}

export class ExprBlackBox implements BlackBox {
  private lastTurn = performance.now();
  /** The output's shape, as the first evaluation found it. */
  outputShape: number[] | undefined;

  constructor(
    readonly expr: string,
    /** The one input the expression reads. */
    readonly input: string,
    private readonly evaluator: Evaluator,
    private readonly meter: QueryMeter,
    private readonly signal: AbortSignal,
    /** The probe's floating-point operations, shared by all its evaluations. */
    readonly allowance: { remaining: number } = { remaining: Infinity },
  ) {}

  async logits(input: unknown): Promise<unknown> {
    this.meter.first();
    if (performance.now() - this.lastTurn > SLICE_MS) {
      await nextTurn();
      this.lastTurn = performance.now();
    }
    if (this.signal.aborted) throw this.signal.reason;
    const { value, shape } = await this.evaluator.run('eval', { expr: this.expr, at: { [this.input]: input } }, { signal: this.signal, allowance: this.allowance });
    this.outputShape ??= shape as number[];
    return value;
  }

  async close(): Promise<void> {}
}
