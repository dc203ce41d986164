// The lecture's tables over tensors: every step of the function as written, in evaluation order,
// with its value and its tangent (forward mode), its adjoint (reverse mode), or both.

import { EngineError } from '../errors.js';
import { dependents, type Node, type NodeId } from '../ir/graph.js';
import { runChecked, work, type Warning } from './run.js';
import type { Prepared, Program } from '../prepare.js';
import { extentOf, type Tensor } from '../tensor/tensor.js';
import { bind, type Inputs, type Planned, type Warned } from './plan.js';
import { forwardMode, reverseMode } from './transform.js';

export type TraceMode = 'forward' | 'reverse' | 'both';

/** The seeds of a trace: a tangent for every input (forward), the output's cotangent (reverse). */
export interface TraceSeeds {
  tangents?: ReadonlyMap<string, Tensor> | undefined;
  cotangent?: Tensor | undefined;
}

export interface TraceResult extends Warned {
  /** The steps: every node of the function as written but inline scalar constants (see `traceRows`). */
  rows: Node[];
  values: Tensor[];
  tangents?: Tensor[];
  adjoints?: Tensor[];
}

/** The rows of a trace: every node of the function as written but scalar constants (shown inline), unless one is the output. */
export function traceRows(prepared: Prepared): Node[] {
  return traceRowsOf(prepared.primal.nodes, prepared.output);
}

/** The rows of a graph as written whose output is `output` (see `traceRows`). */
export function traceRowsOf(nodes: readonly Node[], output: NodeId): Node[] {
  return nodes.filter((n) => n.within === undefined && (!(n.op === 'const' && n.shape.length === 0) || n.id === output));
}

/** A row's operation: the primitive, or the function written for a step that lowered to several. */
export function rowOp(node: Node): string {
  return node.call?.fn ?? node.op;
}

/** A row's arguments: the nodes the step as written reads. */
export function rowArgs(node: Node): readonly NodeId[] {
  return node.call?.args ?? node.args;
}

/**
 * A program whose outputs are every row's value, then (forward) every row's tangent, then
 * (reverse) every row's adjoint. Tangent inputs are `tangent:<name>` for each input; the cotangent
 * input is `cotangent`.
 */
function traceProgram(prepared: Prepared, mode: TraceMode, wrt: readonly string[]): Program {
  return prepared.program(`trace:${mode}:${wrt.join(',')}`, () => {
    // The function as written, one node per step: an optimised copy would merge equal steps (and
    // x*1 into x), and each merged row would show the adjoint of all of them.
    const { b, map } = prepared.copy(true);
    const count = b.nodes.length;
    const rows = traceRows(prepared).map((n) => map[n.id]!);
    const outputs: NodeId[] = [...rows];
    if (mode !== 'reverse') {
      const seeds = new Map<NodeId, NodeId>();
      for (const { name, shape } of prepared.inputs) seeds.set(map[prepared.primal.inputs.get(name)!]!, b.input(`tangent:${name}`, shape));
      const tangent = forwardMode(b, count, seeds, []);
      outputs.push(...rows.map((id) => tangent[id] ?? b.zeros(b.shapeOf(id))));
    }
    if (mode !== 'forward') {
      const out = map[prepared.output]!;
      const seed = b.input('cotangent', prepared.outputShape);
      const wrtIds = wrt.map((name) => map[prepared.primal.inputs.get(name)!]!);
      // Adjoints for every row that depends on a wrt input; the others (constants, unrelated inputs) are zero.
      const adjoint = reverseMode(b, count, new Map([[out, seed]]), dependents(b, wrtIds), []);
      outputs.push(...rows.map((id) => adjoint[id] ?? b.zeros(b.shapeOf(id))));
    }
    return { graph: b, outputs };
  });
}

/**
 * The tables at a point. Forward mode needs a tangent for every input (`seeds.tangents`), reverse
 * mode the output's cotangent; adjoints flow to the `wrt` inputs.
 */
export function trace(prepared: Prepared, inputs: Inputs, wrt: readonly string[], mode: TraceMode, seeds: TraceSeeds): Planned<TraceResult> {
  const extra = new Map<string, Tensor>();
  if (mode !== 'reverse') for (const { name } of prepared.inputs) extra.set(`tangent:${name}`, seeds.tangents!.get(name)!);
  if (mode !== 'forward') extra.set('cotangent', seeds.cotangent!);
  const program = traceProgram(prepared, mode, wrt);
  const rows = traceRows(prepared);
  const columns = mode === 'both' ? 3 : 2;
  // Rows count too, for a step of zero elements (its nested form is still written).
  const elements = columns * rows.reduce((total, node) => total + extentOf(node.shape), 0);
  if (elements > prepared.limits.maxTraceElements) {
    throw new EngineError(
      'limit_exceeded',
      `this trace would return ${elements} numbers (every step's value and derivatives; rows, for steps of no elements), more than the limit of ${prepared.limits.maxTraceElements} (MAX_TRACE_ELEMENTS): trace a smaller instance`,
    );
  }
  const flops = work(program.plan);
  if (flops > prepared.limits.maxFlops) {
    throw new EngineError(
      'limit_exceeded',
      `this trace needs about ${flops.toExponential(2)} floating-point operations, more than the limit of ${prepared.limits.maxFlops.toExponential(2)} (MAX_FLOPS)`,
    );
  }
  return {
    flops,
    answer: elements,
    live: program.plan.peakElements,
    run: () => {
      const warnings: Warning[] = [];
      const outputs = runChecked(program, bind(inputs, extra), warnings);
      const n = rows.length;
      const result: TraceResult = { rows, values: outputs.slice(0, n), warnings };
      if (mode !== 'reverse') result.tangents = outputs.slice(n, 2 * n);
      if (mode !== 'forward') result.adjoints = outputs.slice((mode === 'both' ? 2 : 1) * n, (mode === 'both' ? 3 : 2) * n);
      return result;
    },
  };
}
