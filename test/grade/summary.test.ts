// The summary a student reads first never says "all right" when a test failed: a required answer
// that was not given fails a test without a note of its own, and the summary says so.

import { expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { grade } from '../../src/grade/grade.js';
import type { GradeResult } from '../../src/grade/types.js';

it('names the required answers not given instead of calling the rest all right', () => {
  const answer = grade(
    new Engine(),
    { reference: { expr: 'x^2 * y' }, at: { x: 1, y: 2 }, required: ['gradient', 'value'], submissions: [{ answers: { gradient: { x: 4 } } }, { answers: { gradient: { x: 4, y: 1 }, value: 2 } }] },
    { maxSubmissions: 10, maxFlops: 1e9 },
  );
  const [partial, full] = answer.results as GradeResult[];
  expect(partial).toMatchObject({ score: 1, max_score: 3, gradable: true });
  expect(partial!.output).toBe(
    ['1 of 3 answers are right.', 'The value is required but was not given.', 'The gradient with respect to y is required but was not given.'].join('\n'),
  );
  expect(full).toMatchObject({ score: 3, max_score: 3, output: 'All 3 answers are right.' });
});
