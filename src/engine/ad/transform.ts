// Forward mode (tangent propagation) and reverse mode (adjoint accumulation) as graph-to-graph
// transformations: each appends the derivative computation to the builder, in primitives, so the
// result can be evaluated many times, differentiated again, or compiled.

import type { Builder } from '../ir/builder.js';
import type { Node, NodeId } from '../ir/graph.js';
import { OPS } from '../ops/table.js';
import type { AttrsOf, JvpRule, OpName, RuleContext, VjpRule } from '../ops/types.js';
import { shapesEqual, type Shape } from '../tensor/tensor.js';

/**
 * Forward mode over nodes [0, count) of the builder: the tangent of every node, given the tangents
 * of some inputs (`seeds`: input node -> tangent node of shape [...batch, ...input shape]).
 * Unseeded inputs and constants have zero tangent (null), and zeros are never materialised.
 */
export function forwardMode(b: Builder, count: number, seeds: ReadonlyMap<NodeId, NodeId>, batch: Shape): (NodeId | null)[] {
  const tangent = new Array<NodeId | null>(count).fill(null);
  const ctx: RuleContext = { b, batch };
  const saved = b.site;
  try {
    for (let id = 0; id < count; id++) {
      const node = b.node(id);
      if (node.op === 'input') {
        tangent[id] = seeds.get(id) ?? null;
        continue;
      }
      if (node.op === 'const') continue;
      const argTangents = node.args.map((a) => tangent[a]!);
      if (argTangents.every((t) => t === null)) continue;
      b.site = { span: node.span, origin: { node: node.origin?.node ?? id, rule: 'jvp' } };
      const padded = batch.length > 0 && OPS[node.op].broadcasts ? alignBatched(b, node, argTangents, batch) : argTangents;
      const rule = OPS[node.op].jvp as JvpRule<AttrsOf<OpName>>;
      const t = rule(ctx, node.args, padded, id, node.attrs);
      tangent[id] = t === null ? null : fitTangent(b, t, batch, node.shape);
    }
  } finally {
    b.site = saved;
  }
  return tangent;
}

/**
 * Reverse mode: adjoints of nodes [0, count) given output cotangents (each of shape
 * [...batch, ...output shape]). Only nodes marked in `active` (those that depend on a wrt input)
 * receive adjoints; the rest are skipped. Each node's adjoint is the sum over its consumers.
 */
export function reverseMode(
  b: Builder,
  count: number,
  cotangents: ReadonlyMap<NodeId, NodeId>,
  active: Uint8Array,
  batch: Shape,
): (NodeId | null)[] {
  const adjoint = new Array<NodeId | null>(count).fill(null);
  for (const [node, g] of cotangents) adjoint[node] = adjoint[node] === null ? g : b.add(adjoint[node]!, g);
  const ctx: RuleContext = { b, batch };
  const saved = b.site;
  try {
    for (let id = count - 1; id >= 0; id--) {
      const g = adjoint[id];
      if (g === null || g === undefined) continue;
      const node = b.node(id);
      if (node.op === 'input' || node.op === 'const') continue;
      b.site = { span: node.span, origin: { node: node.origin?.node ?? id, rule: 'vjp' } };
      const def = OPS[node.op];
      node.args.forEach((arg, i) => {
        if (!active[arg]) return;
        const rule = (typeof def.vjp === 'function' ? def.vjp(i) : def.vjp[i]) as VjpRule<AttrsOf<OpName>> | null | undefined;
        if (!rule) return;
        const contribution = fitToShape(b, rule(ctx, g, node.args, id, node.attrs), batch, b.shapeOf(arg));
        adjoint[arg] = adjoint[arg] === null ? contribution : b.add(adjoint[arg]!, contribution);
      });
    }
  } finally {
    b.site = saved;
  }
  return adjoint;
}

/**
 * Batched tangents of a broadcasting op: pad each to the op's largest argument rank, just after
 * the batch dims, so the batch dims line up instead of broadcasting against core dims.
 */
function alignBatched(b: Builder, node: Node, tangents: readonly (NodeId | null)[], batch: Shape): (NodeId | null)[] {
  const rank = Math.max(...node.args.map((a) => b.shapeOf(a).length));
  return tangents.map((t, i) => {
    if (t === null) return null;
    const shape = b.shapeOf(node.args[i]!);
    if (shape.length === rank) return t;
    return b.reshape(t, shape, [...new Array<number>(rank - shape.length).fill(1), ...shape]);
  });
}

/** Bring a rule's tangent to exactly [...batch, ...shape] by broadcasting it up. */
function fitTangent(b: Builder, t: NodeId, batch: Shape, shape: Shape): NodeId {
  const want = [...batch, ...shape];
  const have = b.shapeOf(t);
  if (shapesEqual(have, want)) return t;
  const core = have.slice(batch.length);
  if (have.length - batch.length > shape.length) {
    throw new Error(`internal: a tangent of shape [${have}] does not fit [${want}]`);
  }
  const padded = core.length < shape.length ? b.reshape(t, core, [...new Array<number>(shape.length - core.length).fill(1), ...core]) : t;
  return b.broadcastTo(padded, shape);
}

/**
 * Undo broadcasting, in exactly one place: sum a cotangent contribution of shape
 * [...batch, ...c] down to [...batch, ...shape] (extra leading dims and stretched 1-dims), or
 * broadcast it up where the rule returned something smaller.
 */
export function fitToShape(b: Builder, c: NodeId, batch: Shape, shape: Shape): NodeId {
  const want = [...batch, ...shape];
  let have = b.shapeOf(c);
  if (shapesEqual(have, want)) return c;
  let core = have.slice(batch.length);
  if (core.length > shape.length) {
    const extra = core.length - shape.length;
    const axes = Array.from({ length: extra }, (_, i) => i - core.length);
    c = b.sum(c, axes, false);
    have = b.shapeOf(c);
    core = have.slice(batch.length);
  }
  const stretched: number[] = [];
  for (let i = 0; i < core.length; i++) {
    if (shape[i] === 1 && core[i] !== 1) stretched.push(i - core.length);
  }
  if (stretched.length > 0) {
    c = b.sum(c, stretched, true);
    core = b.shapeOf(c).slice(batch.length);
  }
  if (shapesEqual(core, shape)) return c;
  const padded = core.length < shape.length ? b.reshape(c, core, [...new Array<number>(shape.length - core.length).fill(1), ...core]) : c;
  return b.broadcastTo(padded, shape);
}
