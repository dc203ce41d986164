// The JSON form of a function: { nodes: [{ id, op, args, attrs }], output }. Checked node by node
// (duplicate ids, unknown ops, undefined arguments, cycles, arity, attributes) and lowered through
// the same function library as expressions; every error names the node.

import { EngineError } from '../errors.js';
import { FUNCTIONS, similarFunctions, type IndexItem, type StaticParam, type StaticValue, type StaticValues } from '../ops/functions.js';
import { ShapeError } from '../ops/types.js';
import { toTensor, type TensorLimits } from '../values.js';
import type { Builder } from './builder.js';
import type { NodeId } from './graph.js';

export interface GraphNodeJson {
  id: string;
  op: string;
  args?: (string | number)[] | undefined;
  attrs?: Record<string, unknown> | undefined;
}

export interface GraphJson {
  nodes: GraphNodeJson[];
  output: string;
}

function invalid(node: string, message: string): EngineError {
  return new EngineError('invalid_graph', `node '${node}': ${message}`, { node });
}

/** Lower `graph` into `b`, whose inputs already exist. */
export function lowerGraph(b: Builder, graph: GraphJson, limits: TensorLimits = Infinity): { output: NodeId } {
  const byId = new Map<string, GraphNodeJson>();
  for (const node of graph.nodes) {
    if (byId.has(node.id)) throw invalid(node.id, 'the id is used by two nodes: ids must be unique');
    if (b.inputs.has(node.id)) throw invalid(node.id, `the id is also the name of an input: rename the node`);
    byId.set(node.id, node);
  }
  for (const node of graph.nodes) {
    if (node.op !== 'const' && !FUNCTIONS.has(node.op)) {
      const hint = similarFunctions(node.op);
      throw new EngineError(
        'unknown_function',
        `node '${node.id}': unknown op '${node.op}'` + (hint.length > 0 ? `: did you mean ${hint.map((h) => `'${h}'`).join(' or ')}?` : ': GET /ops lists the ops'),
        { node: node.id },
      );
    }
    for (const arg of node.args ?? []) {
      if (typeof arg === 'string' && !byId.has(arg) && !b.inputs.has(arg)) {
        throw new EngineError('unknown_input', `node '${node.id}': argument '${arg}' is neither a node id nor an input (the keys of \`at\`)`, {
          node: node.id,
        });
      }
    }
  }
  const order = topologicalOrder(graph.nodes, byId);
  const ids = new Map<string, NodeId>(b.inputs);
  for (const node of order) {
    b.site = { node: node.id };
    try {
      const id = lowerNode(b, node, ids, limits);
      if (b.node(id).label === undefined && !b.inputs.has(node.id)) b.node(id).label = node.id;
      ids.set(node.id, id);
    } catch (e) {
      if (e instanceof ShapeError) throw new EngineError('shape_mismatch', `node '${node.id}': ${e.message}`, { node: node.id });
      throw e;
    }
  }
  b.site = {};
  const output = ids.get(graph.output);
  if (output === undefined) {
    throw new EngineError('unknown_input', `the output '${graph.output}' is neither a node id nor an input`, { node: graph.output });
  }
  return { output };
}

/** Kahn's algorithm: nodes in dependency order; a cycle is named by one of its nodes. */
function topologicalOrder(nodes: readonly GraphNodeJson[], byId: ReadonlyMap<string, GraphNodeJson>): GraphNodeJson[] {
  const pending = new Map<string, number>();
  const consumers = new Map<string, string[]>();
  for (const node of nodes) {
    const deps = new Set((node.args ?? []).filter((a): a is string => typeof a === 'string' && byId.has(a)));
    pending.set(node.id, deps.size);
    for (const d of deps) {
      const list = consumers.get(d) ?? [];
      list.push(node.id);
      consumers.set(d, list);
    }
  }
  const ready = nodes.filter((n) => pending.get(n.id) === 0).map((n) => n.id);
  const order: GraphNodeJson[] = [];
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i]!;
    order.push(byId.get(id)!);
    for (const c of consumers.get(id) ?? []) {
      const left = pending.get(c)! - 1;
      pending.set(c, left);
      if (left === 0) ready.push(c);
    }
  }
  if (order.length < nodes.length) {
    const stuck = nodes.find((n) => pending.get(n.id)! > 0)!;
    throw invalid(stuck.id, 'it depends on itself through a cycle of arguments: a graph must be acyclic');
  }
  return order;
}

function lowerNode(b: Builder, node: GraphNodeJson, ids: ReadonlyMap<string, NodeId>, limits: TensorLimits): NodeId {
  const args = (node.args ?? []).map((a) => (typeof a === 'number' ? b.scalar(a) : ids.get(a)!));
  if (node.op === 'const') {
    if (args.length > 0) throw invalid(node.id, 'const takes no arguments: give its value in attrs.value');
    const attrs = node.attrs ?? {};
    if (!Object.hasOwn(attrs, 'value') || attrs.value === undefined) throw invalid(node.id, 'const needs attrs.value, a number or a nested array');
    for (const key of Object.keys(attrs)) if (key !== 'value') throw invalid(node.id, `const has no attribute '${key}'`);
    return b.constant(toTensor(attrs.value, ['graph', 'nodes', node.id, 'attrs', 'value'], limits));
  }
  const def = FUNCTIONS.get(node.op)!;
  if (def.tensors === 'list' ? args.length === 0 : args.length !== def.tensors) {
    const wanted = def.tensors === 'list' ? 'at least one argument' : `${def.tensors} argument${def.tensors === 1 ? '' : 's'}`;
    throw invalid(node.id, `${node.op} takes ${wanted}, got ${args.length}`);
  }
  return def.lower(b, args, staticAttrs(node, def.statics));
}

function staticAttrs(node: GraphNodeJson, params: readonly StaticParam[]): StaticValues {
  // Null prototype: only the attributes given are found in it (an attribute key is client text).
  const values = Object.create(null) as Record<string, StaticValue | undefined>;
  for (const [key, raw] of Object.entries(node.attrs ?? {})) {
    const param = params.find((p) => p.name === key);
    if (!param) {
      const allowed = params.map((p) => p.name);
      throw invalid(node.id, `${node.op} has no attribute '${key}'` + (allowed.length > 0 ? `; it takes ${allowed.join(', ')}` : ''));
    }
    if (raw === null || raw === undefined) continue;
    values[key] = staticValue(node, param, raw);
  }
  for (const param of params) {
    if (!param.optional && values[param.name] === undefined) throw invalid(node.id, `${node.op} needs attrs.${param.name}: ${param.about}`);
  }
  return values;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function staticValue(node: GraphNodeJson, param: StaticParam, raw: unknown): StaticValue {
  const bad = (wanted: string): EngineError => invalid(node.id, `attrs.${param.name} must be ${wanted}`);
  switch (param.kind) {
    case 'int':
      if (!isInt(raw)) throw bad('an integer');
      return raw;
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 0 || raw === 1) return raw === 1;
      throw bad('true or false');
    case 'axes':
      if (isInt(raw)) return [raw];
      if (Array.isArray(raw) && raw.every(isInt)) return raw;
      throw bad('an integer or a list of integers');
    case 'shape':
      if (Array.isArray(raw) && raw.every(isInt)) return raw;
      throw bad('a list of integers');
    case 'index':
      if (!Array.isArray(raw)) throw bad('a list of index items (integers, null for None, {start, stop, step} or ":"-style strings)');
      return raw.map((item) => indexItem(item, bad));
  }
}

function indexItem(item: unknown, bad: (wanted: string) => EngineError): IndexItem {
  if (item === null) return { kind: 'none' };
  if (isInt(item)) return { kind: 'int', index: item };
  if (typeof item === 'string') {
    const parts = item.split(':');
    if (parts.length < 2 || parts.length > 3) throw bad(`index items like "1:4:2"; got "${item}"`);
    const [start, stop, step] = parts.map((p) => {
      if (p.trim() === '') return undefined;
      const n = Number(p);
      if (!Number.isInteger(n)) throw bad(`integer slice bounds; got "${item}"`);
      return n;
    });
    return sliceItem(start, stop, step);
  }
  if (typeof item === 'object' && !Array.isArray(item)) {
    const o = item as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['start', 'stop', 'step'].includes(k)) throw bad(`slices as {start, stop, step}; got key '${k}'`);
    const part = (v: unknown): number | undefined => {
      if (v === undefined || v === null) return undefined;
      if (!isInt(v)) throw bad('integer slice bounds');
      return v;
    };
    return sliceItem(part(o.start), part(o.stop), part(o.step));
  }
  throw bad('a list of index items (integers, null, {start, stop, step})');
}

function sliceItem(start?: number, stop?: number, step?: number): IndexItem {
  const out: IndexItem = { kind: 'slice' };
  if (start !== undefined) out.start = start;
  if (stop !== undefined) out.stop = stop;
  if (step !== undefined) out.step = step;
  return out;
}
