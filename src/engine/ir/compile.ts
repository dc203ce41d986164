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
import { fuse, memberCode, type FusedGroup } from './fuse.js';
import type { Node, NodeId } from './graph.js';
import type { Bindings, Plan, Runner } from './plan.js';

/** Plans longer than this stay interpreted (source size and compile time grow with the plan). */
export const MAX_COMPILED_STEPS = 4000;

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

export function compilePlan(plan: Plan): Runner {
  const { graph, schedule, outputs } = plan;
  const numeric = new Uint8Array(graph.nodes.length);
  for (const id of schedule) if (isNumeric(graph.nodes[id]!, numeric)) numeric[id] = 1;
  const units = fuse(plan, numeric);

  // Last use of each tensor value in the emitted order (units reorder the schedule).
  const unitReads = units.map((u) => ('node' in u ? graph.nodes[u.node]!.args : u.group.reads));
  const lastUse = new Int32Array(graph.nodes.length).fill(-1);
  unitReads.forEach((reads, q) => {
    for (const a of reads) lastUse[a] = q;
  });
  for (const o of outputs) lastUse[o] = units.length;

  const inputNames: string[] = [];
  const inputShapes: Shape[] = [];
  const constants: number[] = [];
  const tensorConstants: Tensor[] = [];
  const kernels: ((...args: Tensor[]) => Tensor)[] = [];
  const lines: string[] = [];
  // A numeric step's tensor form is made where a kernel or an output needs it.
  const tensorOf = (a: NodeId): string => (numeric[a] ? `T(s${a})` : `v${a}`);

  const emitNode = (id: NodeId): void => {
    const node = graph.nodes[id]!;
    if (node.op === 'input') {
      const slot = inputNames.push((node as Node<'input'>).attrs.name) - 1;
      inputShapes.push(node.shape);
      lines.push(`let v${id} = I[${slot}];`);
      if (numeric[id]) lines.push(`const s${id} = v${id}.data[0];`);
    } else if (node.op === 'const') {
      const value = (node as Node<'const'>).attrs.value;
      if (numeric[id]) {
        lines.push(`const s${id} = C[${constants.push(value.data[0]!) - 1}];`);
      } else {
        lines.push(`let v${id} = D[${tensorConstants.push(value) - 1}];`);
      }
    } else if (numeric[id]) {
      // The entry's scalar code: isNumeric admitted only steps that have it.
      lines.push(`const s${id} = ${ENTRIES[node.op].scalar!(node.args.map((a) => `s${a}`))};`);
    } else {
      const impl = OPS[node.op].impl as (args: readonly Tensor[], attrs: AttrsOf<OpName>, shape: Shape) => Tensor;
      const { attrs, shape } = node;
      const k = kernels.push((...args: Tensor[]) => impl(args, attrs, shape)) - 1;
      lines.push(`let v${id} = K[${k}](${node.args.map(tensorOf).join(', ')});`);
    }
  };

  // One loop, as a function of its own (L<k>): small enough for the optimising compiler whatever
  // the plan's size, and optimised alone when hot (a loop inside one huge function would run
  // unoptimised, or have the whole function recompiled on stack replacement). Its names are
  // positional — the length n; p<k> the k-th outside value, an array read at i into e<k> when it
  // has n elements, else its one number; o<k> the k-th stored member's array (made just before);
  // t<j> the j-th member — so loops of the same form (a repeated layer, a long chain cut in
  // pieces) share one function, compiled and warmed up once.
  const loops = new Map<string, string>();
  const emitGroup = ({ size, members, stored, reads }: FusedGroup): void => {
    const params = ['n'];
    const args = [String(size)];
    const body: string[] = [];
    const local = new Map<NodeId, string>();
    reads.forEach((a, k) => {
      params.push(`p${k}`);
      if (sizeOf(graph.nodes[a]!.shape) === size && !numeric[a]) {
        args.push(`v${a}.data`);
        body.push(`const e${k} = p${k}[i];`);
        local.set(a, `e${k}`);
      } else {
        args.push(numeric[a] ? `s${a}` : `v${a}.data[0]`);
        local.set(a, `p${k}`);
      }
    });
    const out = new Map<NodeId, string>();
    stored.forEach((m, k) => {
      lines.push(`let v${m} = { shape: ${shapeText(graph.nodes[m]!.shape)}, data: new Float64Array(${size}) };`);
      params.push(`o${k}`);
      args.push(`v${m}.data`);
      out.set(m, `o${k}`);
    });
    members.forEach((m, j) => {
      const node = graph.nodes[m]!;
      body.push(`const t${j} = ${memberCode(node, node.args.map((a) => local.get(a)!))};`);
      local.set(m, `t${j}`);
      if (out.has(m)) body.push(`${out.get(m)!}[i] = t${j};`);
    });
    const text = `(${params.join(', ')}) {\nfor (let i = 0; i < n; i++) {\n${body.join('\n')}\n}\n}`;
    let name = loops.get(text);
    if (name === undefined) loops.set(text, (name = `L${loops.size}`));
    lines.push(`${name}(${args.join(', ')});`);
  };

  units.forEach((unit, q) => {
    if ('node' in unit) emitNode(unit.node);
    else emitGroup(unit.group);
    // Release tensors after their last use, so reverse mode keeps only what it must.
    for (const a of new Set(unitReads[q])) {
      if (lastUse[a] === q && !numeric[a]) lines.push(`v${a} = undefined;`);
    }
  });
  lines.push(`return [${outputs.map(tensorOf).join(', ')}];`);
  const loopSource = [...loops].map(([text, name]) => `function ${name}${text}\n`).join('');
  const source = `"use strict";\n${loopSource}return function run(I, C, D, K, T) {\n${lines.join('\n')}\n};`;
  const body = new Function('H', source)(SCALAR_HELPERS) as (
    I: Tensor[],
    C: number[],
    D: Tensor[],
    K: ((...args: Tensor[]) => Tensor)[],
    T: (v: number) => Tensor,
  ) => Tensor[];

  const runner = (inputs: Bindings): Tensor[] => {
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
  return Object.assign(runner, { source });
}
