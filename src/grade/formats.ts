// A native result in the shape a course platform reads: Gradescope's results.json, or
// PrairieLearn's external-grader results.

import type { GradeFormat, GradeResult } from './types.js';

export interface GradescopeResult {
  id: string | number;
  score: number;
  output: string;
  visibility: 'visible';
  tests: { name: string; score: number; max_score: number; status: 'passed' | 'failed'; output: string; visibility: 'visible' }[];
  extra_data: { max_score: number; gradable: boolean; format_errors: GradeResult['format_errors'] };
}

export interface PrairieLearnResult {
  id: string | number;
  gradable: boolean;
  score: number;
  message: string;
  /** By part, PrairieLearn's shape for answers that cannot be read. */
  format_errors: Record<string, string>;
  tests: { name: string; points: number; max_points: number; message: string }[];
}

export function toFormat(result: GradeResult, format: GradeFormat): GradeResult | GradescopeResult | PrairieLearnResult {
  switch (format) {
    case 'native':
      return result;
    case 'gradescope':
      return gradescope(result);
    case 'prairielearn':
      return prairielearn(result);
  }
}

/**
 * Gradescope has no "not gradable": a part that cannot be read is a failed test saying why, so
 * the score never counts it as right.
 */
function gradescope(result: GradeResult): GradescopeResult {
  const tests = result.tests.map(({ name, score, max_score, status, output }) => ({ name, score, max_score, status, output, visibility: 'visible' as const }));
  for (const e of result.format_errors) {
    tests.push({ name: `${e.part}: not graded`, score: 0, max_score: 1, status: 'failed', output: `Could not be graded: ${e.message}.`, visibility: 'visible' });
  }
  return {
    id: result.id,
    score: result.score,
    output: result.output,
    visibility: 'visible',
    tests,
    extra_data: { max_score: result.max_score + result.format_errors.length, gradable: result.gradable, format_errors: result.format_errors },
  };
}

function prairielearn(result: GradeResult): PrairieLearnResult {
  // Keyed by parts, which hold the student's keys: a Map, so `constructor` or `__proto__` is a part like any other.
  const byPart = new Map<string, string>();
  for (const e of result.format_errors) {
    const before = byPart.get(e.part);
    byPart.set(e.part, before === undefined ? e.message : `${before}; ${e.message}`);
  }
  const formatErrors = Object.fromEntries(byPart);
  return {
    id: result.id,
    gradable: result.gradable,
    score: result.max_score > 0 ? result.score / result.max_score : 0,
    message: result.output,
    format_errors: formatErrors,
    tests: result.tests.map((t) => ({ name: t.name, points: t.score, max_points: t.max_score, message: t.output })),
  };
}
