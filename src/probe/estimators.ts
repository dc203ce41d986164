// Gradient estimates from function values alone. Each estimator sees the model only as `f` (one
// query, a logit back) and hands its queries to `run`, which keeps `concurrency` of them in flight.
// Results are stored by index and combined in order, so the same request gives the same answer
// whatever order the answers arrive in.
//
//   forward   g_i = (f(x + h_i e_i) − f(x)) / h_i                      n queries (+1 for f(x))
//   central   g_i = (f(x + h_i e_i) − f(x − h_i e_i)) / 2h_i           2n queries (+1)
//   spsa/nes  g = mean_j d_j u_j / s,  d_j = (f(x + σ s⊙u_j) − f(x − σ s⊙u_j)) / 2σ
//             u_j Rademacher (spsa) or standard normal (nes); E[u uᵀ] = I makes it unbiased
//             for a linear f; 2k queries (+1)
//   occlusion score_i = f(tokens) − f(tokens without token i, or with it masked)

import { setImmediate as nextTurn } from 'node:timers/promises';
import { Random } from '../engine/random.js';
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

export type Direction = 'rademacher' | 'normal';

export interface RandomEstimate {
  gradient: Float64Array;
  /** Per coordinate: the standard deviation of the k one-direction estimates over √k. */
  stderr: Float64Array;
}

function fillDirection(random: Random, kind: Direction, u: Float64Array): void {
  for (let i = 0; i < u.length; i++) u[i] = kind === 'rademacher' ? random.rademacher() : random.normal();
}

/** SPSA (Rademacher directions) or NES (Gaussian), antithetic pairs, k directions drawn from `seed`. */
export async function randomDirections(
  ctx: EstimateContext,
  point: Point,
  options: { epsilon: number; directions: number; seed: number; kind: Direction },
): Promise<RandomEstimate> {
  const { epsilon: sigma, directions: k, seed, kind } = options;
  const n = point.data.length;
  const scale = point.data.map(scaleOf);
  const plus = new Float64Array(k);
  const minus = new Float64Array(k);
  function* queries(): Generator<Task> {
    const random = new Random(seed);
    const u = new Float64Array(n);
    for (let j = 0; j < k; j++) {
      fillDirection(random, kind, u);
      const up = point.data.map((x, i) => x + sigma * scale[i]! * u[i]!);
      const down = point.data.map((x, i) => x - sigma * scale[i]! * u[i]!);
      const upInput = valueAt(point, up);
      const downInput = valueAt(point, down);
      yield async () => void (plus[j] = await ctx.f(upInput));
      yield async () => void (minus[j] = await ctx.f(downInput));
    }
  }
  await ctx.run(queries());

  // The same directions again, from the same seed: combined in order (Welford's running mean and
  // sum of squared deviations), with only O(n + k) memory.
  const random = new Random(seed);
  const u = new Float64Array(n);
  const mean = new Float64Array(n);
  const m2 = new Float64Array(n);
  let lastTurn = performance.now();
  for (let j = 0; j < k; j++) {
    // k·n steps in all: let other requests run now and then.
    if (performance.now() - lastTurn > SLICE_MS) {
      await nextTurn();
      lastTurn = performance.now();
    }
    fillDirection(random, kind, u);
    const slope = (plus[j]! - minus[j]!) / (2 * sigma);
    for (let i = 0; i < n; i++) {
      const estimate = (slope * u[i]!) / scale[i]!;
      const delta = estimate - mean[i]!;
      mean[i]! += delta / (j + 1);
      m2[i]! += delta * (estimate - mean[i]!);
    }
  }
  const stderr = m2.map((s) => Math.sqrt(s / (k - 1) / k));
  return { gradient: mean, stderr };
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
