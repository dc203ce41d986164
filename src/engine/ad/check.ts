// The finite-difference check: the gradient by reverse mode against derivatives by differences,
// either per coordinate (every input coordinate moved alone) or along random unit directions.
// Tensors and numbers in and out; the steps are named below.

import { run } from '../ir/evaluate.js';
import { runChecked, STEP_COST, work, type Warning } from './run.js';
import { totalSize, type Prepared, type Program } from '../prepare.js';
import { Random } from '../random.js';
import { extentOf, sizeOf, type Tensor } from '../tensor/tensor.js';
import { cost, shapesOf, type Inputs, type Planned } from './plan.js';
import type { GradResult } from './differentiate.js';

/** PyTorch gradcheck's defaults. */
export const CHECK_DEFAULTS = { rtol: 1e-3, atol: 1e-5, method: 'central', seed: 0 } as const;

export type DifferenceMethod = 'central' | 'forward';

export interface CheckOptions {
  rtol: number;
  atol: number;
  method: DifferenceMethod;
  /** Random unit directions to compare along; undefined: every coordinate. */
  directions?: number | undefined;
  /** The seed of the random directions. */
  seed: number;
}

export interface CoordinateErrors {
  maxAbsError: number;
  maxRelError: number;
}

export interface CheckResult extends GradResult {
  /** Per coordinate: the derivative by differences, and the worst errors, by input. */
  coordinates?: { numeric: Map<string, Tensor>; errors: Map<string, CoordinateErrors> };
  /** Along random directions: the directional derivative by reverse mode and by differences. */
  directions?: { ad: number; numeric: number }[];
  ok: boolean;
  maxAbsError: number;
  maxRelError: number;
  evaluations: number;
  rtol: number;
  atol: number;
  method: DifferenceMethod;
}

/** The finite-difference step for a coordinate of magnitude |x|: eps^(1/3) max(1, |x|). */
function centralStep(x: number): number {
  return Math.cbrt(Number.EPSILON) * Math.max(1, Math.abs(x));
}

/** The forward-difference step: eps^(1/2) max(1, |x|). */
function forwardStep(x: number): number {
  return Math.sqrt(Number.EPSILON) * Math.max(1, Math.abs(x));
}

/** Check the gradient of a scalar function against finite differences. */
export function check(prepared: Prepared, inputs: Inputs, wrt: readonly string[], options: CheckOptions): Planned<CheckResult> {
  const gradient = prepared.gradientProgram(wrt);
  const valueProgram = prepared.valueProgram();
  const shapes = shapesOf(inputs, wrt);
  const n = totalSize(shapes);
  const probes = options.directions ?? n;
  const central = options.method === 'central';
  const evaluations = (central ? 2 : 1) * probes + (central ? 0 : 1);
  // Each evaluation copies the perturbed input (one coordinate) or all wrt inputs (a direction).
  const copied = options.directions === undefined ? Math.max(...shapes.map(sizeOf), 0) : n;
  const gradientCost = cost(gradient);
  return {
    flops: work(gradient.plan) + evaluations * (work(valueProgram.plan) + copied + STEP_COST * inputs.size),
    // The numeric gradient, input by input (rows too, for an input of zero elements).
    answer: gradientCost.answer + shapes.reduce((total, s) => total + extentOf(s), 0),
    live: Math.max(gradientCost.live, valueProgram.plan.peakElements + n),
    run: () => runCheck(gradient, valueProgram, inputs, wrt, options, evaluations),
  };
}

/** Tolerance bookkeeping: whether every comparison passed, and the worst errors. */
class Comparison {
  ok = true;
  maxAbs = 0;
  maxRel = 0;

  constructor(readonly options: CheckOptions) {}

  compare(ad: number, fd: number): { abs: number; rel: number } {
    const { atol, rtol } = this.options;
    const abs = Math.abs(ad - fd);
    const rel = abs / Math.max(Math.abs(fd), Number.MIN_VALUE);
    if (!(abs <= atol + rtol * Math.abs(fd))) this.ok = false;
    this.maxAbs = Math.max(this.maxAbs, abs);
    if (abs > atol) this.maxRel = Math.max(this.maxRel, rel);
    return { abs, rel };
  }
}

/** Derivatives by differences of the value program at the point, perturbing some wrt inputs. */
class Differences {
  constructor(
    private readonly valueProgram: Program,
    private readonly inputs: Inputs,
    private readonly central: boolean,
    private readonly fx: number,
  ) {}

  step(x: number): number {
    return this.central ? centralStep(x) : forwardStep(x);
  }

  /** The derivative along a perturbation of the named inputs (`perturb` moves a copy of one by s), with step h. */
  derivative(perturbed: readonly string[], perturb: (name: string, x: Float64Array, s: number) => void, h: number): number {
    const at = (sign: number): number => {
      const moved = new Map(this.inputs);
      for (const name of perturbed) {
        const x = this.inputs.get(name)!;
        const data = x.data.slice();
        perturb(name, data, sign * h);
        moved.set(name, { shape: x.shape, data });
      }
      return run(this.valueProgram.plan, moved)[0]!.data[0]!;
    };
    return this.central ? (at(1) - at(-1)) / (2 * h) : (at(1) - this.fx) / h;
  }
}

function runCheck(gradient: Program, valueProgram: Program, inputs: Inputs, wrt: readonly string[], options: CheckOptions, evaluations: number): CheckResult {
  const warnings: Warning[] = [];
  const [f0, ...grads] = runChecked(gradient, inputs, warnings);
  const fx = f0!.data[0]!;
  const differences = new Differences(valueProgram, inputs, options.method === 'central', fx);
  const comparison = new Comparison(options);
  const result: CheckResult = {
    value: f0!,
    gradient: new Map(wrt.map((name, i) => [name, grads[i]!])),
    ok: true,
    maxAbsError: 0,
    maxRelError: 0,
    evaluations,
    rtol: options.rtol,
    atol: options.atol,
    method: options.method,
    warnings,
  };
  if (options.directions === undefined) result.coordinates = compareCoordinates(inputs, wrt, grads, differences, comparison);
  else result.directions = compareDirections(inputs, wrt, grads, differences, comparison, options.directions, options.seed);
  result.ok = comparison.ok && Number.isFinite(fx);
  result.maxAbsError = comparison.maxAbs;
  result.maxRelError = comparison.maxRel;
  return result;
}

/** Every coordinate of every wrt input moved alone: the gradient by differences, with its worst errors per input. */
function compareCoordinates(
  inputs: Inputs,
  wrt: readonly string[],
  grads: readonly Tensor[],
  differences: Differences,
  comparison: Comparison,
): NonNullable<CheckResult['coordinates']> {
  const numeric = new Map<string, Tensor>();
  const errors = new Map<string, CoordinateErrors>();
  wrt.forEach((name, i) => {
    const x = inputs.get(name)!;
    const fd = new Float64Array(x.data.length);
    let abs = 0;
    let rel = 0;
    for (let k = 0; k < x.data.length; k++) {
      const h = differences.step(x.data[k]!);
      fd[k] = differences.derivative([name], (_, data, s) => (data[k] = data[k]! + s), h);
      const e = comparison.compare(grads[i]!.data[k]!, fd[k]!);
      abs = Math.max(abs, e.abs);
      if (e.abs > comparison.options.atol) rel = Math.max(rel, e.rel);
    }
    numeric.set(name, { shape: x.shape, data: fd });
    errors.set(name, { maxAbsError: abs, maxRelError: rel });
  });
  return { numeric, errors };
}

/** Random unit directions (normal draws from `seed`, normalised): the directional derivative both ways. */
function compareDirections(
  inputs: Inputs,
  wrt: readonly string[],
  grads: readonly Tensor[],
  differences: Differences,
  comparison: Comparison,
  count: number,
  seed: number,
): { ad: number; numeric: number }[] {
  const random = new Random(seed);
  const found: { ad: number; numeric: number }[] = [];
  let scale = 1;
  for (const name of wrt) for (const v of inputs.get(name)!.data) scale = Math.max(scale, Math.abs(v));
  for (let d = 0; d < count; d++) {
    const v = wrt.map((name) => Float64Array.from(inputs.get(name)!.data, () => random.normal()));
    const norm = Math.sqrt(v.reduce((s, dv) => s + dv.reduce((t, x) => t + x * x, 0), 0)) || 1;
    v.forEach((dv) => dv.forEach((x, k) => (dv[k] = x / norm)));
    const ad = v.reduce((s, dv, i) => s + dv.reduce((t, x, k) => t + x * grads[i]!.data[k]!, 0), 0);
    const fd = differences.derivative(
      wrt,
      (name, data, s) => {
        const dv = v[wrt.indexOf(name)]!;
        for (let k = 0; k < data.length; k++) data[k] = data[k]! + s * dv[k]!;
      },
      differences.step(scale),
    );
    comparison.compare(ad, fd);
    found.push({ ad, numeric: fd });
  }
  return found;
}
