// What running a graph works on: a plan (its live nodes in order, with estimates), the inputs
// bound to it, and the compiled runner a reused plan gets. Types only: the interpreter
// (evaluate.ts) and the compiler (compile.ts) both use them without importing each other's types.

import type { Tensor } from '../tensor/tensor.js';
import type { Graph, NodeId } from './graph.js';

export interface Plan {
  readonly graph: Graph;
  readonly outputs: readonly NodeId[];
  readonly schedule: readonly NodeId[];
  /** For each node, the schedule position of its last use (outputs: never freed). */
  readonly lastUse: Int32Array;
  /** Floating-point operations of one run. */
  readonly flops: number;
  /** Elements of every value computed in one run. */
  readonly elements: number;
  /** Peak elements held at once (inputs, outputs and live intermediates). */
  readonly peakElements: number;
  /** Runs so far, and the compiled runner once the plan has proved to be reused (null: not compiled). */
  readonly compiled: { runs: number; runner: Runner | null | undefined };
}

export type Bindings = ReadonlyMap<string, Tensor>;

/** A compiled plan; `source` is the generated code (for inspection and tests). */
export type Runner = ((inputs: Bindings) => Tensor[]) & { readonly source: string };
