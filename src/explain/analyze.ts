// Shapes and costs, weighed as the lecture's section 6 does: per step the cost of evaluating it and
// of its forward (JVP) and reverse (VJP) rules, the totals of one pass of each mode, the memory
// reverse mode must keep, the full Jacobian by either mode, and which mode to use. No values are
// needed: the derivative graphs are built (never run) and their nodes weighed by the op table.

import { forwardMode, reverseMode } from '../engine/ad/transform.js';
import type { Builder } from '../engine/ir/builder.js';
import { nodeCost } from '../engine/ir/evaluate.js';
import { dependents, liveSchedule, type Node, type NodeId } from '../engine/ir/graph.js';
import type { Engine } from '../engine/engine.js';
import type { Prepared } from '../engine/prepare.js';
import { sizeOf } from '../engine/tensor/tensor.js';
import { prepareFor, type ShapesRequest } from './source.js';
import { rowOp, stepArgs, traceRows } from './trace.js';

/** 8-byte float64 elements. */
const BYTES_PER_ELEMENT = 8;

export type AnalyzeRequest = ShapesRequest;

export interface Cost {
  flops: number;
  /** 8 × (elements read + elements written). */
  bytes: number;
}

export interface AnalyzeStep {
  id: string;
  op: string;
  args: (string | number)[];
  shape: number[];
  /** Evaluating this step. */
  flops: number;
  bytes: number;
  /** Its forward-mode (tangent) rule, for one tangent. */
  jvp: Cost;
  /** Its reverse-mode (adjoint) rule, for one cotangent. */
  vjp: Cost;
  /** Whether reverse mode keeps this step's value from the evaluation for its backward sweep. */
  kept: boolean;
  /** The earlier step this one computes the same value as (evaluated once, so it costs nothing here). */
  sharedWith?: string;
  position?: { line: number; column: number };
}

export interface JacobianCost {
  passes: number;
  flops: number;
}

export interface Analysis {
  steps: AnalyzeStep[];
  output: string;
  outputShape: number[];
  /** The inputs, with their shapes and whether they are differentiated (`wrt`). */
  inputs: { name: string; shape: number[]; wrt: boolean }[];
  cost: {
    eval: Cost;
    jvp: Cost;
    vjp: Cost;
    reverseMemory: number;
    jacobian: { n: number; m: number; forward: JacobianCost; reverse: JacobianCost };
  };
  recommendation: { mode: 'forward' | 'reverse'; reason: string };
}

export function analyze(engine: Engine, request: AnalyzeRequest): Analysis {
  const { prepared, wrt } = prepareFor(engine, request);
  return analysisOf(prepared, wrt);
}

// The analysis depends only on the prepared function and `wrt`: kept while the engine keeps the function.
const analyses = new WeakMap<Prepared, Map<string, Analysis>>();

export function analysisOf(prepared: Prepared, wrt: readonly string[]): Analysis {
  let byWrt = analyses.get(prepared);
  if (!byWrt) analyses.set(prepared, (byWrt = new Map()));
  const key = wrt.join(',');
  let analysis = byWrt.get(key);
  if (!analysis) byWrt.set(key, (analysis = buildAnalysis(prepared, wrt)));
  return analysis;
}

function zero(): Cost {
  return { flops: 0, bytes: 0 };
}

function add(into: Cost, graph: Builder, node: Node): void {
  if (node.op === 'input' || node.op === 'const') return;
  into.flops += nodeCost(graph, node);
  let elements = sizeOf(node.shape);
  for (const a of node.args) elements += sizeOf(graph.shapeOf(a));
  into.bytes += BYTES_PER_ELEMENT * elements;
}

/**
 * For each node of an optimising copy of the primal graph, the primal node it was built for: the
 * first one (in evaluation order) that maps to it. A step that shares an earlier node's value, or
 * that an identity removed (x * 1), maps to a node another step owns.
 */
function owners(prepared: Prepared, map: readonly NodeId[], count: number): Int32Array {
  const owner = new Int32Array(count).fill(prepared.output);
  let built = -1;
  for (const node of prepared.primal.nodes) {
    const copy = map[node.id]!;
    // A primitive within a step as written counts for the step.
    for (let c = built + 1; c <= copy; c++) owner[c] = node.within ?? node.id;
    built = Math.max(built, copy);
  }
  return owner;
}

type Costs = Map<NodeId, Cost>;

function costOf(costs: Costs, id: NodeId): Cost {
  let c = costs.get(id);
  if (!c) costs.set(id, (c = zero()));
  return c;
}

function total(costs: Costs): Cost {
  const sum = zero();
  for (const c of costs.values()) {
    sum.flops += c.flops;
    sum.bytes += c.bytes;
  }
  return rounded(sum);
}

/** What forward mode costs per primal step: the value program, and the tangent rules with every wrt input seeded. */
function weighForward(prepared: Prepared, wrt: readonly string[]) {
  const evalCost: Costs = new Map();
  const jvpCost: Costs = new Map();
  const { b, map } = prepared.copy();
  const count = b.nodes.length;
  const owner = owners(prepared, map, count);
  const out = map[prepared.output]!;
  const seeds = new Map(wrt.map((a) => [map[prepared.primal.inputs.get(a)!]!, b.input(`tangent:${a}`, prepared.inputShape(a))] as const));
  const tangentOut = forwardMode(b, count, seeds, [])[out];
  for (const id of liveSchedule(b, tangentOut == null ? [out] : [out, tangentOut])) {
    const node = b.node(id);
    if (id < count) add(costOf(evalCost, owner[id]!), b, node);
    else if (node.origin?.rule === 'jvp') add(costOf(jvpCost, owner[node.origin.node]!), b, node);
  }
  return { evalCost, jvpCost, owner, map, count };
}

/** What reverse mode costs per primal step (the adjoint rules), and which primal values it keeps. */
function weighReverse(prepared: Prepared, wrt: readonly string[], owner: Int32Array, count: number) {
  const vjpCost: Costs = new Map();
  const kept = new Set<NodeId>();
  const { b, map } = prepared.copy();
  const wrtIds = wrt.map((a) => map[prepared.primal.inputs.get(a)!]!);
  const cotangent = b.input('cotangent', prepared.outputShape);
  const adjoint = reverseMode(b, count, new Map([[map[prepared.output]!, cotangent]]), dependents(b, wrtIds), []);
  const adjointOuts = wrtIds.map((id) => adjoint[id]).filter((id): id is NodeId => id !== null && id !== undefined);
  let memory = 0;
  for (const id of liveSchedule(b, adjointOuts)) {
    const node = b.node(id);
    if (id < count || node.origin?.rule !== 'vjp') continue;
    add(costOf(vjpCost, owner[node.origin.node]!), b, node);
    for (const a of node.args) {
      const arg = b.node(a);
      if (a >= count || arg.op === 'const' || kept.has(a)) continue;
      kept.add(a);
      memory += BYTES_PER_ELEMENT * sizeOf(arg.shape);
    }
  }
  return { vjpCost, keptRows: new Set([...kept].map((c) => owner[c]!)), keptCount: kept.size, memory };
}

function buildAnalysis(prepared: Prepared, wrt: readonly string[]): Analysis {
  const primal = prepared.primal;
  const forward = weighForward(prepared, wrt);
  const reverse = weighReverse(prepared, wrt, forward.owner, forward.count);

  const steps = traceRows(prepared).map((node): AnalyzeStep => {
    const own = forward.evalCost.get(node.id) ?? zero();
    const step: AnalyzeStep = {
      id: node.label!,
      op: rowOp(node),
      args: stepArgs(prepared, node),
      shape: [...node.shape],
      flops: round(own.flops),
      bytes: own.bytes,
      jvp: rounded(forward.jvpCost.get(node.id)),
      vjp: rounded(reverse.vjpCost.get(node.id)),
      kept: reverse.keptRows.has(node.id),
    };
    const first = forward.owner[forward.map[node.id]!]!;
    if (first !== node.id && primal.nodes[first]!.label !== undefined) step.sharedWith = primal.nodes[first]!.label!;
    if (node.span) step.position = { line: node.span.line, column: node.span.column };
    return step;
  });

  const cost = { eval: total(forward.evalCost), jvp: total(forward.jvpCost), vjp: total(reverse.vjpCost) };
  const wrtSet = new Set(wrt);
  const inputs = prepared.inputs.map(({ name, shape }) => ({ name, shape: [...shape], wrt: wrtSet.has(name) }));
  const n = wrt.reduce((s, a) => s + sizeOf(prepared.inputShape(a)), 0);
  const m = sizeOf(prepared.outputShape);
  const jacobian = {
    n,
    m,
    forward: { passes: n, flops: round(cost.eval.flops + n * cost.jvp.flops) },
    reverse: { passes: m, flops: round(cost.eval.flops + m * cost.vjp.flops) },
  };
  return {
    steps,
    output: primal.nodes[prepared.output]!.label!,
    outputShape: [...prepared.outputShape],
    inputs,
    cost: { ...cost, reverseMemory: reverse.memory, jacobian },
    recommendation: recommend(inputs, jacobian, reverse.keptCount, reverse.memory),
  };
}

function round(x: number): number {
  return Math.round(x);
}

function rounded(c: Cost | undefined): Cost {
  return c ? { flops: round(c.flops), bytes: c.bytes } : zero();
}

/** The lecture's rule: forward mode when the inputs are fewer than the outputs (n < m), else reverse. */
function recommend(
  inputs: Analysis['inputs'],
  jacobian: Analysis['cost']['jacobian'],
  keptValues: number,
  reverseMemory: number,
): Analysis['recommendation'] {
  const { n, m, forward, reverse } = jacobian;
  const mode = n < m ? 'forward' : 'reverse';
  if (n === 0) {
    return { mode, reason: 'There is nothing to differentiate: the wrt inputs have no elements (n = 0), so the Jacobian is empty and no pass is needed.' };
  }
  const differentiated = inputs.filter((i) => i.wrt);
  const named = differentiated
    .slice(0, 6)
    .map((i) => `${i.name}: ${count(sizeOf(i.shape))}`)
    .join(', ');
  const more = differentiated.length > 6 ? `, and ${differentiated.length - 6} more` : '';
  const forwardWords =
    `forward mode needs n = ${count(n)} ${plural(n, 'pass', 'passes')}, one per input coordinate (${named}${more}), ` +
    `about ${count(forward.flops)} flops in all`;
  const reverseWords =
    `reverse mode needs m = ${count(m)} ${plural(m, 'pass', 'passes')}, one per output element, about ${count(reverse.flops)} flops in all, ` +
    `but must keep ${count(keptValues)} ${plural(keptValues, 'value', 'values')} from the evaluation (${size(reverseMemory)}) for its backward sweep`;
  const shape = `The Jacobian is m × n = ${count(m)} × ${count(n)}`;
  return mode === 'forward'
    ? { mode, reason: `Forward mode. ${shape} and n < m: ${forwardWords}, and keeps no values for a backward sweep, while ${reverseWords}.` }
    : { mode, reason: `Reverse mode. ${shape} and m ≤ n: ${reverseWords}, while ${forwardWords}.` };
}

function plural(k: number, one: string, many: string): string {
  return k === 1 ? one : many;
}

/** 1234567 -> "1,234,567"; very large numbers in exponent form. */
function count(x: number): string {
  if (!Number.isFinite(x) || x >= 1e15) return x.toExponential(2);
  return String(Math.round(x)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function size(bytes: number): string {
  const words = `${count(bytes)} ${plural(bytes, 'byte', 'bytes')}`;
  if (bytes < 1024) return words;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${words}, ${v.toFixed(1)} ${units[u]}`;
}
