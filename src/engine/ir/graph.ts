// The computational graph: a straight-line list of primitive applications in evaluation order.
// Every node's shape is known when it is built, so a graph is checked once and evaluated often.

import type { SourceSpan } from '../errors.js';
import type { OpName, AttrsOf } from '../ops/types.js';
import type { Shape } from '../tensor/tensor.js';
import type { NodeId } from './node-id.js';

export type { NodeId } from './node-id.js';

/** Where a derived node came from: the rule of which primal node made it. */
export interface NodeOrigin {
  node: NodeId;
  rule: 'jvp' | 'vjp';
}

export interface Node<K extends OpName = OpName> {
  readonly id: NodeId;
  readonly op: K;
  readonly args: readonly NodeId[];
  readonly attrs: AttrsOf<K>;
  readonly shape: Shape;
  /** The user-visible id: an input's name, an assigned name, a graph node's id, or a generated `v<k>`. */
  label?: string;
  /** Where in the expression source this node was written. */
  span?: SourceSpan;
  /** For a node made by a derivative rule: the primal node whose rule made it. */
  origin?: NodeOrigin;
  /**
   * A step as written that lowered to several primitives (`x[0]`, `outer(x, y)`, `mean(x)`): on
   * its last primitive, the function's name and the step's tensor arguments. Traces show it as
   * one row.
   */
  call?: { fn: string; args: readonly NodeId[] };
  /** On the other primitives of such a step: the node that stands for the step. */
  within?: NodeId;
}

export interface Graph {
  readonly nodes: readonly Node[];
  /** Input nodes by name. */
  readonly inputs: ReadonlyMap<string, NodeId>;
}

/** Nodes reachable backwards from `outputs`, in evaluation (index) order. */
export function liveSchedule(graph: Graph, outputs: readonly NodeId[]): NodeId[] {
  const live = new Uint8Array(graph.nodes.length);
  for (const o of outputs) live[o] = 1;
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    if (!live[i]) continue;
    for (const a of graph.nodes[i]!.args) live[a] = 1;
  }
  const order: NodeId[] = [];
  for (let i = 0; i < graph.nodes.length; i++) if (live[i]) order.push(i);
  return order;
}

/** Which nodes depend on any of `sources` (forward reachability). */
export function dependents(graph: Graph, sources: Iterable<NodeId>): Uint8Array {
  const active = new Uint8Array(graph.nodes.length);
  for (const s of sources) active[s] = 1;
  for (const node of graph.nodes) {
    if (active[node.id]) continue;
    for (const a of node.args) {
      if (active[a]) {
        active[node.id] = 1;
        break;
      }
    }
  }
  return active;
}

