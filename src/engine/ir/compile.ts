// Compiling a plan to straight-line JavaScript. Scalar elementwise steps become plain arithmetic
// on numbers (no tensor, no allocation); every other step calls its kernel through a closure.
//
// The generated source never carries request text: its identifiers are ours (s12, v7, I, C, K, T,
// Math.*) and it holds no literals from the request — input names, constants and attributes stay
// in arrays passed to the compiled function, indexed by numbers we choose.

import { OPS } from '../ops/table.js';
import type { AttrsOf, OpName } from '../ops/types.js';
import { BINARY_NAMES, UNARY_NAMES, relu, sigmoid, softplus, type BinaryName, type UnaryName } from '../tensor/elementwise.js';
import type { Shape, Tensor } from '../tensor/tensor.js';
import type { Node, NodeId } from './graph.js';
import type { Bindings, Plan } from './evaluate.js';

/** A compiled plan; `source` is the generated code (for inspection and tests). */
export type Runner = ((inputs: Bindings) => Tensor[]) & { readonly source: string };

/** Plans longer than this stay interpreted (source size and compile time grow with the plan). */
export const MAX_COMPILED_STEPS = 4000;

const UNARY = new Set<string>(UNARY_NAMES);
const BINARY = new Set<string>(BINARY_NAMES);

/** Scalar expressions over numbers, one per elementwise op; `H` holds the few helper functions. */
const UNARY_EXPR: { readonly [K in UnaryName]: (a: string) => string } = {
  neg: (a) => `(-${a})`,
  abs: (a) => `Math.abs(${a})`,
  sign: (a) => `Math.sign(${a})`,
  exp: (a) => `Math.exp(${a})`,
  log: (a) => `Math.log(${a})`,
  log1p: (a) => `Math.log1p(${a})`,
  expm1: (a) => `Math.expm1(${a})`,
  sqrt: (a) => `Math.sqrt(${a})`,
  sin: (a) => `Math.sin(${a})`,
  cos: (a) => `Math.cos(${a})`,
  tan: (a) => `Math.tan(${a})`,
  asin: (a) => `Math.asin(${a})`,
  acos: (a) => `Math.acos(${a})`,
  atan: (a) => `Math.atan(${a})`,
  sinh: (a) => `Math.sinh(${a})`,
  cosh: (a) => `Math.cosh(${a})`,
  tanh: (a) => `Math.tanh(${a})`,
  sigmoid: (a) => `H.sigmoid(${a})`,
  relu: (a) => `H.relu(${a})`,
  softplus: (a) => `H.softplus(${a})`,
};

const BINARY_EXPR: { readonly [K in BinaryName]: (a: string, b: string) => string } = {
  add: (a, b) => `(${a} + ${b})`,
  sub: (a, b) => `(${a} - ${b})`,
  mul: (a, b) => `(${a} * ${b})`,
  div: (a, b) => `(${a} / ${b})`,
  pow: (a, b) => `H.pow(${a}, ${b})`,
  maximum: (a, b) => `Math.max(${a}, ${b})`,
  minimum: (a, b) => `Math.min(${a}, ${b})`,
  lt: (a, b) => `(${a} < ${b} ? 1 : 0)`,
  le: (a, b) => `(${a} <= ${b} ? 1 : 0)`,
  gt: (a, b) => `(${a} > ${b} ? 1 : 0)`,
  ge: (a, b) => `(${a} >= ${b} ? 1 : 0)`,
  eq: (a, b) => `(${a} === ${b} ? 1 : 0)`,
  ne: (a, b) => `(${a} !== ${b} ? 1 : 0)`,
};

/** x^y exactly as the pow kernel computes it (its fast paths included). */
function pow(a: number, b: number): number {
  if (b === 2) return a * a;
  if (b === 1) return a;
  if (b === 0.5) return a === -Infinity ? Infinity : Math.sqrt(a) + 0;
  return Math.pow(a, b);
}

const HELPERS = { sigmoid, relu, softplus, pow };

function scalarTensor(v: number): Tensor {
  return { shape: [], data: Float64Array.of(v) };
}

/** Is this step plain arithmetic on numbers? (scalar shape, elementwise op or scalar leaf) */
function isNumeric(node: Node, numeric: Uint8Array): boolean {
  if (node.shape.length !== 0) return false;
  if (node.op === 'input' || node.op === 'const') return true;
  if (!(UNARY.has(node.op) || BINARY.has(node.op) || node.op === 'where')) return false;
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
      const args = node.args.map((a) => `s${a}`);
      const expr =
        node.op === 'where'
          ? `(${args[0]} !== 0 ? ${args[1]} : ${args[2]})`
          : UNARY.has(node.op)
            ? UNARY_EXPR[node.op as UnaryName](args[0]!)
            : BINARY_EXPR[node.op as BinaryName](args[0]!, args[1]!);
      lines.push(`const s${id} = ${expr};`);
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
    H: typeof HELPERS,
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
    return body(bound, constants, tensorConstants, kernels, scalarTensor, HELPERS);
  };
  return Object.assign(runner, { source });
}
