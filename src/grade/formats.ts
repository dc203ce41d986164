// A native result in the shape a course platform reads: Gradescope's results.json
// (https://gradescope-autograders.readthedocs.io/en/latest/specs/), or PrairieLearn's
// external-grader results (https://prairielearn.readthedocs.io/en/latest/externalGrading/).
// Both carry the native result's score out of the same maximum (src/grade/grade.ts, resultOf).

import type { GradeFormat, GradeResult, GradescopeOptions } from './types.js';

type Visibility = NonNullable<GradescopeOptions['visibility']>;
type OutputFormat = NonNullable<GradescopeOptions['outputFormat']>;

/** Only fields Gradescope's results.json defines; the submission is known by its place in `results`. */
export interface GradescopeResult {
  score: number;
  output: string;
  output_format: OutputFormat;
  test_output_format: OutputFormat;
  visibility: Visibility;
  tests: { name: string; score: number; max_score: number; status: 'passed' | 'failed'; output: string; visibility: Visibility }[];
  /** Stored by Gradescope, shown to no one: the maximum, and why a submission was not gradable. */
  extra_data: { id: string | number; max_score: number; gradable: boolean; format_errors: GradeResult['format_errors'] };
}

export interface PrairieLearnResult {
  id: string | number;
  gradable: boolean;
  /** The fraction of the maximum, 0 to 1. */
  score: number;
  message: string;
  /** What could not be read, one line each: PrairieLearn shows a string or an array of strings. */
  format_errors: string[];
  tests: { name: string; points: number; max_points: number; message: string }[];
}

export function toFormat(result: GradeResult, format: GradeFormat, gradescopeOptions: GradescopeOptions = {}): GradeResult | GradescopeResult | PrairieLearnResult {
  switch (format) {
    case 'native':
      return result;
    case 'gradescope':
      return gradescope(result, gradescopeOptions);
    case 'prairielearn':
      return prairielearn(result);
  }
}

/**
 * Gradescope has no "not gradable": a part that cannot be read is a failed test saying why (the
 * native result has it already), so the score never counts it as right.
 */
function gradescope(result: GradeResult, options: GradescopeOptions): GradescopeResult {
  const visibility = options.visibility ?? 'visible';
  const outputFormat = options.outputFormat ?? 'text';
  const text = outputFormat === 'md' ? markdown : (s: string) => s;
  return {
    score: result.score,
    output: text(result.output),
    output_format: outputFormat,
    test_output_format: outputFormat,
    visibility,
    tests: result.tests.map(({ name, score, max_score, status, output }) => ({ name, score, max_score, status, output: text(output), visibility })),
    extra_data: { id: result.id, max_score: result.max_score, gradable: result.gradable, format_errors: result.format_errors },
  };
}

/** Plain lines as Markdown: each a paragraph, its formulas' `*`, `_` and brackets shown as written. */
function markdown(text: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(/[\\`*_{}[\]<>#|~]/g, '\\$&'))
    .join('\n\n');
}

function prairielearn(result: GradeResult): PrairieLearnResult {
  return {
    id: result.id,
    gradable: result.gradable,
    score: result.max_score > 0 ? result.score / result.max_score : 0,
    message: result.output,
    format_errors: result.format_errors.map((e) => `${e.part}: ${e.message}`),
    tests: result.tests.map((t) => ({ name: t.name, points: t.score, max_points: t.max_score, message: t.output })),
  };
}
