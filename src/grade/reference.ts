// The reference a request grades against: the function prepared once, its tables at `at` (the
// /trace tables, seeded the same way), its gradient at `at`, and for each derivative part the
// seeded points where it is defined with its gradient there. The instructor's mistakes are errors
// of the request; what depends on what students answer is computed only when first asked for.

import { EngineError, isEngineError } from '../engine/errors.js';
import { rowArgs, trace, traceRows } from '../engine/ad/trace.js';
import type { Engine } from '../engine/engine.js';
import { run } from '../engine/ir/evaluate.js';
import type { Node, NodeId } from '../engine/ir/graph.js';
import { freeNames, parseProgram } from '../engine/lang/index.js';
import { Prepared, type Program } from '../engine/prepare.js';
import type { Shape, Tensor } from '../engine/tensor/tensor.js';
import type { Value } from '../service/values.js';
import {
  functionSource,
  inputsAnswer,
  prepareInputs,
  readPoint,
  readPointOfShapes,
  readTraceSeeds,
  withAlternative,
  type FunctionRequest,
  type Point,
} from '../service/request.js';
import { Budget, evaluate, programCost, readCost, type Formula } from './formula.js';
import { drawPoint, partRandom } from './points.js';
import { GRADE_DEFAULTS, type GradeRequest } from './types.js';

/** A row of the lecture's tables: a step of the function as written. */
export interface Row {
  index: number;
  id: string;
  node: Node;
  shape: Shape;
  /** Each argument: another row, or a scalar constant written inline. */
  args: ({ row: number } | { constant: Tensor })[];
  /**
   * The primitives of the step in order, its node last: one for most steps, several for a step
   * that lowered to several (`x[0]`, `outer(x, y)`), whose arguments are then `node.call.args`.
   */
  steps: Node[];
  /** The constants the steps read, by node. */
  constants: ReadonlyMap<NodeId, Tensor>;
}

/** The /trace tables at `at`, as tensors, one entry per row. */
export interface Tables {
  value: Tensor[];
  tangent: Tensor[];
  adjoint: Tensor[];
  /** The row of the output and the cotangent that seeds it. */
  output: number;
  cotangent: Tensor;
}

/** Something the request cannot give: the reason, said to the student's grader. */
export interface Unavailable {
  unavailable: string;
}

export interface PartPoints {
  points: Map<string, Tensor>[];
  /** The reference gradient at each point, by input. */
  gradients: Map<string, Tensor>[];
}

export interface Mistake {
  message: string;
  wrt: string | undefined;
  formula: Extract<Formula, { ok: true }>;
}

export function isUnavailable<T extends object>(x: T | Unavailable): x is Unavailable {
  return 'unavailable' in x;
}

export class Reference {
  readonly prepared: Prepared;
  readonly inputs: { name: string; shape: Shape }[];
  readonly rows: Row[];
  readonly rowById = new Map<string, number>();
  readonly at: Map<string, Tensor> | undefined;
  readonly tables: Tables | undefined;
  readonly ranges: Record<string, [number, number]>;
  readonly pointCount: number;
  readonly mistakes: Mistake[];
  private readonly explicitPoints: Map<string, Tensor>[] | undefined;
  private readonly seed: number;
  private gradientProgramCache: Program | Unavailable | undefined;
  private gradientAtCache: Map<string, Tensor> | Unavailable | undefined;
  private readonly partCache = new Map<string, PartPoints | Unavailable>();
  private readonly mistakeCache = new Map<string, { mistake: Mistake; values: Tensor[] }[]>();
  private readonly mistakeAtCache = new Map<string, { mistake: Mistake; value: Tensor }[]>();

  constructor(
    engine: Engine,
    private readonly request: GradeRequest,
    private readonly budget: Budget,
  ) {
    const source: FunctionRequest = { expr: request.reference.expr, graph: request.reference.graph };
    try {
      functionSource(source);
    } catch (e) {
      if (!isEngineError(e)) throw e;
      throw new EngineError(e.code, `reference: ${e.message}`, { path: ['reference'] });
    }
    let point: Point | undefined;
    if (request.at !== undefined) {
      point = readPoint(engine, source, request.at, ['at']);
      this.prepared = point.prepared;
      this.at = point.inputs;
    } else {
      const names = request.reference.graph !== undefined ? graphInputs(request.reference.graph) : freeNames(parseProgram(request.reference.expr ?? ''));
      this.prepared = prepareInputs(engine, source, names.map((name) => ({ name, shape: [] })));
    }
    this.inputs = this.prepared.inputs.map(({ name, shape }) => ({ name, shape: [...shape] }));
    this.rows = rowsOf(this.prepared);
    for (const row of this.rows) this.rowById.set(row.id, row.index);
    this.seed = request.seed ?? GRADE_DEFAULTS.seed;
    this.ranges = this.readRanges();
    this.explicitPoints = Array.isArray(request.points) ? this.readPoints(request.points) : undefined;
    this.pointCount = this.explicitPoints?.length ?? (typeof request.points === 'number' ? request.points : GRADE_DEFAULTS.points);
    this.tables = point === undefined ? undefined : this.traceTables(point);
    this.mistakes = this.readMistakes();
  }

  isInput(name: string): boolean {
    return this.inputs.some((i) => i.name === name);
  }

  private readRanges(): Record<string, [number, number]> {
    const given = this.request.ranges ?? {};
    for (const name of Object.keys(given)) {
      if (!this.isInput(name)) throw new EngineError('unknown_input', `ranges names '${name}', which is not an input (${this.inputNames()})`, { path: ['ranges', name] });
    }
    // Keyed by input names (client text): own entries only, written into a null-prototype object.
    const ranges = Object.create(null) as Record<string, [number, number]>;
    for (const { name } of this.inputs) ranges[name] = [...((Object.hasOwn(given, name) ? given[name] : undefined) ?? GRADE_DEFAULTS.range)];
    return ranges;
  }

  private readPoints(points: Record<string, unknown>[]): Map<string, Tensor>[] {
    return points.map((raw, i) => readPointOfShapes(raw, this.inputs, ['points', i], ` (${this.inputNames()})`, this.prepared.limits.maxTensorElements));
  }

  /** The /trace tables at `at` (seeded as /trace seeds them), as tensors. */
  private traceTables(point: Point): Tables {
    // A trace evaluates the function, its tangents and its adjoints: about four evaluations.
    this.budget.spend(4 * programCost(this.prepared.valueProgram()));
    const seeds = readTraceSeeds(point, 'both', this.request.tangents, this.request.cotangent);
    const traced = trace(point.prepared, point.inputs, point.wrt, 'both', seeds).run();
    return {
      value: traced.values,
      tangent: traced.tangents!,
      adjoint: traced.adjoints!,
      output: traced.rows.findIndex((node) => node.id === this.prepared.output),
      cotangent: seeds.cotangent!,
    };
  }

  private readMistakes(): Mistake[] {
    return (this.request.reference.feedback ?? []).map((entry, i) => {
      const path = ['reference', 'feedback', i];
      if (entry.wrt !== undefined && !this.isInput(entry.wrt)) {
        throw new EngineError('unknown_input', `reference.feedback[${i}].wrt names '${entry.wrt}', which is not an input (${this.inputNames()})`, { path: [...path, 'wrt'] });
      }
      this.budget.spend(readCost(entry.expr));
      try {
        const program = this.formulaProgram(entry.expr);
        return { message: entry.message, wrt: entry.wrt, formula: { ok: true, program, cost: programCost(program) } };
      } catch (e) {
        if (!isEngineError(e)) throw e;
        throw new EngineError(e.code, `reference.feedback[${i}].expr: ${e.message}`, { position: e.position, path: [...path, 'expr'] });
      }
    });
  }

  /** A formula over the reference's inputs, read without the engine's cache (formulas are many and used once). */
  private formulaProgram(expr: string): Program {
    return new Prepared({ expr }, this.inputs, this.prepared.limits).valueProgram();
  }

  /** The step ids, for messages: the first few when there are many. */
  stepNames(): string {
    const shown = this.rows.slice(0, 20).map((r) => r.id);
    return this.rows.length > shown.length ? `${shown.join(', ')}, … (${this.rows.length} steps)` : shown.join(', ');
  }

  inputNames(): string {
    return this.inputs.map((i) => i.name).join(', ') || 'none';
  }

  private gradientProgram(): Program | Unavailable {
    if (this.gradientProgramCache === undefined) {
      try {
        this.gradientProgramCache = this.prepared.gradientProgram(this.inputs.map((i) => i.name));
      } catch (e) {
        if (!isEngineError(e)) throw e;
        this.gradientProgramCache = { unavailable: `the reference cannot be differentiated here: ${withAlternative(e).message}` };
      }
    }
    return this.gradientProgramCache;
  }

  /** What one evaluation of the reference's gradient costs (of its value, if it has no gradient). */
  gradientCost(): number {
    const program = this.gradientProgram();
    return programCost(isUnavailable(program) ? this.prepared.valueProgram() : program);
  }

  /** The gradient at `at`, by input. */
  gradientAt(): Map<string, Tensor> | Unavailable {
    if (this.gradientAtCache === undefined) {
      const program = this.gradientProgram();
      if (this.at === undefined) this.gradientAtCache = { unavailable: 'the request gives no point `at`, so numbers cannot be graded' };
      else if (isUnavailable(program)) this.gradientAtCache = program;
      else this.gradientAtCache = this.gradientAtPoint(program, this.at).gradient;
    }
    return this.gradientAtCache;
  }

  /** The value at `at`. */
  valueAt(): Tensor | Unavailable {
    if (this.tables === undefined) return { unavailable: 'the request gives no point `at`, so numbers cannot be graded' };
    return this.tables.value[this.tables.output]!;
  }

  private gradientAtPoint(program: Program, point: ReadonlyMap<string, Tensor>): { finite: boolean; gradient: Map<string, Tensor> } {
    this.budget.spend(programCost(program));
    const [value, ...grads] = run(program.plan, point);
    const gradient = new Map(this.inputs.map(({ name }, i) => [name, grads[i]!]));
    const finite = [value!, ...grads].every((t) => t.data.every(Number.isFinite));
    return { finite, gradient };
  }

  /**
   * The points a formula for ∂f/∂`input` is checked at — drawn from the seed and the part alone,
   * redrawn where the reference or its gradient is not finite — with the gradient there.
   */
  partPoints(input: string): PartPoints | Unavailable {
    let part = this.partCache.get(input);
    if (part === undefined) {
      part = this.drawPartPoints(input);
      this.partCache.set(input, part);
    }
    return part;
  }

  private drawPartPoints(input: string): PartPoints | Unavailable {
    const program = this.gradientProgram();
    if (isUnavailable(program)) return program;
    const found: PartPoints = { points: [], gradients: [] };
    const keep = (point: Map<string, Tensor>): void => {
      const { finite, gradient } = this.gradientAtPoint(program, point);
      if (!finite) return;
      found.points.push(point);
      found.gradients.push(gradient);
    };
    if (this.explicitPoints !== undefined) {
      for (const point of this.explicitPoints) keep(point);
      if (found.points.length === 0) return { unavailable: 'the reference or its gradient is undefined at every point the request gives' };
      return found;
    }
    const random = partRandom(this.seed, `derivative.${input}`);
    const draws = GRADE_DEFAULTS.drawsPerPoint * this.pointCount;
    let drawn = 0;
    while (found.points.length < this.pointCount && drawn < draws) {
      keep(drawPoint(random, this.inputs, this.ranges));
      drawn++;
    }
    if (found.points.length < this.pointCount) {
      const ranges = this.inputs.map(({ name }) => `${name} in [${this.ranges[name]!.join(', ')}]`).join(', ');
      return {
        unavailable:
          `the reference (with its gradient) is defined at only ${found.points.length} of ${drawn} points drawn from ${ranges}, ` +
          `fewer than the ${this.pointCount} needed to check a formula: the request should set \`ranges\` where it is defined`,
      };
    }
    return found;
  }

  /** The known mistakes about ∂f/∂`input`, each with its values at the part's points. */
  mistakesAt(input: string, part: PartPoints): { mistake: Mistake; values: Tensor[] }[] {
    let found = this.mistakeCache.get(input);
    if (found === undefined) {
      found = this.mistakes
        .filter((m) => m.wrt === undefined || m.wrt === input)
        .map((mistake) => ({ mistake, values: part.points.map((p) => evaluate(mistake.formula, p, this.budget)) }));
      this.mistakeCache.set(input, found);
    }
    return found;
  }

  /** The known mistakes about ∂f/∂`input`, each with its value at `at`. */
  mistakesAtPoint(input: string): { mistake: Mistake; value: Tensor }[] {
    const at = this.at;
    if (at === undefined) return [];
    let found = this.mistakeAtCache.get(input);
    if (found === undefined) {
      found = this.mistakes.filter((m) => m.wrt === undefined || m.wrt === input).map((mistake) => ({ mistake, value: evaluate(mistake.formula, at, this.budget) }));
      this.mistakeAtCache.set(input, found);
    }
    return found;
  }

  /** The points of each part computed so far, as JSON. */
  echoPoints(): Record<string, Record<string, Value>[]> {
    const echo = Object.create(null) as Record<string, Record<string, Value>[]>;
    for (const [input, part] of this.partCache) {
      if (isUnavailable(part)) continue;
      echo[input] = part.points.map(inputsAnswer);
    }
    return echo;
  }
}

/** The inputs of a JSON graph: arguments that name no node, in order of first use. */
function graphInputs(graph: NonNullable<GradeRequest['reference']['graph']>): string[] {
  const ids = new Set(graph.nodes.map((n) => n.id));
  const names: string[] = [];
  for (const node of graph.nodes) {
    for (const arg of node.args ?? []) if (typeof arg === 'string' && !ids.has(arg) && !names.includes(arg)) names.push(arg);
  }
  if (!ids.has(graph.output) && !names.includes(graph.output)) names.push(graph.output);
  return names;
}

function rowsOf(prepared: Prepared): Row[] {
  const nodes = traceRows(prepared);
  const rowOfNode = new Map(nodes.map((n, i) => [n.id, i]));
  const primal = prepared.primal.nodes;
  return nodes.map((node, index) => {
    const steps = node.call ? [...primal.filter((n) => n.within === node.id), node] : [node];
    const constants = new Map<NodeId, Tensor>();
    for (const step of steps) {
      for (const a of step.args) if (primal[a]!.op === 'const') constants.set(a, (primal[a] as Node<'const'>).attrs.value);
    }
    const args = rowArgs(node).map((a): Row['args'][number] => {
      const row = rowOfNode.get(a);
      if (row !== undefined) return { row };
      return { constant: (primal[a] as Node<'const'>).attrs.value };
    });
    return { index, id: node.label!, node, shape: node.shape, steps, constants, args };
  });
}
