// Running a derived program and saying where its NaNs or infinities came from: the warnings
// every computation of ad/ returns beside its tensors.

import { hasNonFinite, nonFiniteOrigins, run, type Bindings, type Plan } from '../ir/evaluate.js';
import type { Node } from '../ir/graph.js';
import { nonFiniteHint } from '../ops/table.js';
import type { Program } from '../prepare.js';
import type { Tensor } from '../tensor/tensor.js';

export interface Warning {
  code: string;
  message: string;
  node?: string;
  position?: { line: number; column: number };
}

/** Estimated cost of one interpreted step beyond its flops (dispatch, allocation), in flop units. */
export const STEP_COST = 1000;

/** A program's estimated work: its flops, every element it writes, and a dispatch cost per step. */
export function work(plan: Plan): number {
  return plan.flops + plan.elements + STEP_COST * plan.schedule.length;
}

/** Run a program; when an output is not finite, say where the NaNs or infinities came from. */
export function runChecked(program: Program, bindings: Bindings, warnings: Warning[]): Tensor[] {
  const outputs = run(program.plan, bindings);
  if (outputs.some(hasNonFinite)) {
    for (const warning of nonFiniteWarnings(program.plan, bindings)) {
      if (!warnings.some((w) => w.message === warning.message)) warnings.push(warning);
    }
  }
  return outputs;
}

function nonFiniteWarnings(plan: Plan, bindings: Bindings): Warning[] {
  const graph = plan.graph;
  const origins = nonFiniteOrigins(plan, bindings);
  const warnings: Warning[] = origins.inputs.map((id) => {
    const name = (graph.nodes[id] as Node<'input'>).attrs.name;
    const what = name === 'cotangent' ? 'the cotangent' : `the ${name.startsWith('tangent:') ? 'tangent of ' : 'input '}'${name.replace(/^tangent:/, '')}'`;
    return { code: 'non_finite_input', message: `${what} holds NaN or infinite values`, node: name.replace(/^tangent:/, '') };
  });
  if (origins.first === undefined) return warnings;
  const node = graph.nodes[origins.first]!;
  const primal = node.origin ? graph.nodes[node.origin.node]! : node;
  const label = primal.label ?? `#${primal.id}`;
  const where = primal.span ? ` (line ${primal.span.line}, column ${primal.span.column})` : '';
  const warning: Warning = {
    code: 'non_finite',
    message: node.origin
      ? `a NaN or infinity first arose in the ${node.origin.rule === 'jvp' ? 'forward-mode (tangent)' : 'reverse-mode (adjoint)'} rule of ${primal.op} at ${label}${where}` +
        suffix(': ', nonFiniteHint(primal.op, 'derivative'), '')
      : `a NaN or infinity first arose at ${label}${where}: ${node.op}` + suffix(' (', nonFiniteHint(node.op), ')'),
    node: label,
  };
  if (primal.span) warning.position = { line: primal.span.line, column: primal.span.column };
  warnings.push(warning);
  return warnings;
}

function suffix(before: string, hint: string | undefined, after: string): string {
  return hint === undefined ? '' : `${before}${hint}${after}`;
}
