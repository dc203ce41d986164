// The grading formats as their platforms read them (docs/grading.md): one maximum per question,
// fixed by `required`, the same in every format; nothing answered is not gradable; PrairieLearn's
// format_errors as strings; Gradescope's results.json with only the fields it defines, its
// visibility and output format settable.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { FORWARD, forwardTable, LECTURE_DF, LECTURE_F, postGrade } from './helpers.js';

/** Every field Gradescope's results.json defines at the top level and per test. */
const GRADESCOPE_TOP = new Set(['score', 'execution_time', 'output', 'output_format', 'test_output_format', 'test_name_format', 'visibility', 'stdout_visibility', 'extra_data', 'tests', 'leaderboard']);
const GRADESCOPE_TEST = new Set(['score', 'max_score', 'status', 'name', 'name_format', 'number', 'output', 'output_format', 'tags', 'visibility', 'extra_data']);

type Gradescope = { score: number; visibility: string; output: string; output_format: string; extra_data: { max_score: number; id: unknown; gradable: boolean }; tests: Record<string, unknown>[] };
type PrairieLearn = { id: unknown; gradable: boolean; score: number; message: string; format_errors: unknown; tests: { points: number; max_points: number }[] };

describe('grading formats', () => {
  let app: App;
  beforeAll(async () => {
    app = buildTestApp();
    await app.ready();
  });
  afterAll(() => app.close());

  const inEveryFormat = async (body: Record<string, unknown>) => {
    const [native, gradescope, prairielearn] = await Promise.all(
      (['native', 'gradescope', 'prairielearn'] as const).map((format) => postGrade(app, { ...body, format })),
    );
    return {
      native: native.results,
      gradescope: gradescope.results as unknown as Gradescope[],
      prairielearn: prairielearn.results as unknown as PrairieLearn[],
    };
  };

  // Right on what is asked, then more: right, wrong, unreadable, and nothing at all.
  const table = forwardTable();
  const tables = {
    reference: { expr: FORWARD.expr },
    at: FORWARD.at,
    tangents: FORWARD.tangents,
    required: ['forwardTrace.x5', 'derivative.x'],
    submissions: [
      { id: 'asked', answers: { forwardTrace: [table[4]], derivative: { x: '2*(W1*tanh(W0*x) - y)*W1*(1 - tanh(W0*x)^2)*W0' } } },
      { id: 'more, right', answers: { forwardTrace: table, derivative: { x: '2*(W1*tanh(W0*x) - y)*W1*(1 - tanh(W0*x)^2)*W0' }, value: table[4]!.value } },
      { id: 'more, wrong', answers: { forwardTrace: [table[4], { id: 'x1', value: 5, tangent: 5 }], derivative: { x: '2*(W1*tanh(W0*x) - y)*W1*(1 - tanh(W0*x)^2)*W0', W0: 'x' }, value: 7 } },
      { id: 'half', answers: { forwardTrace: [{ id: 'x5', value: table[4]!.value }] } },
      { id: 'unreadable', answers: { forwardTrace: table, derivative: { x: '2*(' } } },
      { id: 'nothing', answers: {} },
    ],
  };

  it("fixes a question's maximum by `required`: answering more never lowers the score", async () => {
    const { native, prairielearn } = await inEveryFormat(tables);
    // forwardTrace.x5 is two parts (value and tangent), derivative.x one.
    expect(native.map((r) => r.max_score)).toEqual([3, 3, 3, 3, 3, 3]);
    expect(native.map((r) => r.score)).toEqual([3, 3, 3, 1, 2, 0]);
    expect(prairielearn.slice(0, 3).map((r) => r.score)).toEqual([1, 1, 1]);
    const moreWrong = native[2]!;
    // What was not asked for is still graded, for feedback, at no points.
    expect(moreWrong.tests.filter((t) => t.max_score === 0).map((t) => [t.part, t.status])).toEqual([
      ['value', 'failed'],
      ['derivative.W0', 'failed'],
      ['forwardTrace.x1.value', 'failed'],
      ['forwardTrace.x1.tangent', 'failed'],
    ]);
  });

  it('gives the same score out of the same maximum in every format', async () => {
    for (const body of [tables, { ...tables, required: undefined }]) {
      const { native, gradescope, prairielearn } = await inEveryFormat(body);
      native.forEach((result, i) => {
        const fraction = result.max_score > 0 ? result.score / result.max_score : 0;
        expect(gradescope[i]!.score, `${result.id}`).toBe(result.score);
        expect(gradescope[i]!.extra_data.max_score, `${result.id}`).toBe(result.max_score);
        expect(gradescope[i]!.tests.reduce((s, t) => s + (t.max_score as number), 0), `${result.id}`).toBe(result.max_score);
        expect(prairielearn[i]!.score, `${result.id}`).toBeCloseTo(fraction, 12);
        expect(prairielearn[i]!.tests.reduce((s, t) => s + t.max_points, 0), `${result.id}`).toBe(result.max_score);
        expect(prairielearn[i]!.gradable).toBe(result.gradable);
      });
    }
  });

  it('answers nothing to grade as not gradable, with a message, in every format', async () => {
    const body = { reference: { expr: LECTURE_F }, submissions: [{ id: 'empty', answers: {} }, { id: 'missing' }, { id: 'blank', answers: { derivative: {}, forwardTrace: [] } }, { id: 'null', answers: null }] };
    const { native, gradescope, prairielearn } = await inEveryFormat(body);
    for (const result of native) {
      expect(result, String(result.id)).toMatchObject({ gradable: false, score: 0, format_errors: [{ part: 'answers', message: expect.stringMatching(/^no answer was given/) }] });
      expect(result.output).toMatch(/^Not graded: answers: no answer was given/);
    }
    for (const result of prairielearn) {
      expect(result).toMatchObject({ gradable: false, format_errors: [expect.stringMatching(/^answers: no answer was given/)] });
      expect(result.message).toMatch(/no answer was given/);
    }
    for (const result of gradescope) expect(result).toMatchObject({ score: 0, extra_data: { gradable: false } });
  });

  it("gives PrairieLearn format_errors as an array of strings, one per part, naming it", async () => {
    const answer = await postGrade(app, {
      reference: { expr: 'x * y' },
      format: 'prairielearn',
      submissions: [{ answers: { derivative: { x: 'y +', y: 'x' }, gradient: 'two', shapes: { nope: [1] } } }],
    });
    const [result] = answer.results as unknown as PrairieLearn[];
    expect(result!.gradable).toBe(false);
    expect(result!.format_errors).toEqual([
      'gradient: the gradient must be an object with a Value per input',
      expect.stringMatching(/^derivative\.x: the formula for ∂f\/∂x cannot be read: .*line 1, column 4/),
      expect.stringMatching(/^shapes\.nope: there is no step 'nope'/),
    ]);
    expect((result!.format_errors as unknown[]).every((e) => typeof e === 'string')).toBe(true);
  });

  it('gives Gradescope only the fields its results.json defines, the submission in extra_data', async () => {
    const { gradescope } = await inEveryFormat(tables);
    for (const result of gradescope) {
      for (const key of Object.keys(result)) expect(GRADESCOPE_TOP.has(key), `top-level ${key}`).toBe(true);
      for (const t of result.tests) for (const key of Object.keys(t)) expect(GRADESCOPE_TEST.has(key), `test ${key}`).toBe(true);
    }
    expect(gradescope.map((r) => r.extra_data.id)).toEqual(tables.submissions.map((s) => s.id));
    expect(gradescope.map((r) => [r.visibility, r.output_format])).toEqual(tables.submissions.map(() => ['visible', 'text']));
  });

  it('sets Gradescope visibility and output format per request; Markdown shows formulas as written', async () => {
    const body = {
      reference: { expr: 'x * y' },
      format: 'gradescope',
      submissions: [{ answers: { derivative: { x: 'x*y_1' } } }],
    };
    for (const visibility of ['hidden', 'after_due_date', 'after_published', 'visible']) {
      const answer = await postGrade(app, { ...body, gradescope: { visibility } });
      const [result] = answer.results as unknown as Gradescope[];
      expect(result!.visibility).toBe(visibility);
      expect(result!.tests.every((t) => t.visibility === visibility)).toBe(true);
    }
    const text = (await postGrade(app, { ...body, submissions: [{ answers: { derivative: { x: '2*x', y: 'x' } } }] })).results as unknown as Gradescope[];
    const md = (await postGrade(app, { ...body, submissions: [{ answers: { derivative: { x: '2*x', y: 'x' } } }], gradescope: { outputFormat: 'md' } })).results as unknown as Gradescope[];
    expect(text[0]!.output_format).toBe('text');
    expect(md[0]).toMatchObject({ output_format: 'md', test_output_format: 'md' });
    // The same lines, as Markdown paragraphs with their special characters escaped.
    expect(md[0]!.output.split('\n\n').map((line) => line.replace(/\\(.)/g, '$1'))).toEqual(text[0]!.output.split('\n'));
    expect(md[0]!.output).not.toMatch(/(^|[^\\])[*_]/);
  });

  it('refuses Gradescope settings with another format (400), and unknown values', async () => {
    const post = (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/grade', payload: { reference: { expr: LECTURE_F }, submissions: [{ answers: { derivative: { x: LECTURE_DF } } }], ...body } });
    for (const body of [{ gradescope: { visibility: 'hidden' } }, { format: 'prairielearn', gradescope: {} }, { format: 'gradescope', gradescope: { visibility: 'sometimes' } }, { format: 'gradescope', gradescope: { outputFormat: 'html' } }]) {
      const res = await post(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_error', errors: [{ path: expect.stringMatching(/^gradescope/) }] });
    }
  });
});
