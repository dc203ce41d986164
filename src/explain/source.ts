// The function of an explain request, prepared from its point (`at`), from input shapes alone
// (`shapes`), or — for a picture only — from its free names taken as scalars.

import { EngineError } from '../engine/errors.js';
import type { GraphJson } from '../engine/ir/from-json.js';
import { freeNames, parseProgram } from '../engine/lang/index.js';
import type { Engine } from '../engine/engine.js';
import type { Prepared } from '../engine/prepare.js';
import { prepareShapes, readPoint, readWrt, type FunctionRequest } from '../service/request.js';

export interface ShapesRequest extends FunctionRequest {
  /** Input shapes instead of values: `{ X: [4, 2], l: [2] }`. */
  shapes?: Record<string, number[]> | undefined;
}

export interface PreparedFor {
  prepared: Prepared;
  /** The inputs to differentiate with respect to: `wrt`, or every input in order. */
  wrt: string[];
  /** Whether the input shapes were given (`at` or `shapes`) rather than assumed scalar. */
  shapesKnown: boolean;
}

/**
 * Prepare from `at` or `shapes` (exactly one). With neither, `assumeScalars` takes the function's
 * free names as scalar inputs; otherwise that is a validation error.
 */
export function prepareFor(engine: Engine, request: ShapesRequest, assumeScalars = false): PreparedFor {
  if (request.points !== undefined) {
    throw new EngineError('validation_error', 'this endpoint explains one function at one point: give `at` or `shapes`, not `points`', { path: ['points'] });
  }
  if (request.at !== undefined && request.shapes !== undefined) {
    throw new EngineError('validation_error', 'give the point `at` or the input `shapes`, not both', { path: ['shapes'] });
  }
  if (request.at !== undefined) {
    const { prepared, wrt } = readPoint(engine, request, request.at, ['at']);
    return { prepared, wrt, shapesKnown: true };
  }
  let shapes = request.shapes;
  if (shapes === undefined) {
    if (!assumeScalars) throw new EngineError('validation_error', 'give the point `at` or the input `shapes` (e.g. {"X": [4, 2]})', { path: ['shapes'] });
    shapes = Object.fromEntries(inputNames(engine, request).map((name) => [name, []]));
  }
  const prepared = prepareShapes(engine, request, shapes);
  const names = Object.keys(shapes);
  return { prepared, wrt: readWrt(request.wrt, names, names.join(', ') || '(none)'), shapesKnown: request.shapes !== undefined };
}

/** The names a function reads that it does not define: an expression's free names, a graph's non-node arguments. */
function inputNames(engine: Engine, request: FunctionRequest): string[] {
  if (request.expr !== undefined && request.graph === undefined) {
    // Parsed here before Prepared would check the length: the same limit first.
    if (request.expr.length > engine.limits.maxExprLength) return [];
    return freeNames(parseProgram(request.expr));
  }
  if (request.graph === undefined) return [];
  return graphInputs(request.graph);
}

function graphInputs(graph: GraphJson): string[] {
  const ids = new Set(graph.nodes.map((n) => n.id));
  const names = new Set<string>();
  for (const node of graph.nodes) for (const arg of node.args ?? []) if (typeof arg === 'string' && !ids.has(arg)) names.add(arg);
  if (!ids.has(graph.output)) names.add(graph.output);
  return [...names];
}
