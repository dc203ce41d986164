// What every computation over a prepared function shares: its cost known before it runs, the
// identity seeds of batched passes, and the slicing of their stacked results.

import { EngineError } from '../errors.js';
import { work, type Warning } from './run.js';
import { totalSize, type Program } from '../prepare.js';
import { stridedSlice } from '../tensor/layout.js';
import { extentOf, extentOfBlock, formatShape, reshapeTensor, sizeOf, type Shape, type Tensor } from '../tensor/tensor.js';

/** A computation planned (programs built and checked), with its cost, not yet run. */
export interface Planned<R> {
  /** Estimated work: floating-point operations plus elements written (copies cost too). */
  readonly flops: number;
  /** Numbers the result holds. */
  readonly answer: number;
  /** Elements held at once while it runs (its program's peak, plus any seeds). */
  readonly live: number;
  run(): R;
}

/** Every result carries the warnings its run raised (where NaNs or infinities first arose). */
export interface Warned {
  warnings: Warning[];
}

/** Named input values: the point a function is evaluated at. */
export type Inputs = ReadonlyMap<string, Tensor>;

/** A program's work, the numbers its outputs hold (rows, for outputs of zero elements), and its peak live elements. */
export function cost(program: Program): { flops: number; answer: number; live: number } {
  let answer = 0;
  for (const o of program.plan.outputs) answer += extentOf(program.plan.graph.nodes[o]!.shape);
  return { flops: work(program.plan), answer, live: program.plan.peakElements };
}

/** The inputs and extra (seed) bindings of one run. */
export function bind(inputs: Inputs, extra?: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
  const all = new Map(inputs);
  if (extra) for (const [k, v] of extra) all.set(k, v);
  return all;
}

/** Forward-mode seeds, bound as `tangent:<name>` inputs of derived programs. */
export function tangentSeeds(names: readonly string[], tangents: readonly Tensor[]): Map<string, Tensor> {
  return new Map(names.map((name, i) => [`tangent:${name}`, tangents[i]!]));
}

/** A stack of n = Σ size(shapes) unit tangents, split by input: block a is [n, ...shape(a)], with ones where row = column. */
export function identityBlocks(shapes: readonly Shape[]): Tensor[] {
  const n = totalSize(shapes);
  let offset = 0;
  return shapes.map((shape) => {
    const size = sizeOf(shape);
    const data = new Float64Array(n * size);
    for (let i = 0; i < size; i++) data[(offset + i) * size + i] = 1;
    offset += size;
    return { shape: [n, ...shape], data };
  });
}

/** Rows [offset, offset + count) of a stack [n, ...rest], as a [count, size(rest)] matrix. */
export function rows(stack: Tensor, offset: number, count: number): Tensor {
  const n = stack.shape[0]!;
  const width = stack.data.length / Math.max(n, 1);
  return stridedSlice(reshapeTensor(stack, [n, width]), [offset, 0], [1, 1], [count, width]);
}

/**
 * Identity seeds for n batched passes hold n² numbers: counted as work and as live memory before
 * they are made (many scalar inputs in forward mode would otherwise be quadratic).
 */
export function checkSeeds(
  program: Program,
  n: number,
  maxLiveElements: number,
  advice: string,
  alternative?: EngineError['alternative'],
): number {
  const seeds = n * n;
  const live = program.plan.peakElements + seeds;
  if (live > maxLiveElements) {
    throw new EngineError(
      'limit_exceeded',
      `${n} batched passes with their ${n} × ${n} seeds would hold ${live} elements at once, more than the limit of ${maxLiveElements} (MAX_LIVE_ELEMENTS): ${advice}`,
      { alternative },
    );
  }
  return seeds;
}

/**
 * A Jacobian or Hessian of m × n elements, refused past MAX_JACOBIAN_ELEMENTS; so is one whose
 * blocks (each of `outer` by each of `inner`) have no elements but more rows than that (an output
 * of 2000 elements by an input of shape [2000, 0] is 4,000,000 empty arrays). Returns what the
 * blocks hold as an answer writes them: their elements, or rows for a block of none.
 */
export function checkJacobianSize(n: number, m: number, outer: readonly Shape[], inner: readonly Shape[], maxJacobianElements: number, what: string): number {
  if (n * m > maxJacobianElements) {
    throw new EngineError(
      'limit_exceeded',
      `the ${what} would have ${n * m} elements (${m} × ${n}), more than the limit of ${maxJacobianElements} (MAX_JACOBIAN_ELEMENTS)`,
    );
  }
  let extent = 0;
  for (const a of outer) {
    for (const b of inner) {
      const block = extentOfBlock(a, b);
      extent += block;
      if (extent > maxJacobianElements) {
        const example = block > sizeOf(a) * sizeOf(b) ? ` (a block of shape ${formatShape([...a, ...b])} has no elements but ${block} rows)` : '';
        throw new EngineError(
          'limit_exceeded',
          `the ${what} would be written as ${extent} or more numbers and rows of empty blocks${example}, more than the limit of ${maxJacobianElements} (MAX_JACOBIAN_ELEMENTS)`,
        );
      }
    }
  }
  return extent;
}

/** The shapes of the named inputs. */
export function shapesOf(inputs: Inputs, names: readonly string[]): Shape[] {
  return names.map((a) => inputs.get(a)!.shape);
}
