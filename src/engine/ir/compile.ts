// Compiling a plan to straight-line JavaScript. Scalar elementwise steps become plain arithmetic
// on numbers (the op table's `scalar` code: no tensor, no allocation); connected elementwise
// steps over tensors of one size become one loop with the same scalar code per element, writing
// only the values used outside the loop (fuse.ts); every other step calls its kernel through a
// closure.
//
// The generated source never carries request text: its identifiers are ours (s12, v7, L2, p3, e3,
// o1, t5, n, i, I, C, D, K, T, H, Math.*) and its only literals are numbers we format (indices,
// sizes, dims) — input names, constants and attributes stay in arrays passed to the compiled
// function, indexed by numbers we choose.

import { ENTRIES, OPS } from '../ops/table.js';
import type { AttrsOf, OpName } from '../ops/types.js';
import { SCALAR_HELPERS } from '../tensor/elementwise.js';
import { sizeOf, type Shape, type Tensor } from '../tensor/tensor.js';
import { fuse, memberCode, type FusedGroup, type Unit } from './fuse.js';
import type { Graph, Node, NodeId } from './graph.js';
import type { Bindings, Plan, Runner } from './plan.js';

/** Plans longer than this stay interpreted (source size and compile time grow with the plan). */
export const MAX_COMPILED_STEPS = 4000;

/** A number as a one-element tensor of shape [] (T in the generated source). */
function scalarTensor(v: number): Tensor {
  return { shape: [], data: Float64Array.of(v) };
}

/** Is this step plain arithmetic on numbers? (scalar shape, elementwise op or scalar leaf) */
function isNumeric(node: Node, numeric: Uint8Array): boolean {
  if (node.shape.length !== 0) return false;
  if (node.op === 'input' || node.op === 'const') return true;
  if (ENTRIES[node.op].scalar === null) return false;
  return node.args.every((a) => numeric[a]);
}

/** A shape as source text: integers we format. */
function shapeText(shape: Shape): string {
  return `[${shape.map((d) => String(d)).join(', ')}]`;
}

type Kernel = (...args: Tensor[]) => Tensor;

/** The compiled function: inputs, numeric constants, tensor constants, kernels, and the scalar-to-tensor helper. */
type Body = (I: Tensor[], C: number[], D: Tensor[], K: Kernel[], T: (v: number) => Tensor) => Tensor[];

/** The generated program under construction: its lines and loops, and the arrays its source indexes into. */
interface Emission {
  readonly graph: Graph;
  readonly numeric: Uint8Array;
  readonly lines: string[];
  /** Loop function texts (after the name) to their names L<k>, in order of first use. */
  readonly loops: Map<string, string>;
  /** Input names and shapes, by slot in I (names never reach the source). */
  readonly inputNames: string[];
  readonly inputShapes: Shape[];
  /** Numeric constants (C), tensor constants (D) and kernel closures (K). */
  readonly constants: number[];
  readonly tensorConstants: Tensor[];
  readonly kernels: Kernel[];
}

/** A loop's parameters and call arguments, its read lines, and the names members see values by. */
interface LoopFrame {
  readonly params: string[];
  readonly args: string[];
  readonly body: string[];
  /** Outside values and members to their names in the loop (p<k>, e<k>, t<j>). */
  readonly local: Map<NodeId, string>;
  /** Stored members to their output arrays (o<k>). */
  readonly out: Map<NodeId, string>;
}

/** Compile a plan to a runner: straight-line source for its steps, turned into a function once. */
export function compilePlan(plan: Plan): Runner {
  const numeric = numericSteps(plan);
  const units = fuse(plan, numeric);
  const e: Emission = {
    graph: plan.graph,
    numeric,
    lines: [],
    loops: new Map(),
    inputNames: [],
    inputShapes: [],
    constants: [],
    tensorConstants: [],
    kernels: [],
  };
  emitUnits(e, units, plan.outputs);
  const source = programSource(e);
  const body = new Function('H', source)(SCALAR_HELPERS) as Body;
  return Object.assign(bindRunner(e, body), { source });
}

/** Which steps are compiled to plain numbers (1), in schedule order so arguments come first. */
function numericSteps({ graph, schedule }: Plan): Uint8Array {
  const numeric = new Uint8Array(graph.nodes.length);
  for (const id of schedule) if (isNumeric(graph.nodes[id]!, numeric)) numeric[id] = 1;
  return numeric;
}

/** A value as a tensor expression: a numeric step's tensor form is made where a kernel or an output needs it. */
function tensorOf(numeric: Uint8Array, a: NodeId): string {
  return numeric[a] ? `T(s${a})` : `v${a}`;
}

/**
 * Emit the units in order, each followed by the release of the tensors it read last (so reverse
 * mode keeps only what it must), then the return of the outputs.
 */
function emitUnits(e: Emission, units: readonly Unit[], outputs: readonly NodeId[]): void {
  const { graph, numeric, lines } = e;
  // Last use of each tensor value in the emitted order (units reorder the schedule).
  const unitReads = units.map((u) => ('node' in u ? graph.nodes[u.node]!.args : u.group.reads));
  const lastUse = new Int32Array(graph.nodes.length).fill(-1);
  unitReads.forEach((reads, q) => {
    for (const a of reads) lastUse[a] = q;
  });
  for (const o of outputs) lastUse[o] = units.length;
  units.forEach((unit, q) => {
    if ('node' in unit) emitNode(e, unit.node);
    else emitGroup(e, unit.group);
    for (const a of new Set(unitReads[q])) {
      if (lastUse[a] === q && !numeric[a]) lines.push(`v${a} = undefined;`);
    }
  });
  lines.push(`return [${outputs.map((o) => tensorOf(numeric, o)).join(', ')}];`);
}

/** Emit one step: an input or constant read from its array, scalar arithmetic, or a kernel call. */
function emitNode(e: Emission, id: NodeId): void {
  const { numeric, lines } = e;
  const node = e.graph.nodes[id]!;
  if (node.op === 'input') {
    const slot = e.inputNames.push((node as Node<'input'>).attrs.name) - 1;
    e.inputShapes.push(node.shape);
    lines.push(`let v${id} = I[${slot}];`);
    if (numeric[id]) lines.push(`const s${id} = v${id}.data[0];`);
  } else if (node.op === 'const') {
    const value = (node as Node<'const'>).attrs.value;
    if (numeric[id]) {
      lines.push(`const s${id} = C[${e.constants.push(value.data[0]!) - 1}];`);
    } else {
      lines.push(`let v${id} = D[${e.tensorConstants.push(value) - 1}];`);
    }
  } else if (numeric[id]) {
    // The entry's scalar code: isNumeric admitted only steps that have it.
    lines.push(`const s${id} = ${ENTRIES[node.op].scalar!(node.args.map((a) => `s${a}`))};`);
  } else {
    const impl = OPS[node.op].impl as (args: readonly Tensor[], attrs: AttrsOf<OpName>, shape: Shape) => Tensor;
    const { attrs, shape } = node;
    const k = e.kernels.push((...args: Tensor[]) => impl(args, attrs, shape)) - 1;
    lines.push(`let v${id} = K[${k}](${node.args.map((a) => tensorOf(numeric, a)).join(', ')});`);
  }
}

/**
 * Emit one loop, as a function of its own (L<k>): small enough for the optimising compiler
 * whatever the plan's size, and optimised alone when hot (a loop inside one huge function would
 * run unoptimised, or have the whole function recompiled on stack replacement). Its names are
 * positional — the length n; p<k> the k-th outside value, an array read at i into e<k> when it
 * has n elements, else its one number; o<k> the k-th stored member's array (made just before);
 * t<j> the j-th member — so loops of the same form (a repeated layer, a long chain cut in
 * pieces) share one function, compiled and warmed up once.
 */
function emitGroup(e: Emission, { size, members, stored, reads }: FusedGroup): void {
  const frame: LoopFrame = { params: ['n'], args: [String(size)], body: [], local: new Map(), out: new Map() };
  bindReads(e, size, reads, frame);
  bindStored(e, size, stored, frame);
  memberLines(e.graph, members, frame);
  const text = `(${frame.params.join(', ')}) {\nfor (let i = 0; i < n; i++) {\n${frame.body.join('\n')}\n}\n}`;
  let name = e.loops.get(text);
  if (name === undefined) e.loops.set(text, (name = `L${e.loops.size}`));
  e.lines.push(`${name}(${frame.args.join(', ')});`);
}

/** The loop's parameters p<k> for the outside values: arrays read at i into e<k>, or one number. */
function bindReads({ graph, numeric }: Emission, size: number, reads: readonly NodeId[], frame: LoopFrame): void {
  reads.forEach((a, k) => {
    frame.params.push(`p${k}`);
    if (sizeOf(graph.nodes[a]!.shape) === size && !numeric[a]) {
      frame.args.push(`v${a}.data`);
      frame.body.push(`const e${k} = p${k}[i];`);
      frame.local.set(a, `e${k}`);
    } else {
      frame.args.push(numeric[a] ? `s${a}` : `v${a}.data[0]`);
      frame.local.set(a, `p${k}`);
    }
  });
}

/** The loop's parameters o<k> for the stored members, whose arrays are made just before the call. */
function bindStored({ graph, lines }: Emission, size: number, stored: readonly NodeId[], frame: LoopFrame): void {
  stored.forEach((m, k) => {
    lines.push(`let v${m} = { shape: ${shapeText(graph.nodes[m]!.shape)}, data: new Float64Array(${size}) };`);
    frame.params.push(`o${k}`);
    frame.args.push(`v${m}.data`);
    frame.out.set(m, `o${k}`);
  });
}

/** The loop body's member lines: t<j> from its arguments' names, written to o<k> when stored. */
function memberLines(graph: Graph, members: readonly NodeId[], frame: LoopFrame): void {
  members.forEach((m, j) => {
    const node = graph.nodes[m]!;
    frame.body.push(`const t${j} = ${memberCode(node, node.args.map((a) => frame.local.get(a)!))};`);
    frame.local.set(m, `t${j}`);
    if (frame.out.has(m)) frame.body.push(`${frame.out.get(m)!}[i] = t${j};`);
  });
}

/** The whole generated source: the loop functions, then the run function over the emitted lines. */
function programSource({ loops, lines }: Emission): string {
  const loopSource = [...loops].map(([text, name]) => `function ${name}${text}\n`).join('');
  return `"use strict";\n${loopSource}return function run(I, C, D, K, T) {\n${lines.join('\n')}\n};`;
}

/** The runner: binds the inputs by name (checking the shapes the plan was prepared for) and calls the body. */
function bindRunner({ inputNames, inputShapes, constants, tensorConstants, kernels }: Emission, body: Body): (inputs: Bindings) => Tensor[] {
  return (inputs: Bindings): Tensor[] => {
    const bound = inputNames.map((name, j) => {
      const value = inputs.get(name);
      if (value === undefined) throw new Error(`internal: no value for input '${name}'`);
      const want = inputShapes[j]!;
      if (value.shape.length !== want.length || value.shape.some((d, i) => d !== want[i])) {
        throw new Error(`internal: input '${name}' bound with shape [${value.shape}], prepared for [${want}]`);
      }
      return value;
    });
    return body(bound, constants, tensorConstants, kernels, scalarTensor);
  };
}
