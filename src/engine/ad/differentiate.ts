// The derivatives of a prepared function at a point, tensors in and tensors out: each planned
// first (its programs built, cached on the Prepared, and checked), so its cost is known before it
// runs. Inputs are named tensors; `wrt` names the inputs to differentiate with respect to.

import { runChecked, type Warning } from './run.js';
import { totalSize, type Prepared, type Program } from '../prepare.js';
import { permute } from '../tensor/layout.js';
import { extentOf, reshapeTensor, sizeOf, type Shape, type Tensor } from '../tensor/tensor.js';
import { bind, checkJacobianSize, checkSeeds, cost, identityBlocks, rows, shapesOf, tangentSeeds, type Inputs, type Planned, type Warned } from './plan.js';

export interface ValueResult extends Warned {
  value: Tensor;
}
export interface GradResult extends ValueResult {
  gradient: Map<string, Tensor>;
}
export interface JvpResult extends ValueResult {
  tangent: Tensor;
}
export interface VjpResult extends ValueResult {
  vjp: Map<string, Tensor>;
}
export type JacobianMode = 'forward' | 'reverse';
export interface JacobianResult extends ValueResult {
  /** By input a: ∂f/∂a of shape [...output shape, ...shape(a)]. */
  jacobian: Map<string, Tensor>;
  mode: JacobianMode;
  passes: number;
}
export interface HessianResult extends GradResult {
  /** By inputs a, b: ∂²f/∂a∂b of shape [...shape(a), ...shape(b)]. */
  hessian: Map<string, Map<string, Tensor>>;
}
export interface HvpResult extends GradResult {
  hvp: Map<string, Tensor>;
}

function byInput(names: readonly string[], tensors: readonly Tensor[]): Map<string, Tensor> {
  return new Map(names.map((n, i) => [n, tensors[i]!]));
}

/** The function's value. */
export function value(prepared: Prepared, inputs: Inputs): Planned<ValueResult> {
  const program = prepared.valueProgram();
  return {
    ...cost(program),
    run: () => {
      const warnings: Warning[] = [];
      const [value] = runChecked(program, inputs, warnings);
      return { value: value!, warnings };
    },
  };
}

/** The value and gradient of a scalar function (reverse mode, seed 1). */
export function grad(prepared: Prepared, inputs: Inputs, wrt: readonly string[]): Planned<GradResult> {
  const program = prepared.gradientProgram(wrt);
  return {
    ...cost(program),
    run: () => {
      const warnings: Warning[] = [];
      const [value, ...grads] = runChecked(program, inputs, warnings);
      return { value: value!, gradient: byInput(wrt, grads), warnings };
    },
  };
}

/** The directional derivative along `tangents` (by input, each of the input's shape; missing inputs have zero tangent). */
export function jvp(prepared: Prepared, inputs: Inputs, tangents: ReadonlyMap<string, Tensor>): Planned<JvpResult> {
  const names = [...inputs.keys()].filter((n) => tangents.has(n));
  const program = prepared.jvpProgram(names, []);
  const seeds = tangentSeeds(names, names.map((n) => tangents.get(n)!));
  return {
    ...cost(program),
    run: () => {
      const warnings: Warning[] = [];
      const [value, tangent] = runChecked(program, bind(inputs, seeds), warnings);
      return { value: value!, tangent: tangent!, warnings };
    },
  };
}

/** The cotangent (of the output's shape) pulled back to the wrt inputs. */
export function vjp(prepared: Prepared, inputs: Inputs, wrt: readonly string[], cotangent: Tensor): Planned<VjpResult> {
  const program = prepared.vjpProgram(wrt, []);
  return {
    ...cost(program),
    run: () => {
      const warnings: Warning[] = [];
      const [value, ...vjps] = runChecked(program, bind(inputs, new Map([['cotangent', cotangent]])), warnings);
      return { value: value!, vjp: byInput(wrt, vjps), warnings };
    },
  };
}

/**
 * The Jacobian, by n batched forward passes (one per input coordinate) or m batched reverse passes
 * (one per output element); 'auto' takes the fewer, as the lecture's rule says.
 */
export function jacobian(prepared: Prepared, inputs: Inputs, wrt: readonly string[], mode: JacobianMode | 'auto' = 'auto'): Planned<JacobianResult> {
  const m = sizeOf(prepared.outputShape);
  const shapes = shapesOf(inputs, wrt);
  const n = totalSize(shapes);
  const blocks = checkJacobianSize(n, m, [prepared.outputShape], shapes, prepared.limits.maxJacobianElements, 'Jacobian');
  const chosen = mode === 'auto' ? (n < m ? 'forward' : 'reverse') : mode;
  const planned = chosen === 'forward' ? forwardJacobian(prepared, inputs, wrt, shapes, n) : reverseJacobian(prepared, inputs, wrt, shapes, m);
  // The answer as written: the value and the blocks (the programs' stacked outputs hold as many numbers, but not the blocks' rows).
  return { ...planned, answer: extentOf(prepared.outputShape) + blocks };
}

/** A planned run over n stacked seeds: the seeds' elements count as work and as live memory (see checkSeeds). */
function seeded<T>(program: Program, seeds: number, run: () => T): Planned<T> {
  const { flops, answer, live } = cost(program);
  return { flops: flops + seeds, answer, live: live + seeds, run };
}

function reshapeBlock(prepared: Prepared, block: Tensor, inShape: Shape): Tensor {
  return reshapeTensor(block, [...prepared.outputShape, ...inShape]);
}

function forwardJacobian(prepared: Prepared, inputs: Inputs, wrt: readonly string[], shapes: Shape[], n: number): Planned<JacobianResult> {
  const program = prepared.jvpProgram(wrt, [n]);
  return seeded(program, checkSeeds(program, n, prepared.limits.maxLiveElements, 'use mode "reverse" (one pass per output element), or fewer wrt inputs'), () => {
    const warnings: Warning[] = [];
    const [value, tangents] = runChecked(program, bind(inputs, tangentSeeds(wrt, identityBlocks(shapes))), warnings);
    const jacobian = new Map<string, Tensor>();
    let offset = 0;
    wrt.forEach((a, i) => {
      const size = sizeOf(shapes[i]!);
      // tangents[k] is column k of J: take this input's columns and transpose them into rows.
      jacobian.set(a, reshapeBlock(prepared, permute(rows(tangents!, offset, size), [1, 0]), shapes[i]!));
      offset += size;
    });
    return { value: value!, jacobian, mode: 'forward', passes: n, warnings };
  });
}

function reverseJacobian(prepared: Prepared, inputs: Inputs, wrt: readonly string[], shapes: Shape[], m: number): Planned<JacobianResult> {
  const program = prepared.vjpProgram(wrt, [m]);
  return seeded(program, checkSeeds(program, m, prepared.limits.maxLiveElements, 'use mode "forward" (one pass per input coordinate), or a smaller output'), () => {
    const warnings: Warning[] = [];
    const cotangent = identityBlocks([prepared.outputShape])[0]!;
    const [value, ...adjoints] = runChecked(program, bind(inputs, new Map([['cotangent', cotangent]])), warnings);
    // adjoints[a][k] is row k of J restricted to a.
    const jacobian = new Map(wrt.map((a, i) => [a, reshapeBlock(prepared, adjoints[i]!, shapes[i]!)]));
    return { value: value!, jacobian, mode: 'reverse', passes: m, warnings };
  });
}

/** The value, gradient and Hessian of a scalar function: forward over reverse, n batched passes. */
export function hessian(prepared: Prepared, inputs: Inputs, wrt: readonly string[]): Planned<HessianResult> {
  const shapes = shapesOf(inputs, wrt);
  const n = totalSize(shapes);
  const blocks = checkJacobianSize(n, n, shapes, shapes, prepared.limits.maxJacobianElements, 'Hessian');
  const program = prepared.secondOrderProgram(wrt, [n]);
  const planned = seeded(program, checkSeeds(program, n, prepared.limits.maxLiveElements, 'ask for fewer wrt inputs', 'hvp'), () => {
    const warnings: Warning[] = [];
    const outputs = runChecked(program, bind(inputs, tangentSeeds(wrt, identityBlocks(shapes))), warnings);
    const k = wrt.length;
    const second = outputs.slice(1 + k);
    const hessian = new Map<string, Map<string, Tensor>>();
    let offset = 0;
    wrt.forEach((a, i) => {
      const size = sizeOf(shapes[i]!);
      // second[j][r] = ∂(∂f/∂b_j)/∂(coordinate r): rows of a's block give H[a][b].
      hessian.set(a, new Map(wrt.map((b, j) => [b, reshapeTensor(rows(second[j]!, offset, size), [...shapes[i]!, ...shapes[j]!])])));
      offset += size;
    });
    return { value: outputs[0]!, gradient: byInput(wrt, outputs.slice(1, 1 + k)), hessian, warnings };
  });
  // The answer as written: the value, the gradient and the blocks (rows too, for blocks of no elements).
  return { ...planned, answer: extentOf(prepared.outputShape) + shapes.reduce((total, s) => total + extentOf(s), 0) + blocks };
}

/** The value, gradient and Hessian-vector product with `vector` (by wrt input, each of its shape). */
export function hvp(prepared: Prepared, inputs: Inputs, wrt: readonly string[], vector: ReadonlyMap<string, Tensor>): Planned<HvpResult> {
  const program = prepared.secondOrderProgram(wrt, []);
  const seeds = tangentSeeds(wrt, wrt.map((a) => vector.get(a)!));
  return {
    ...cost(program),
    run: () => {
      const warnings: Warning[] = [];
      const outputs = runChecked(program, bind(inputs, seeds), warnings);
      const k = wrt.length;
      return { value: outputs[0]!, gradient: byInput(wrt, outputs.slice(1, 1 + k)), hvp: byInput(wrt, outputs.slice(1 + k)), warnings };
    },
  };
}
