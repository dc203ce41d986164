// Compiling a plan to straight-line JavaScript. Scalar elementwise steps become plain arithmetic
// on numbers (the op table's `scalar` code: no tensor, no allocation); every other step calls its
// kernel through a closure.
//
// The generated source never carries request text: its identifiers are ours (s12, v7, I, C, K, T,
// Math.*) and it holds no literals from the request — input names, constants and attributes stay
// in arrays passed to the compiled function, indexed by numbers we choose.

import { ENTRIES, OPS } from '../ops/table.js';
import type { AttrsOf, OpName } from '../ops/types.js';
import { SCALAR_HELPERS } from '../tensor/elementwise.js';
import type { Shape, Tensor } from '../tensor/tensor.js';
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

export function compilePlan(plan: Plan): Runner {
  const { graph, schedule, lastUse, outputs } = plan;
  const numeric = new Uint8Array(graph.nodes.length);
  for (const id of schedule) if (isNumeric(graph.nodes[id]!, numeric)) numeric[id] = 1;

  const inputNames: string[] = [];
  const inputShapes: Shape[] = [];
  const constants: number[] = [];
  const tensorConstants: Tensor[] = [];
  const kernels: ((...args: Tensor[]) => Tensor)[] = [];
  const lines: string[] = [];
  // A numeric step's tensor form is made where a kernel or an output needs it.
  const tensorOf = (a: NodeId): string => (numeric[a] ? `T(s${a})` : `v${a}`);

  schedule.forEach((id, pos) => {
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
    // Release tensors after their last use, so reverse mode keeps only what it must.
    for (const a of new Set(node.args)) {
      if (lastUse[a] === pos && !numeric[a]) lines.push(`v${a} = undefined;`);
    }
  });
  lines.push(`return [${outputs.map(tensorOf).join(', ')}];`);
  const source = `"use strict";\nreturn function run(I, C, D, K, T, H) {\n${lines.join('\n')}\n};`;
  const body = new Function(source)() as (
    I: Tensor[],
    C: number[],
    D: Tensor[],
    K: ((...args: Tensor[]) => Tensor)[],
    T: (v: number) => Tensor,
    H: typeof SCALAR_HELPERS,
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
    return body(bound, constants, tensorConstants, kernels, scalarTensor, SCALAR_HELPERS);
  };
  return Object.assign(runner, { source });
}
