// One submission's grading sheet: a test per answer graded (one point each), a format error per
// answer that cannot be read, and the lines of the summary the student reads first.

import type { FormatError, GradeTest } from './types.js';

export class Sheet {
  readonly tests: GradeTest[] = [];
  readonly errors: FormatError[] = [];
  readonly notes: string[] = [];

  pass(part: string, name: string, output: string): void {
    this.tests.push({ name, part, score: 1, max_score: 1, status: 'passed', output });
  }

  fail(part: string, name: string, output: string): void {
    this.tests.push({ name, part, score: 0, max_score: 1, status: 'failed', output });
  }

  error(part: string, message: string, position?: { line: number; column: number }): void {
    const error: FormatError = { part, message };
    if (position) error.position = position;
    this.errors.push(error);
  }

  note(line: string): void {
    this.notes.push(line);
  }
}
