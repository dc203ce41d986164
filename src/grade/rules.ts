// One step of the reference on its own, as the test harness builds a primitive: its value and
// tangent from its arguments' values and tangents (forward mode), and the contribution of its
// adjoint to each argument's (reverse mode). Error carried forward feeds these with a student's
// own earlier numbers. Built from the engine's builder and transforms, once per step per request.

import { rowArgs } from '../engine/ad/trace.js';
import { forwardMode, reverseMode } from '../engine/ad/transform.js';
import { Builder } from '../engine/ir/builder.js';
import { makePlan, run, type Plan } from '../engine/ir/evaluate.js';
import { dependents, type NodeId } from '../engine/ir/graph.js';
import type { AttrsOf, OpName } from '../engine/ops/types.js';
import type { Tensor } from '../engine/tensor/tensor.js';
import { planCost, type Budget } from './formula.js';
import type { Row } from './reference.js';

/** The row's primitive applied to fresh inputs a0, a1, ... (inline constants stay constants). */
interface OneStep {
  b: Builder;
  out: NodeId;
  /** For each argument position: the input node it is bound to, or null for an inline constant. */
  args: (NodeId | null)[];
}

function oneStep(row: Row, rows: readonly Row[]): OneStep {
  const b = new Builder({ optimize: true });
  const inputs: (NodeId | null)[] = [];
  const argIds = row.args.map((arg, i) => {
    if ('constant' in arg) {
      inputs.push(null);
      return b.constant(arg.constant);
    }
    const id = b.input(`a${i}`, rows[arg.row]!.shape);
    inputs.push(id);
    return id;
  });
  // The step's primitives replayed over the inputs (a step as written may be several).
  const copies = new Map<NodeId, NodeId>(rowArgs(row.node).map((a, i) => [a, argIds[i]!]));
  let out = argIds[0]!;
  for (const step of row.steps) {
    const args = step.args.map((a) => copies.get(a) ?? b.constant(row.constants.get(a)!));
    out = b.apply(step.op, args, step.attrs as AttrsOf<OpName>);
    copies.set(step.id, out);
  }
  return { b, out, args: inputs };
}

export class StepRules {
  private readonly forwardPlans = new Map<number, Plan>();
  private readonly reversePlans = new Map<number, { plan: Plan; positions: number[] }>();

  constructor(
    private readonly rows: readonly Row[],
    private readonly budget: Budget,
  ) {}

  /** The row's value and tangent from each argument row's value and tangent. */
  forward(row: Row, values: readonly Tensor[], tangents: readonly Tensor[]): { value: Tensor; tangent: Tensor } {
    let plan = this.forwardPlans.get(row.index);
    if (plan === undefined) {
      const { b, out, args } = oneStep(row, this.rows);
      const count = b.nodes.length;
      const seeds = new Map<NodeId, NodeId>();
      args.forEach((id, i) => {
        if (id !== null) seeds.set(id, b.input(`t${i}`, b.shapeOf(id)));
      });
      const tangent = forwardMode(b, count, seeds, [])[out] ?? b.zeros(b.shapeOf(out));
      plan = makePlan(b, [out, tangent]);
      this.forwardPlans.set(row.index, plan);
    }
    this.budget.spend(planCost(plan));
    const bindings = new Map<string, Tensor>();
    row.args.forEach((arg, i) => {
      if ('row' in arg) {
        bindings.set(`a${i}`, values[arg.row]!);
        bindings.set(`t${i}`, tangents[arg.row]!);
      }
    });
    const [value, tangent] = run(plan, bindings);
    return { value: value!, tangent: tangent! };
  }

  /** What the row's adjoint `adjoint` contributes to each of its argument rows' adjoints, by argument row. */
  reverse(row: Row, values: readonly Tensor[], adjoint: Tensor): Map<number, Tensor> {
    let rule = this.reversePlans.get(row.index);
    if (rule === undefined) {
      const { b, out, args } = oneStep(row, this.rows);
      const count = b.nodes.length;
      const g = b.input('g', row.shape);
      const inputs = args.filter((id): id is NodeId => id !== null);
      const adjoints = reverseMode(b, count, new Map([[out, g]]), dependents(b, inputs), []);
      const positions: number[] = [];
      const outputs: NodeId[] = [];
      args.forEach((id, i) => {
        if (id === null) return;
        positions.push(i);
        outputs.push(adjoints[id] ?? b.zeros(b.shapeOf(id)));
      });
      rule = { plan: makePlan(b, outputs), positions };
      this.reversePlans.set(row.index, rule);
    }
    this.budget.spend(planCost(rule.plan));
    const bindings = new Map<string, Tensor>([['g', adjoint]]);
    row.args.forEach((arg, i) => {
      if ('row' in arg) bindings.set(`a${i}`, values[arg.row]!);
    });
    const contributions = run(rule.plan, bindings);
    const byRow = new Map<number, Tensor>();
    rule.positions.forEach((position, k) => {
      const arg = row.args[position] as { row: number };
      const c = contributions[k]!;
      const before = byRow.get(arg.row);
      // x * x: both positions feed the same row.
      byRow.set(arg.row, before === undefined ? c : { shape: c.shape, data: c.data.map((v, e) => v + before.data[e]!) });
    });
    return byRow;
  }
}
