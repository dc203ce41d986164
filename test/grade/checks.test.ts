// The grading verdicts the course's case checker (check_cases.py, kept outside this repository) asks of /grade (its `special()` checks
// class_of_three, lecture_table and right_wrong), ported here and run on requests built for them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { FORWARD, forwardTable, LECTURE_DF, LECTURE_DF_NO_CHAIN, LECTURE_F, postGrade, REVERSE, reverseTable, type Result } from './helpers.js';

type Check = 'class_of_three' | 'lecture_table' | 'right_wrong';

const full = (r: Result): boolean => r.max_score > 0 && Math.abs(r.score - r.max_score) < 1e-9;
const short = (r: Result): boolean => r.score < r.max_score - 1e-9;
const told = (r: Result): boolean => r.tests.some((t) => t.status === 'failed' && String(t.output).trim() !== '');

/** check_cases.py's verdict on `results`: the list of what is wrong (empty when the check passes). */
function check(kind: Check, results: Result[]): string[] {
  const errs: string[] = [];
  if (results.length === 0) return ['no results'];
  if (kind === 'class_of_three') {
    if (JSON.stringify(results.map((r) => r.id)) !== JSON.stringify(['s1', 's2', 's3'])) return ['ids are not s1 s2 s3 in order'];
    if (!full(results[0]!)) errs.push('an equivalent derivative did not get full marks');
    if (!(short(results[1]!) && told(results[1]!))) errs.push('a derivative missing the chain rule was not failed with feedback');
    if (results[2]!.gradable !== false || !(results[2]!.format_errors?.length > 0)) errs.push('an unparseable answer was not gradable:false with format_errors');
  } else if (kind === 'lecture_table') {
    const r = results[0]!;
    const ratio = r.max_score ? r.score / r.max_score : 0;
    const failedTests = r.tests.filter((t) => t.status === 'failed');
    if (!(ratio >= 0.6 && ratio < 1)) errs.push(`score ${r.score}/${r.max_score}: expected partial credit`);
    if (!failedTests.some((t) => `${t.name}${t.output}`.includes('x5'))) errs.push('no failed test names row x5');
    if (failedTests.some((t) => [1, 2, 3, 4].some((i) => t.name.includes(`x${i}`)))) errs.push('a correctly rounded row was failed');
  } else {
    if (!full(results[0]!)) errs.push('the right answer did not get full marks');
    if (!(results.length > 1 && short(results[1]!) && told(results[1]!))) errs.push('the wrong answer was not failed with feedback');
  }
  return errs;
}

describe("POST /grade: check_cases.py's grading checks", () => {
  let app: App;
  beforeAll(async () => {
    app = buildTestApp();
    await app.ready();
  });
  afterAll(() => app.close());

  it('class_of_three: an equivalent derivative, one missing the chain rule, one that does not parse', async () => {
    for (const at of [undefined, { x: 0.7 }]) {
      const answer = await postGrade(app, {
        reference: { expr: LECTURE_F },
        ...(at ? { at } : {}),
        submissions: [
          { id: 's1', answers: { derivative: { x: '2*x*(1 + exp(x^2)) * (1/(2*sqrt(x^2 + exp(x^2))) - sin(x^2 + exp(x^2)))' } } },
          { id: 's2', answers: { derivative: { x: LECTURE_DF_NO_CHAIN } } },
          { id: 's3', answers: { derivative: { x: '(2*x + 2*x*exp(x^2) * (1/(2*sqrt(x^2 + exp(x^2)))' } } },
        ],
      });
      expect(check('class_of_three', answer.results)).toEqual([]);
    }
  });

  it('lecture_table: rows x1..x4 rounded as the notes print them get credit; a wrong x5 is failed and named', async () => {
    // The notes' own numbers: x2 ≈ 0.964 with tangent 0.14, x3's tangent 0.169, x4 ≈ -0.85; x5's tangent with the sign lost.
    const rows = [
      { id: 'x1', value: 2, tangent: 2 },
      { id: 'x2', value: 0.964, tangent: 0.14 },
      { id: 'x3', value: 1.16, tangent: 0.169 },
      { id: 'x4', value: -0.85, tangent: 0.169 },
      { id: 'x5', value: 0.711, tangent: 0.283 },
    ];
    const answer = await postGrade(app, { reference: { expr: FORWARD.expr }, at: FORWARD.at, tangents: FORWARD.tangents, submissions: [{ id: 'notes', answers: { forwardTrace: rows } }] });
    expect(check('lecture_table', answer.results)).toEqual([]);
    expect(answer.results[0]).toMatchObject({ score: 9, max_score: 10 });
    // The table the notes print for x5 (tangent -0.283, 1% off and not what x4's numbers give) is also charged, and only there.
    const printed = await postGrade(app, {
      reference: { expr: FORWARD.expr },
      at: FORWARD.at,
      submissions: [{ id: 'printed', answers: { forwardTrace: [...rows.slice(0, 4), { id: 'x5', tangent: -0.283 }] } }],
    });
    expect(check('lecture_table', printed.results)).toEqual([]);
    // Also when x4 is rounded closer (-0.843): every earlier number is right, so x5 is held to the reference.
    const closer = await postGrade(app, {
      reference: { expr: FORWARD.expr },
      at: FORWARD.at,
      submissions: [{ id: 'closer', answers: { forwardTrace: [...rows.slice(0, 3), { id: 'x4', value: -0.843, tangent: 0.169 }, { id: 'x5', tangent: -0.283 }] } }],
    });
    expect(check('lecture_table', closer.results)).toEqual([]);
  });

  it('right_wrong: for every kind of answer, the right one gets full marks and a wrong one is failed with feedback', async () => {
    const exact = forwardTable();
    const cases = [
      { reference: { expr: LECTURE_F }, right: { derivative: { x: LECTURE_DF } }, wrong: { derivative: { x: '2*x*exp(x^2)' } } },
      { reference: { expr: LECTURE_F }, at: { x: 0.7 }, right: { value: 0.9328347830212237 }, wrong: { value: 0.8 } },
      { reference: { expr: LECTURE_F }, at: { x: 0.7 }, right: { gradient: { x: -1.874 } }, wrong: { gradient: { x: 1.874 } } },
      { reference: { expr: FORWARD.expr }, at: FORWARD.at, right: { forwardTrace: exact }, wrong: { forwardTrace: exact.map((r) => ({ ...r, value: r.value + 1 })) } },
      { reference: { expr: REVERSE.expr }, at: REVERSE.at, right: { reverseTrace: reverseTable() }, wrong: { reverseTrace: reverseTable(true) } },
      { reference: { expr: 'w = A @ v\nw' }, at: { A: [[1, 2], [3, 4]], v: [1, 1] }, right: { shapes: { A: [2, 2], v: [2], w: [2] } }, wrong: { shapes: { w: [2, 2] } } },
    ];
    for (const { right, wrong, ...request } of cases) {
      const answer = await postGrade(app, { ...request, submissions: [{ id: 'right', answers: right }, { id: 'wrong', answers: wrong }] });
      expect(check('right_wrong', answer.results), JSON.stringify(answer.results)).toEqual([]);
    }
  });
});
