// Fusing elementwise steps of a plan into loops, for the compiler (compile.ts).
//
// A group is a connected set of elementwise tensor steps of one size N (one loop i < N). A
// member's every argument is another member, an outside value of N elements read at index i
// (equal size means equal element order: broadcasting only inserts dims of size 1), or an
// outside value of one element read once before the loop. So element i of every member is
// computed from element i of its arguments by its op's scalar code: the same arithmetic, in the
// same order, as the kernel — bit for bit. Only the members used outside the group (by another
// step, another group, or as a plan output) are written to arrays; the rest live in locals.
//
// Groups grow from consumers to producers. Contracting them must keep the step graph acyclic: a
// node joins a group only when none of its users outside the group leads back to it (else the
// loop would need a value that needs the loop). A group has at most MAX_LOOP_MEMBERS members; a
// group of one stays a kernel call. Steps are then emitted in a topological order of the
// contracted graph that follows the plan's schedule, each group where its last member was (or
// earlier, when a step needs it).

import { ENTRIES } from '../ops/table.js';
import { sizeOf } from '../tensor/tensor.js';
import type { Graph, Node, NodeId } from './graph.js';
import type { Plan } from './plan.js';

/** A fused loop: members in evaluation order, and those whose values must be written out. */
export interface FusedGroup {
  /** Elements of every member (the loop's length). */
  readonly size: number;
  readonly members: readonly NodeId[];
  /** Members used outside the group or returned: written to a Float64Array each. */
  readonly stored: readonly NodeId[];
  /** Values from outside the group that the members read, in first-use order. */
  readonly reads: readonly NodeId[];
}

/** One step of the emitted program: a single node, or a fused loop. */
export type Unit = { readonly node: NodeId } | { readonly group: FusedGroup };

/** Work allowed for the acyclicity checks of one plan (nodes visited); beyond it nodes stay apart. */
const CHECK_BUDGET = 2_000_000;

/**
 * Most members of one loop: its function stays small enough for V8's optimising compiler (which
 * skips functions past 60 KB of bytecode, some 20 bytes a member) and quick to optimise.
 */
export const MAX_LOOP_MEMBERS = 500;

/** Can this node be computed element by element at index i of a loop of `size(node)` elements? */
function fusible(graph: Graph, node: Node, numeric: Uint8Array): boolean {
  if (numeric[node.id]) return false;
  const n = sizeOf(node.shape);
  if (n === 0) return false;
  // Every argument is read at index i (same size) or once (one element).
  const aligned = node.args.every((a) => {
    const m = sizeOf(graph.nodes[a]!.shape);
    return m === n || m === 1;
  });
  if (!aligned) return false;
  // broadcast_to of one element or of as many (then only dims of size 1 are added): a copy.
  if (node.op === 'broadcast_to') return true;
  // The pure elementwise ops have scalar code; it sees no attributes, so fuse only ops with none.
  return ENTRIES[node.op].scalar !== null && Object.keys(node.attrs).length === 0;
}

/** The element expression of a member, given the expressions of its arguments. */
export function memberCode(node: Node, args: readonly string[]): string {
  if (node.op === 'broadcast_to') return args[0]!;
  return ENTRIES[node.op].scalar!(args);
}

/**
 * Group the plan's elementwise tensor steps into fused loops and order the program's steps.
 * `numeric` marks the steps compiled to plain numbers (scalars): they are never members.
 */
export function fuse(plan: Plan, numeric: Uint8Array): Unit[] {
  const sizes = stepSizes(plan);
  const grouping = new Grouping(plan.graph, plan.schedule);
  growGroups(plan, numeric, sizes, grouping);
  grouping.dissolveSingletons();
  const layout = membership(plan, grouping);
  const groups = describeGroups(plan.graph, sizes, layout, grouping);
  return emitOrder(plan, grouping, layout.members, groups);
}

/** A loop's members in schedule order, by root, and which steps must be written to arrays. */
interface Membership {
  readonly members: Map<number, NodeId[]>;
  /** 1: the step's value is used outside its group or returned. */
  readonly stored: Uint8Array;
}

/**
 * Union-find over a plan's steps (parent[id] = -1: not a member; a group is named by its root),
 * with the users of every step and group: the contracted graph the acyclicity checks walk.
 */
class Grouping {
  /** Each step's parent in its group's tree (a root is its own parent; -1: not a member). */
  readonly parent: Int32Array;
  /** Users of each step in the schedule. */
  readonly users: NodeId[][];
  /** Users of all members, by root (internal ones included: filtered when read). */
  private readonly groupUsers = new Map<number, NodeId[]>();
  /** Members of each group, by root. */
  readonly memberCount = new Map<number, number>();
  private readonly mark: Int32Array;
  private stamp = 0;
  private budget = CHECK_BUDGET;

  constructor(graph: Graph, schedule: readonly NodeId[]) {
    const count = graph.nodes.length;
    this.parent = new Int32Array(count).fill(-1);
    this.mark = new Int32Array(count);
    this.users = graph.nodes.map(() => []);
    for (const id of schedule) for (const a of graph.nodes[id]!.args) this.users[a]!.push(id);
  }

  /** The root of a member's group (compressing the path). */
  find(x: number): number {
    const parent = this.parent;
    let r = x;
    while (parent[r] !== r) r = parent[r]!;
    while (parent[x] !== r) {
      const next = parent[x]!;
      parent[x] = r;
      x = next;
    }
    return r;
  }

  /** The unit a step is emitted in: its group's root, or itself when not a member. */
  unitOf(x: NodeId): number {
    return this.parent[x]! < 0 ? x : this.find(x);
  }

  /** Does any of `sources` lead to one of the groups `targets` (through the contracted graph)? */
  private leadsTo(sources: readonly NodeId[], targets: readonly number[]): boolean {
    const stamp = ++this.stamp;
    const mark = this.mark;
    const stack = sources.map((s) => this.unitOf(s));
    while (stack.length > 0) {
      const u = stack.pop()!;
      if (targets.includes(u)) return true;
      if (mark[u] === stamp) continue;
      mark[u] = stamp;
      const next = this.parent[u]! < 0 ? this.users[u]! : this.groupUsers.get(u)!;
      this.budget -= next.length + 1;
      if (this.budget < 0) return true; // out of budget: assume the worst, keep apart
      for (const d of next) {
        const v = this.unitOf(d);
        if (v !== u && mark[v] !== stamp) stack.push(v);
      }
    }
    return false;
  }

  /** Users of `id` and of the groups `roots` that lie outside all of them. */
  private outsideUsers(id: NodeId, roots: readonly number[]): NodeId[] {
    const all = [...this.users[id]!];
    if (roots.length > 1) for (const r of roots) all.push(...this.groupUsers.get(r)!);
    return all.filter((u) => !roots.includes(this.unitOf(u)));
  }

  /** Join `id` to the loops `roots` (merged), unless the loop would grow too long or close a cycle. */
  tryJoin(id: NodeId, roots: readonly number[]): boolean {
    let total = 1;
    for (const r of roots) total += this.memberCount.get(r)!;
    if (total > MAX_LOOP_MEMBERS || this.leadsTo(this.outsideUsers(id, roots), roots)) return false;
    const root = roots[0]!;
    this.parent[id] = root;
    const list = this.groupUsers.get(root)!;
    for (const r of roots.slice(1)) {
      this.parent[r] = root;
      list.push(...this.groupUsers.get(r)!);
      this.groupUsers.delete(r);
      this.memberCount.delete(r);
    }
    list.push(...this.users[id]!);
    this.memberCount.set(root, total);
    return true;
  }

  /** Start a loop of its own at `id`. */
  startAlone(id: NodeId): void {
    this.parent[id] = id;
    this.groupUsers.set(id, [...this.users[id]!]);
    this.memberCount.set(id, 1);
  }

  /**
   * Return the steps of one-member loops to their kernels: such a loop saves no array, and its
   * kernel (hot, shared by all plans) does the same work without a new function to warm up.
   */
  dissolveSingletons(): void {
    for (const [r, n] of this.memberCount) if (n === 1) this.parent[r] = -1;
  }
}

/** The elements of each scheduled step (the length of the loop it could join). */
function stepSizes(plan: Plan): Float64Array {
  const sizes = new Float64Array(plan.graph.nodes.length);
  for (const id of plan.schedule) sizes[id] = sizeOf(plan.graph.nodes[id]!.shape);
  return sizes;
}

/**
 * Grow the loops, consumers first (as XLA fuses producers into consumers): a step joins the loop
 * of the steps that read it, so its value stays a local when they all take it in. Joining by
 * arguments instead would pull a step into its producer's loop even where its own consumers
 * cannot follow (and then it must be written out anyway).
 */
function growGroups(plan: Plan, numeric: Uint8Array, sizes: Float64Array, grouping: Grouping): void {
  const { graph, schedule } = plan;
  for (let p = schedule.length - 1; p >= 0; p--) {
    const id = schedule[p]!;
    if (!fusible(graph, graph.nodes[id]!, numeric)) continue;
    placeStep(id, consumerLoops(id, sizes, grouping), grouping);
  }
}

/** The loops of the users that read `id` at index i (members of the same size), in first-found order. */
function consumerLoops(id: NodeId, sizes: Float64Array, grouping: Grouping): number[] {
  const n = sizes[id]!;
  const roots: number[] = [];
  for (const u of grouping.users[id]!) {
    if (grouping.parent[u]! >= 0 && sizes[u] === n) {
      const r = grouping.find(u);
      if (!roots.includes(r)) roots.push(r);
    }
  }
  return roots;
}

/**
 * Put a fusible step in the loops `roots`: all together, else each loop alone (the largest
 * first), else a loop of its own (nothing it reads is in a loop yet, so no cycle).
 */
function placeStep(id: NodeId, roots: readonly number[], grouping: Grouping): void {
  const { memberCount } = grouping;
  const bySize = [...roots].sort((a, b) => memberCount.get(b)! - memberCount.get(a)!);
  const joined = (roots.length > 0 && grouping.tryJoin(id, roots)) || (roots.length > 1 && bySize.some((r) => grouping.tryJoin(id, [r])));
  if (!joined) grouping.startAlone(id);
}

/** Each loop's members in schedule order, and the steps used outside their group or returned. */
function membership(plan: Plan, grouping: Grouping): Membership {
  const { graph, schedule, outputs } = plan;
  const { parent } = grouping;
  const members = new Map<number, NodeId[]>();
  const stored = new Uint8Array(graph.nodes.length);
  for (const o of outputs) stored[o] = 1;
  for (const id of schedule) {
    if (parent[id]! >= 0) {
      const r = grouping.find(id);
      let list = members.get(r);
      if (!list) members.set(r, (list = []));
      list.push(id);
    }
    const u = grouping.unitOf(id);
    for (const a of graph.nodes[id]!.args) if (parent[a]! >= 0 && grouping.find(a) !== u) stored[a] = 1;
  }
  return { members, stored };
}

/** The fused groups, by root: members, stored members, and the outside values each reads. */
function describeGroups(graph: Graph, sizes: Float64Array, { members, stored }: Membership, grouping: Grouping): Map<number, FusedGroup> {
  const groups = new Map<number, FusedGroup>();
  for (const [r, list] of members) {
    const reads: NodeId[] = [];
    for (const m of list) {
      for (const a of graph.nodes[m]!.args) if (grouping.unitOf(a) !== r && !reads.includes(a)) reads.push(a);
    }
    groups.set(r, { size: sizes[r]!, members: list, stored: list.filter((m) => stored[m]), reads });
  }
  return groups;
}

/**
 * The program's steps in a topological order of the contracted graph: each node (or group, at
 * its last member) after whatever it reads, depth first, iteratively.
 */
function emitOrder(plan: Plan, grouping: Grouping, members: Map<number, NodeId[]>, groups: Map<number, FusedGroup>): Unit[] {
  const { graph, schedule } = plan;
  const { parent } = grouping;
  const depsOf = (u: number): readonly NodeId[] => (parent[u]! < 0 ? graph.nodes[u]!.args : groups.get(u)!.reads);
  const state = new Uint8Array(graph.nodes.length); // 0 new, 1 on the stack, 2 emitted
  const order: Unit[] = [];
  const last = new Map<number, NodeId>();
  for (const [r, list] of members) last.set(r, list[list.length - 1]!);
  for (const id of schedule) {
    const start = grouping.unitOf(id);
    if (state[start] === 2 || (parent[id]! >= 0 && last.get(start) !== id)) continue;
    const stack: [number, number][] = [[start, 0]];
    state[start] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = depsOf(top[0]);
      if (top[1] < deps.length) {
        const v = grouping.unitOf(deps[top[1]++]!);
        if (state[v] === 1) throw new Error('internal: fused groups form a cycle');
        if (state[v] === 0) {
          state[v] = 1;
          stack.push([v, 0]);
        }
        continue;
      }
      stack.pop();
      state[top[0]] = 2;
      order.push(parent[top[0]]! < 0 ? { node: top[0] } : { group: groups.get(top[0])! });
    }
  }
  return order;
}
