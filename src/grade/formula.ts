// Students' formulas: read (parse, check, lower) once per distinct formula of a request, over the
// reference's inputs, then evaluated at the part's points. A formula that cannot be read is a
// format error with its position, never a wrong answer.

import { EngineError, isEngineError } from '../engine/errors.js';
import { printProgram } from '../engine/lang/index.js';
import { parseProgram } from '../engine/lang/parser.js';
import { run, type Plan } from '../engine/ir/evaluate.js';
import { Prepared, type Limits, type Program } from '../engine/prepare.js';
import type { Shape, Tensor } from '../engine/tensor/tensor.js';
import { STEP_COST, type FormatError } from './types.js';

/** The work of one request, counted as it is spent; past the limit the request is refused. */
export class Budget {
  private spent = 0;

  constructor(readonly limit: number) {}

  get used(): number {
    return this.spent;
  }

  spend(flops: number): void {
    this.spent += flops;
    if (this.spent > this.limit) {
      throw new EngineError(
        'limit_exceeded',
        `grading this request needs more than ${this.limit.toExponential(2)} floating-point operations (GRADE_MAX_FLOPS): send the submissions in smaller batches`,
      );
    }
  }
}

/** The estimated cost of one run of a plan. */
export function planCost(plan: Plan): number {
  return plan.flops + STEP_COST * plan.schedule.length;
}

export function programCost(program: Program): number {
  return planCost(program.plan);
}

/** What reading a formula costs per character, in flop-equivalents (measured): parsing it, then lowering and planning it. */
const PARSE_COST_PER_CHAR = 1_000;
const LOWER_COST_PER_CHAR = 3_000;

/** The cost of reading a formula that has not been read before. */
export function readCost(source: string): number {
  return (PARSE_COST_PER_CHAR + LOWER_COST_PER_CHAR) * Math.max(source.length, 1);
}

export type Formula = { ok: true; program: Program; cost: number } | { ok: false; error: Omit<FormatError, 'part'> };

export interface FormulaOptions {
  inputs: readonly { name: string; shape: Shape }[];
  limits: Limits;
  maxLength: number;
  /** The most one evaluation may cost. */
  maxCost: number;
  budget: Budget;
}

/** The formulas of one request, each read once: equal formulas (up to spacing) share the work. */
export class Formulas {
  private readonly byText = new Map<string, Formula>();
  private readonly byProgram = new Map<string, Extract<Formula, { ok: true }>>();

  constructor(private readonly options: FormulaOptions) {}

  read(source: string): Formula {
    let formula = this.byText.get(source);
    if (formula === undefined) {
      formula = this.readNew(source);
      this.byText.set(source, formula);
    }
    return formula;
  }

  private readNew(source: string): Formula {
    const { maxLength, maxCost, budget, inputs, limits } = this.options;
    if (source.length > maxLength) {
      return { ok: false, error: { message: `the formula has ${source.length} characters, more than the ${maxLength} a formula may have` } };
    }
    budget.spend(PARSE_COST_PER_CHAR * Math.max(source.length, 1));
    try {
      const canonical = printProgram(parseProgram(source));
      const known = this.byProgram.get(canonical);
      if (known !== undefined) return known;
      budget.spend(LOWER_COST_PER_CHAR * Math.max(source.length, 1));
      const program = new Prepared({ expr: source }, inputs, limits).valueProgram();
      const cost = programCost(program);
      if (cost > maxCost) {
        return { ok: false, error: { message: `the formula costs about ${cost.toExponential(1)} operations to evaluate, more than the ${maxCost.toExponential(1)} allowed` } };
      }
      // Only readable formulas are shared by their printed form: an error's position belongs to the text.
      const formula = { ok: true as const, program, cost };
      this.byProgram.set(canonical, formula);
      return formula;
    } catch (e) {
      if (!isEngineError(e)) throw e;
      const error: Omit<FormatError, 'part'> = { message: e.message };
      if (e.position) error.position = e.position;
      return { ok: false, error };
    }
  }
}

/** The formula's value at a point. */
export function evaluate(formula: Extract<Formula, { ok: true }>, point: ReadonlyMap<string, Tensor>, budget: Budget): Tensor {
  budget.spend(formula.cost);
  return run(formula.program.plan, point)[0]!;
}
