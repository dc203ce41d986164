// The lecture's tables (/trace) as JSON: one row per primitive of the function as written, in
// evaluation order, with its value and its tangent (forward mode), its adjoint (reverse mode), or
// both. The request is read and the tables computed over tensors by the engine (ad/trace.ts).

import { rowArgs, rowOp, trace as traceTensors, traceRows, type TraceMode, type TraceResult, type TraceSeeds } from '../engine/ad/trace.js';
import type { Engine } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import type { Node } from '../engine/ir/graph.js';
import type { Warning } from '../engine/ad/run.js';
import type { Prepared } from '../engine/prepare.js';
import { jsonNumber, tensorWriter, type Value } from '../service/values.js';
import { planSymbolicTrace } from './symbolic/index.js';
import { byName, readPoint, readTraceSeeds, type FunctionRequest, type Job } from '../service/request.js';

export { rowArgs, rowOp, traceRows, type TraceMode };

export interface TraceRequest extends FunctionRequest {
  mode: TraceMode;
  tangents?: Record<string, unknown> | undefined;
  cotangent?: unknown;
  /** Formulas instead of (or, with `at`, beside) numbers: docs/symbolic.md. */
  symbolic?: boolean | undefined;
  /** Symbolic tables: simplify the formulas (default true). */
  simplify?: boolean | undefined;
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

/** A row's arguments: ids, or the number itself for a scalar constant. */
export function stepArgs(prepared: Prepared, node: Node): (string | number)[] {
  return rowArgs(node).map((a) => {
    const arg = prepared.primal.nodes[a]!;
    if (arg.op === 'const' && arg.shape.length === 0) return jsonNumber((arg as Node<'const'>).attrs.value.data[0]!);
    return arg.label!;
  });
}

export function trace(engine: Engine, request: TraceRequest): Trace {
  if (request.symbolic === true) return planTrace(engine, request).run() as unknown as Trace;
  return traceAnswer(planTraceTensors(engine, request));
}

/** Read a trace request (its point and seeds) and plan the tables over tensors. */
function planTraceTensors(
  engine: Engine,
  request: TraceRequest,
): { prepared: Prepared; seeds: TraceSeeds; run: () => TraceResult; flops: number; answer: number; encoding: TraceRequest['encoding'] } {
  if (request.at === undefined) throw new EngineError('validation_error', 'a trace needs the point `at` (a value per input), or `"symbolic": true` for its table in formulas (docs/symbolic.md)', { path: ['at'] });
  const point = readPoint(engine, request, request.at, ['at']);
  const seeds = readTraceSeeds(point, request.mode, request.tangents, request.cotangent);
  const planned = traceTensors(point.prepared, point.inputs, point.wrt, request.mode, seeds);
  return { prepared: point.prepared, seeds, run: () => planned.run(), flops: planned.flops, answer: planned.answer, encoding: request.encoding };
}

/** The tables as the /trace answer, tensors written as the request's `encoding` says. */
function traceAnswer(planned: ReturnType<typeof planTraceTensors>): Trace {
  const { prepared, seeds } = planned;
  const fromTensor = tensorWriter(planned.encoding);
  const result = planned.run();
  const steps = result.rows.map((node, i): TraceStep => {
    const step: TraceStep = { id: node.label!, op: rowOp(node), args: stepArgs(prepared, node), shape: [...node.shape], value: fromTensor(result.values[i]!) };
    if (result.tangents) step.tangent = fromTensor(result.tangents[i]!);
    if (result.adjoints) step.adjoint = fromTensor(result.adjoints[i]!);
    if (node.span) step.position = { line: node.span.line, column: node.span.column };
    return step;
  });
  const echo: Trace['seeds'] = {};
  if (seeds.tangents) {
    // Keyed by input names (client text): a null-prototype object.
    echo.tangents = byName();
    for (const [name, t] of seeds.tangents) echo.tangents[name] = fromTensor(t);
  }
  if (seeds.cotangent) echo.cotangent = fromTensor(seeds.cotangent);
  const answer: Trace = { steps, output: prepared.primal.nodes[prepared.output]!.label!, seeds: echo };
  if (result.warnings.length > 0) answer.warnings = result.warnings;
  return answer;
}

/** Check and prepare a trace (cached), and say what it will cost before it runs. */
export function planTrace(engine: Engine, request: TraceRequest): Job {
  if (request.symbolic === true) return planSymbolicTrace(engine, request, (numeric) => planTrace(engine, numeric));
  const planned = planTraceTensors(engine, request);
  return { flops: planned.flops, answer: planned.answer, run: () => ({ ...traceAnswer(planned) }) };
}
