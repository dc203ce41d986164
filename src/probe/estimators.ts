// Gradient estimates from function values alone. Each estimator sees the model only as `f` (one
// query, a logit back) and hands its queries to `run`, which keeps `concurrency` of them in flight.
// Results are stored by index and combined in order, so the same request gives the same answer
// whatever order the answers arrive in.
//
//   forward   g_i = (f(x + h_i e_i) − f(x)) / h_i                      n queries (+1 for f(x))
//   central   g_i = (f(x + h_i e_i) − f(x − h_i e_i)) / 2h_i           2n queries (+1)
//   spsa/nes  (directions.ts) 2k queries (+1)
//   occlusion score_i = f(tokens) − f(tokens without token i, or with it masked)
//   groups of pixels (image.ts), Shapley values of tokens (shapley.ts)

import type { Shape } from '../engine/tensor/tensor.js';
import { fromTensor, type Value } from '../service/values.js';
import type { Task } from './pool.js';

export type Token = string | number;

/** Longest stretch of computing before other requests get a turn on the event loop. */
export const SLICE_MS = 10;

export interface EstimateContext {
  /** One query: the selected logit at `input`. */
  f(input: Value | Token[]): Promise<number>;
  /** Runs the queries, a bounded number at a time; rejects with the first failure. */
  run(tasks: Iterable<Task>): Promise<void>;
}

/** A numeric input: its shape and its elements in row-major order. */
export interface Point {
  shape: Shape;
  data: Float64Array;
}

/** The scale of coordinate i: steps are relative to |x_i|, but never smaller than for |x_i| = 1. */
function scaleOf(x: number): number {
  return Math.max(1, Math.abs(x));
}

function valueAt(point: Point, data: Float64Array): Value {
  return fromTensor({ shape: point.shape, data });
}

/** x with coordinate i moved by `step`, and the step actually taken (x_i + step rounds). */
function shifted(point: Point, i: number, step: number): { input: Value; taken: number } {
  const data = point.data.slice();
  data[i] = point.data[i]! + step;
  return { input: valueAt(point, data), taken: data[i]! - point.data[i]! };
}

export async function forwardDifferences(ctx: EstimateContext, point: Point, value: number, epsilon: number): Promise<Float64Array> {
  const n = point.data.length;
  const gradient = new Float64Array(n);
  function* queries(): Generator<Task> {
    for (let i = 0; i < n; i++) {
      yield async () => {
        const { input, taken } = shifted(point, i, epsilon * scaleOf(point.data[i]!));
        gradient[i] = ((await ctx.f(input)) - value) / taken;
      };
    }
  }
  await ctx.run(queries());
  return gradient;
}

export async function centralDifferences(ctx: EstimateContext, point: Point, epsilon: number): Promise<Float64Array> {
  const n = point.data.length;
  const plus = new Float64Array(n);
  const minus = new Float64Array(n);
  const width = new Float64Array(n);
  function* queries(): Generator<Task> {
    for (let i = 0; i < n; i++) {
      const step = epsilon * scaleOf(point.data[i]!);
      const up = shifted(point, i, step);
      const down = shifted(point, i, -step);
      width[i] = up.taken - down.taken;
      yield async () => void (plus[i] = await ctx.f(up.input));
      yield async () => void (minus[i] = await ctx.f(down.input));
    }
  }
  await ctx.run(queries());
  return plus.map((p, i) => (p - minus[i]!) / width[i]!);
}

/** Each token's score: how much the logit drops without it (removed, or replaced by `mask`). */
export async function occlusion(ctx: EstimateContext, tokens: readonly Token[], value: number, mask: Token | undefined): Promise<Float64Array> {
  const scores = new Float64Array(tokens.length);
  function* queries(): Generator<Task> {
    for (let i = 0; i < tokens.length; i++) {
      const occluded = mask === undefined ? tokens.filter((_, t) => t !== i) : tokens.map((token, t) => (t === i ? mask : token));
      yield async () => void (scores[i] = value - (await ctx.f(occluded)));
    }
  }
  await ctx.run(queries());
  return scores;
}

/** The cosine of the angle between an estimate and a reference: 1 when both are zero, 0 when one is. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}
