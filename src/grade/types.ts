// Grading (README "Grading"): the request, the defaults, and the native answer — Gradescope's
// results.json per submission, plus `gradable` and `format_errors` as PrairieLearn has them.

import type { GraphJson } from '../engine/ir/from-json.js';
import type { Value } from '../service/values.js';

/** A wrong formula the instructor expects, with what to tell a student whose answer matches it. */
export interface KnownMistake {
  expr: string;
  message: string;
  /** The input whose derivative this mistake is about (default: any). */
  wrt?: string | undefined;
}

export type GradeFormat = 'native' | 'gradescope' | 'prairielearn';

export interface GradeRequest {
  reference: { expr?: string | undefined; graph?: GraphJson | undefined; feedback?: KnownMistake[] | undefined };
  at?: Record<string, unknown> | undefined;
  tangents?: Record<string, unknown> | undefined;
  cotangent?: unknown;
  required?: string[] | undefined;
  /** How many random points a formula is checked at, or the points themselves. */
  points?: number | Record<string, unknown>[] | undefined;
  seed?: number | undefined;
  /** Hand-computed numbers and table cells. */
  rtol?: number | undefined;
  atol?: number | undefined;
  /** Formulas (exact: compared tightly). */
  formulaRtol?: number | undefined;
  formulaAtol?: number | undefined;
  ranges?: Record<string, readonly [number, number]> | undefined;
  format?: GradeFormat | undefined;
  /** Gradescope's own settings of its results (format gradescope only). */
  gradescope?: GradescopeOptions | undefined;
  /** A submission without an id is known by its index. */
  submissions: { id?: string | number | undefined; answers?: unknown }[];
}

/** Who sees a Gradescope result, and when (Gradescope's own values). */
export const GRADESCOPE_VISIBILITIES = ['visible', 'hidden', 'after_due_date', 'after_published'] as const;
/** How Gradescope shows the texts: plain, or Markdown. */
export const GRADESCOPE_OUTPUT_FORMATS = ['text', 'md'] as const;

export interface GradescopeOptions {
  /** Of the result and of each test (default visible). */
  visibility?: (typeof GRADESCOPE_VISIBILITIES)[number] | undefined;
  /** Of `output` and of each test's output (default text). */
  outputFormat?: (typeof GRADESCOPE_OUTPUT_FORMATS)[number] | undefined;
}

/** What one request may cost; from the service configuration. */
export interface GradeLimits {
  maxSubmissions: number;
  /** Estimated work of the whole request, in floating-point operations (see `STEP_COST`). */
  maxFlops: number;
}

export const GRADE_DEFAULTS = {
  /** Random points a derivative formula is checked at. */
  points: 8,
  maxPoints: 64,
  seed: 0,
  /** Every input's elements are drawn uniformly from this range unless `ranges` says otherwise. */
  range: [-2, 2] as const,
  /** A point where the reference is undefined is redrawn, up to this many draws per point wanted. */
  drawsPerPoint: 20,
  /** PrairieLearn's defaults for numbers a student computed by hand. */
  rtol: 1e-2,
  atol: 1e-8,
  /** Formulas are exact: only rounding separates equivalent forms. */
  formulaRtol: 1e-6,
  formulaAtol: 1e-9,
  /** The longest formula read. */
  formulaMaxLength: 5000,
  /** A formula may cost at most this many flops per point, or 20 times the reference's gradient if more. */
  formulaMaxFlops: 1e6,
} as const;

/** Every evaluated step counts as at least this many flops: interpreting a step costs about that much. */
export const STEP_COST = 100;

export interface GradeTest {
  name: string;
  /** What the test is about, as a path into the answers: `derivative.x`, `forwardTrace.x2.tangent`. */
  part: string;
  score: number;
  max_score: number;
  status: 'passed' | 'failed';
  output: string;
}

export interface FormatError {
  part: string;
  message: string;
  position?: { line: number; column: number };
}

export interface GradeResult {
  id: string | number;
  score: number;
  max_score: number;
  /** False when part of the submission could not be read (or the request cannot grade it): do not record the score. */
  gradable: boolean;
  /** A summary for the student: the first wrong row, what was expected and what was given. */
  output: string;
  tests: GradeTest[];
  format_errors: FormatError[];
}

export interface GradeSettings {
  points: number;
  seed: number;
  ranges: Record<string, [number, number]>;
  rtol: number;
  atol: number;
  formulaRtol: number;
  formulaAtol: number;
}

export interface GradeAnswer {
  format: GradeFormat;
  results: unknown[];
  /** The points each derivative formula was checked at, by input. */
  points: Record<string, Record<string, Value>[]>;
  settings: GradeSettings;
}
