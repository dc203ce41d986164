// The interpreter: runs a plan (the live nodes in order) over bound inputs, releasing each value
// after its last use so reverse mode keeps only what it must. A later compiler can turn the same
// plan into straight-line code calling the same kernels.

import { EngineError } from '../errors.js';
import { OPS } from '../ops/table.js';
import type { AttrsOf, OpName } from '../ops/types.js';
import { withFactorisations } from '../tensor/linalg.js';
import { formatShape, shapesEqual, sizeOf, type Shape, type Tensor } from '../tensor/tensor.js';
import { compilePlan, MAX_COMPILED_STEPS } from './compile.js';
import { liveSchedule, type Graph, type Node, type NodeId } from './graph.js';
import type { Bindings, Plan } from './plan.js';

export type { Bindings, Plan } from './plan.js';

/** A plan is compiled to straight-line code on its second run: one-off plans stay interpreted. */
export const COMPILE_AFTER_RUNS = 2;

export function makePlan(graph: Graph, outputs: readonly NodeId[]): Plan {
  const schedule = liveSchedule(graph, outputs);
  const lastUse = new Int32Array(graph.nodes.length).fill(-1);
  schedule.forEach((id, pos) => {
    for (const a of graph.nodes[id]!.args) lastUse[a] = pos;
  });
  for (const o of outputs) lastUse[o] = schedule.length;
  let flops = 0;
  let elements = 0;
  let live = 0;
  let peak = 0;
  const freeAt: number[][] = schedule.map(() => []);
  schedule.forEach((id, pos) => {
    const node = graph.nodes[id]!;
    const size = sizeOf(node.shape);
    flops += nodeCost(graph, node);
    elements += size;
    live += size;
    peak = Math.max(peak, live);
    const last = lastUse[id]!;
    if (last >= 0 && last < schedule.length) freeAt[last]!.push(size);
    else if (last < 0) live -= size;
    for (const s of freeAt[pos]!) live -= s;
  });
  return { graph, outputs, schedule, lastUse, flops, elements, peakElements: peak, compiled: { runs: 0, runner: undefined } };
}

export function nodeCost(graph: Graph, node: Node): number {
  const def = OPS[node.op];
  const cost = def.cost as (args: readonly Shape[], out: Shape, attrs: AttrsOf<OpName>) => number;
  return cost(
    node.args.map((a) => graph.nodes[a]!.shape),
    node.shape,
    node.attrs,
  );
}

function bind(node: Node<'input'>, inputs: Bindings): Tensor {
  const value = inputs.get(node.attrs.name);
  if (value === undefined) throw new EngineError('missing_input', `no value for input '${node.attrs.name}'`);
  if (!shapesEqual(value.shape, node.shape)) {
    throw new Error(`internal: input '${node.attrs.name}' bound with shape ${formatShape(value.shape)}, prepared for ${formatShape(node.shape)}`);
  }
  return value;
}

function compute(node: Node, args: readonly Tensor[]): Tensor {
  const impl = OPS[node.op].impl as (args: readonly Tensor[], attrs: AttrsOf<OpName>, shape: Shape) => Tensor;
  return impl(args, node.attrs, node.shape);
}

/**
 * Evaluate the plan's outputs: compiled once the plan is reused, interpreted before. Within one
 * run a matrix is factored once whatever reads it (a solve and its adjoint, det and its gradient).
 */
export function run(plan: Plan, inputs: Bindings): Tensor[] {
  return withFactorisations(() => runOnce(plan, inputs));
}

function runOnce(plan: Plan, inputs: Bindings): Tensor[] {
  const state = plan.compiled;
  if (state.runner) return state.runner(inputs);
  state.runs++;
  if (state.runner === undefined && state.runs >= COMPILE_AFTER_RUNS) {
    state.runner = plan.schedule.length <= MAX_COMPILED_STEPS ? compilePlan(plan) : null;
    if (state.runner) return state.runner(inputs);
  }
  return interpret(plan, inputs);
}

/** Evaluate the plan's outputs step by step. */
export function interpret(plan: Plan, inputs: Bindings): Tensor[] {
  const { graph, schedule, lastUse } = plan;
  const values = new Array<Tensor | undefined>(graph.nodes.length);
  for (let pos = 0; pos < schedule.length; pos++) {
    const id = schedule[pos]!;
    const node = graph.nodes[id]!;
    if (node.op === 'input') values[id] = bind(node as Node<'input'>, inputs);
    else {
      values[id] = compute(
        node,
        node.args.map((a) => values[a]!),
      );
      for (const a of node.args) if (lastUse[a] === pos) values[a] = undefined;
    }
  }
  return plan.outputs.map((o) => values[o]!);
}

export function hasNonFinite(t: Tensor): boolean {
  const d = t.data;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return true;
  return false;
}

/**
 * Where non-finite values come from: the inputs that hold some, and the first node, in evaluation
 * order, whose value is not finite although all its arguments are (where a NaN or infinity first
 * arose). Runs the plan again; called only when an output is not finite.
 */
export function nonFiniteOrigins(plan: Plan, inputs: Bindings): { inputs: NodeId[]; first: NodeId | undefined } {
  return withFactorisations(() => findNonFinite(plan, inputs));
}

function findNonFinite(plan: Plan, inputs: Bindings): { inputs: NodeId[]; first: NodeId | undefined } {
  const { graph, schedule, lastUse } = plan;
  const values = new Array<Tensor | undefined>(graph.nodes.length);
  const bad = new Uint8Array(graph.nodes.length);
  const badInputs: NodeId[] = [];
  for (let pos = 0; pos < schedule.length; pos++) {
    const id = schedule[pos]!;
    const node = graph.nodes[id]!;
    const isInput = node.op === 'input';
    const value = isInput ? bind(node as Node<'input'>, inputs) : compute(node, node.args.map((a) => values[a]!));
    values[id] = value;
    if (hasNonFinite(value)) {
      if (isInput) badInputs.push(id);
      else if (node.args.every((a) => !bad[a])) return { inputs: badInputs, first: id };
      bad[id] = 1;
    }
    for (const a of node.args) if (lastUse[a] === pos) values[a] = undefined;
  }
  return { inputs: badInputs, first: undefined };
}
