// The lecture's tables: one row per primitive of the function as written, in evaluation order,
// with its value and its tangent (forward mode), its adjoint (reverse mode), or both.

import { forwardMode, reverseMode } from '../engine/ad/transform.js';
import { EngineError } from '../engine/errors.js';
import { dependents, type Node, type NodeId } from '../engine/ir/graph.js';
import { runChecked, work, type Engine, type FunctionRequest, type Job, type Warning } from '../engine/operations.js';
import type { Prepared, Program } from '../engine/prepare.js';
import { formatShape, shapesEqual, sizeOf, type Tensor } from '../engine/tensor/tensor.js';
import { fromTensor, jsonNumber, toTensor, type Value } from '../engine/values.js';

export type TraceMode = 'forward' | 'reverse' | 'both';

export interface TraceRequest extends FunctionRequest {
  mode: TraceMode;
  tangents?: Record<string, unknown> | undefined;
  cotangent?: unknown;
}

export interface TraceStep {
  id: string;
  op: string;
  /** Argument ids, or numbers for scalar constants written inline. */
  args: (string | number)[];
  shape: number[];
  value: Value;
  tangent?: Value;
  adjoint?: Value;
  position?: { line: number; column: number };
}

export interface Trace {
  steps: TraceStep[];
  output: string;
  /** The tangent seeds used (forward mode) and the cotangent (reverse mode). */
  seeds: { tangents?: Record<string, Value>; cotangent?: Value };
  warnings?: Warning[];
}

/** The rows of a trace: every node of the function as written but scalar constants (shown inline), unless one is the output. */
export function traceRows(prepared: Prepared): Node[] {
  return prepared.primal.nodes.filter((n) => !(n.op === 'const' && n.shape.length === 0) || n.id === prepared.output);
}

/** A row's arguments: ids, or the number itself for a scalar constant. */
export function stepArgs(prepared: Prepared, node: Node): (string | number)[] {
  return node.args.map((a) => {
    const arg = prepared.primal.nodes[a]!;
    if (arg.op === 'const' && arg.shape.length === 0) return jsonNumber((arg as Node<'const'>).attrs.value.data[0]!);
    return arg.label!;
  });
}

/**
 * A program whose outputs are every row's value, then (forward) every row's tangent, then
 * (reverse) every row's adjoint. Tangent inputs are `tangent:<name>` for each input; the cotangent
 * input is `cotangent`.
 */
function traceProgram(prepared: Prepared, mode: TraceMode, wrt: readonly string[]): Program {
  return prepared.program(`trace:${mode}:${wrt.join(',')}`, () => {
    const { b, map } = prepared.copy();
    const count = b.nodes.length;
    const rows = traceRows(prepared).map((n) => map[n.id]!);
    const outputs: NodeId[] = [...rows];
    if (mode !== 'reverse') {
      const seeds = new Map<NodeId, NodeId>();
      for (const { name, shape } of prepared.inputs) seeds.set(map[prepared.primal.inputs.get(name)!]!, b.input(`tangent:${name}`, shape));
      const tangent = forwardMode(b, count, seeds, []);
      outputs.push(...rows.map((id) => tangent[id] ?? b.zeros(b.shapeOf(id))));
    }
    if (mode !== 'forward') {
      const out = map[prepared.output]!;
      const seed = b.input('cotangent', prepared.outputShape);
      const wrtIds = wrt.map((name) => map[prepared.primal.inputs.get(name)!]!);
      // Adjoints for every row that depends on a wrt input; the others (constants, unrelated inputs) are zero.
      const adjoint = reverseMode(b, count, new Map([[out, seed]]), dependents(b, wrtIds), []);
      outputs.push(...rows.map((id) => adjoint[id] ?? b.zeros(b.shapeOf(id))));
    }
    return { graph: b, outputs };
  });
}

export function trace(engine: Engine, request: TraceRequest): Trace {
  return planTrace(engine, request).run() as unknown as Trace;
}

/** Check and prepare a trace (cached), and say what it will cost before it runs. */
export function planTrace(engine: Engine, request: TraceRequest): Job {
  if (request.at === undefined) throw new EngineError('validation_error', 'a trace needs the point `at`', { path: ['at'] });
  const point = engine.point(request, request.at, ['at']);
  const { prepared, bindings, wrt } = point;
  const extra = new Map<string, Tensor>();
  const seeds: Trace['seeds'] = {};
  if (request.mode !== 'reverse') {
    // Default seed: ones on the first wrt input, zeros elsewhere.
    const given = request.tangents ?? (wrt.length > 0 ? { [wrt[0]!]: 'ones' } : {});
    // Keyed by input names (client text): a null-prototype object, looked up by own keys only.
    seeds.tangents = Object.create(null) as Record<string, Value>;
    for (const name of Object.keys(given)) {
      if (!bindings.has(name)) throw new EngineError('unknown_input', `tangents names '${name}', which is not an input`, { path: ['tangents', name] });
    }
    for (const [name, x] of bindings) {
      const raw = Object.hasOwn(given, name) ? given[name] : undefined;
      const t =
        raw === 'ones'
          ? { shape: x.shape, data: new Float64Array(sizeOf(x.shape)).fill(1) }
          : raw === undefined
            ? { shape: x.shape, data: new Float64Array(sizeOf(x.shape)) }
            : toTensor(raw, ['tangents', name], prepared.limits.maxTensorElements);
      if (!shapesEqual(t.shape, x.shape)) {
        throw new EngineError('shape_mismatch', `tangents.${name} has shape ${formatShape(t.shape)}, but the input has shape ${formatShape(x.shape)}`, {
          path: ['tangents', name],
        });
      }
      extra.set(`tangent:${name}`, t);
      seeds.tangents[name] = fromTensor(t);
    }
  }
  if (request.mode !== 'forward') {
    const shape = prepared.outputShape;
    const c =
      request.cotangent === undefined
        ? { shape, data: new Float64Array(sizeOf(shape)).fill(1) }
        : toTensor(request.cotangent, ['cotangent'], prepared.limits.maxTensorElements);
    if (!shapesEqual(c.shape, shape)) {
      throw new EngineError('shape_mismatch', `cotangent has shape ${formatShape(c.shape)}, but the output has shape ${formatShape(shape)}`, {
        path: ['cotangent'],
      });
    }
    extra.set('cotangent', c);
    seeds.cotangent = fromTensor(c);
  }
  const program = traceProgram(prepared, request.mode, wrt);
  const rows = traceRows(prepared);
  const columns = request.mode === 'both' ? 3 : 2;
  const elements = columns * rows.reduce((total, node) => total + sizeOf(node.shape), 0);
  if (elements > prepared.limits.maxTraceElements) {
    throw new EngineError(
      'limit_exceeded',
      `this trace would return ${elements} numbers (every step's value and derivatives), more than the limit of ${prepared.limits.maxTraceElements} (MAX_TRACE_ELEMENTS): trace a smaller instance`,
    );
  }
  const flops = work(program.plan);
  if (flops > prepared.limits.maxFlops) {
    throw new EngineError(
      'limit_exceeded',
      `this trace needs about ${flops.toExponential(2)} floating-point operations, more than the limit of ${prepared.limits.maxFlops.toExponential(2)} (MAX_FLOPS)`,
    );
  }
  return {
    flops,
    answer: elements,
    run: () => {
      const warnings: Warning[] = [];
      const outputs = runChecked(program, new Map([...bindings, ...extra]), warnings);
      const n = rows.length;
      const steps = rows.map((node, i): TraceStep => {
        const step: TraceStep = {
          id: node.label!,
          op: node.op,
          args: stepArgs(prepared, node),
          shape: [...node.shape],
          value: fromTensor(outputs[i]!),
        };
        if (request.mode !== 'reverse') step.tangent = fromTensor(outputs[n + i]!);
        if (request.mode !== 'forward') step.adjoint = fromTensor(outputs[(request.mode === 'both' ? 2 : 1) * n + i]!);
        if (node.span) step.position = { line: node.span.line, column: node.span.column };
        return step;
      });
      const answer: Trace = { steps, output: prepared.primal.nodes[prepared.output]!.label!, seeds };
      if (warnings.length > 0) answer.warnings = warnings;
      return answer as unknown as Record<string, unknown>;
    },
  };
}
