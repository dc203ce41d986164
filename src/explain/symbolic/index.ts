// POST /trace with `"symbolic": true` (docs/symbolic.md): the symbolic table of a scalar program,
// with the numbers of the ordinary trace beside the formulas when the point `at` is given.

import type { Engine } from '../../engine/engine.js';
import { EngineError } from '../../engine/errors.js';
import { readPoint, type Job } from '../../service/request.js';
import type { Warning } from '../../engine/ad/run.js';
import type { TraceMode } from '../../engine/ad/trace.js';
import type { FunctionRequest } from '../../service/request.js';
import type { Value } from '../../service/values.js';
import { symbolicTable, unspecifiedFunctions, type FormulaSet, type SymbolicTable } from './table.js';

/** What this module reads of a /trace request (explain/trace.ts's TraceRequest, which calls it). */
interface TraceRequest extends FunctionRequest {
  mode: TraceMode;
  tangents?: Record<string, unknown> | undefined;
  cotangent?: unknown;
  symbolic?: boolean | undefined;
  simplify?: boolean | undefined;
}

/** The numeric trace (explain/trace.ts's Trace), as far as a symbolic one uses it. */
interface Trace {
  steps: { id: string; value: Value; tangent?: Value; adjoint?: Value }[];
  seeds: { tangents?: Record<string, Value>; cotangent?: Value };
  warnings?: Warning[];
}

export interface SymbolicTrace {
  steps: {
    id: string;
    op: string;
    args: (string | number)[];
    shape: number[];
    value?: Value;
    tangent?: Value;
    adjoint?: Value;
    position?: { line: number; column: number };
    symbolic: FormulaSet & { expanded?: FormulaSet };
  }[];
  output: string;
  seeds: Trace['seeds'];
  warnings?: Warning[];
  symbolic: { simplified: boolean; functions: SymbolicTable['functions']; notes?: string[] };
}

/**
 * Estimated work of one formula (mathjs rewriting it): what makes a table big enough to be built on a
 * worker, never on the event loop, for all but the smallest programs.
 */
const FLOPS_PER_FORMULA = 1e6;

/** Plan a symbolic trace: the formulas, and the numeric trace beside them when `at` is given. */
export function planSymbolicTrace(engine: Engine, request: TraceRequest, numeric: (request: TraceRequest) => Job): Job {
  if (request.expr === undefined) throw new EngineError('symbolic_unsupported', 'symbolic tables read a program written as `expr` (not `graph`)', { path: ['graph'] });
  const inputs = request.at === undefined ? undefined : Object.keys(request.at);
  if (request.at !== undefined) {
    // Numbers need every function defined: check before the numeric trace reports an unknown function.
    const unspecified = unspecifiedFunctions(request.expr);
    if (unspecified.length > 0) {
      throw new EngineError(
        'symbolic_unsupported',
        `${unspecified.map((f) => `'${f}'`).join(', ')} ${unspecified.length === 1 ? 'is an unspecified function' : 'are unspecified functions'}: a table with them has formulas but no numbers; leave out \`at\``,
        { path: ['at'] },
      );
    }
  }
  let numbers: Job | undefined;
  if (request.at !== undefined) {
    const point = readPoint(engine, request, request.at, ['at']);
    for (const { name, shape } of point.prepared.inputs) {
      if (shape.length !== 0) throw new EngineError('symbolic_unsupported', `input '${name}' has shape [${shape.join(', ')}]: symbolic tables are for scalar programs (every input a number)`, { path: ['at', name] });
    }
    numbers = numeric({ ...request, symbolic: false });
  }
  const build = (): SymbolicTrace => {
    const table = symbolicTable(
      { expr: request.expr!, inputs, wrt: request.wrt, mode: request.mode, simplify: request.simplify ?? true, tangents: request.tangents, cotangent: request.cotangent },
      engine.limits,
    );
    const trace = numbers?.run() as Trace | undefined;
    const byId = new Map((trace?.steps ?? []).map((s) => [s.id, s]));
    const steps = table.rows.map((row) => {
      const numeric = byId.get(row.id);
      const step: SymbolicTrace['steps'][number] = { id: row.id, op: row.op, args: row.args, shape: [], symbolic: row.formulas };
      if (numeric !== undefined) {
        step.value = numeric.value;
        if (numeric.tangent !== undefined) step.tangent = numeric.tangent;
        if (numeric.adjoint !== undefined) step.adjoint = numeric.adjoint;
      }
      if (row.position) step.position = row.position;
      return step;
    });
    const answer: SymbolicTrace = {
      steps,
      output: table.output,
      seeds: trace?.seeds ?? seedsOf(table, request),
      symbolic: { simplified: request.simplify ?? true, functions: table.functions },
    };
    if (table.notes.length > 0) answer.symbolic.notes = table.notes;
    if (trace?.warnings) answer.warnings = trace.warnings;
    return answer;
  };
  const formulas = 6 * (request.expr.length + 1);
  return { flops: (numbers?.flops ?? 0) + formulas * FLOPS_PER_FORMULA, answer: numbers?.answer ?? 0, run: () => ({ ...build() }) };
}

function seedsOf(table: SymbolicTable, request: TraceRequest): Trace['seeds'] {
  const seeds: Trace['seeds'] = {};
  if (request.mode !== 'reverse') seeds.tangents = table.seeds.tangents;
  if (request.mode !== 'forward') seeds.cotangent = table.seeds.cotangent;
  return seeds;
}
