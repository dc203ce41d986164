// POST /grade beyond the lecture: the three output formats, `required`, malformed submissions
// (never failing the batch), the request's own mistakes, the limits, and the points.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { FORWARD, LECTURE_DF, LECTURE_F, postGrade, REVERSE, reverseTable, test } from './helpers.js';

describe('POST /grade', () => {
  let app: App;
  beforeAll(async () => {
    app = buildTestApp();
    await app.ready();
  });
  afterAll(() => app.close());

  const post = (body: unknown) => app.inject({ method: 'POST', url: '/grade', payload: body as Record<string, unknown> });

  describe('output formats', () => {
    const body = {
      reference: { expr: LECTURE_F },
      at: { x: 0.7 },
      submissions: [
        { id: 'right', answers: { derivative: { x: LECTURE_DF }, value: 0.9328 } },
        { id: 'half', answers: { derivative: { x: LECTURE_DF }, value: 2 } },
        { id: 'unreadable', answers: { derivative: { x: 'sin(' }, value: 0.9328 } },
      ],
    };

    it('native: Gradescope-like results with gradable and format_errors', async () => {
      const answer = await postGrade(app, body);
      expect(answer.format).toBe('native');
      const [right, half, unreadable] = answer.results;
      expect(right).toEqual({
        id: 'right',
        score: 2,
        max_score: 2,
        gradable: true,
        output: 'All 2 answers are right.',
        tests: [
          { name: 'value', part: 'value', score: 1, max_score: 1, status: 'passed', output: 'Right: 0.932835.' },
          { name: 'derivative with respect to x', part: 'derivative.x', score: 1, max_score: 1, status: 'passed', output: 'Right: equal to ∂f/∂x at all 8 points checked.' },
        ],
        format_errors: [],
      });
      expect(half).toMatchObject({ score: 1, max_score: 2, gradable: true, output: 'Value: expected 0.932835, given 2.' });
      // The part that cannot be read is a failed test here too: the maximum is the formats' one.
      expect(unreadable).toMatchObject({ score: 1, max_score: 2, gradable: false, format_errors: [{ part: 'derivative.x', position: { line: 1, column: 4 } }] });
      expect(unreadable!.tests.at(-1)).toMatchObject({ name: 'derivative.x: not graded', part: 'derivative.x', score: 0, max_score: 1, status: 'failed' });
      expect(answer.settings).toEqual({ points: 8, seed: 0, ranges: { x: [-2, 2] }, rtol: 0.01, atol: 1e-8, formulaRtol: 1e-6, formulaAtol: 1e-9 });
    });

    it('gradescope: only the fields results.json defines, a part that cannot be read being a failed test', async () => {
      const answer = await postGrade(app, { ...body, format: 'gradescope' });
      expect(answer.format).toBe('gradescope');
      const [right, half, unreadable] = answer.results as unknown as Record<string, unknown>[];
      expect(Object.keys(right!).sort()).toEqual(['extra_data', 'output', 'output_format', 'score', 'test_output_format', 'tests', 'visibility']);
      expect(right).toMatchObject({ score: 2, output_format: 'text', test_output_format: 'text', visibility: 'visible', extra_data: { id: 'right', max_score: 2, gradable: true, format_errors: [] } });
      expect(right!.tests).toEqual([
        { name: 'value', score: 1, max_score: 1, status: 'passed', output: 'Right: 0.932835.', visibility: 'visible' },
        { name: 'derivative with respect to x', score: 1, max_score: 1, status: 'passed', output: 'Right: equal to ∂f/∂x at all 8 points checked.', visibility: 'visible' },
      ]);
      expect(half).toMatchObject({ score: 1 });
      expect(unreadable).toMatchObject({ score: 1, extra_data: { max_score: 2, gradable: false } });
      expect((unreadable!.tests as Record<string, unknown>[]).at(-1)).toMatchObject({
        name: 'derivative.x: not graded',
        score: 0,
        max_score: 1,
        status: 'failed',
        output: expect.stringMatching(/^Not graded: the formula for ∂f\/∂x cannot be read: .*line 1, column 4/),
        visibility: 'visible',
      });
    });

    it('prairielearn: a score in [0, 1], gradable, format_errors as strings, tests with points', async () => {
      const answer = await postGrade(app, { ...body, format: 'prairielearn' });
      expect(answer.format).toBe('prairielearn');
      const [right, half, unreadable] = answer.results as unknown as Record<string, unknown>[];
      expect(right).toEqual({
        id: 'right',
        gradable: true,
        score: 1,
        message: 'All 2 answers are right.',
        format_errors: [],
        tests: [
          { name: 'value', points: 1, max_points: 1, message: 'Right: 0.932835.' },
          { name: 'derivative with respect to x', points: 1, max_points: 1, message: 'Right: equal to ∂f/∂x at all 8 points checked.' },
        ],
      });
      expect(half).toMatchObject({ gradable: true, score: 0.5 });
      // PrairieLearn shows a string or an array of strings: one line per part, naming it.
      expect(unreadable).toMatchObject({ gradable: false, score: 0.5, format_errors: [expect.stringMatching(/^derivative\.x: the formula for ∂f\/∂x cannot be read/)] });
    });
  });

  describe('required answers', () => {
    it('a missing required row, cell, input or value is a failed test', async () => {
      const answer = await postGrade(app, {
        reference: { expr: FORWARD.expr },
        at: FORWARD.at,
        required: ['forwardTrace.x5', 'forwardTrace.x2.tangent', 'reverseTrace.x', 'value', 'gradient.W1', 'x4'],
        submissions: [
          { id: 'partial', answers: { forwardTrace: [{ id: 'x2', value: 0.964 }, { id: 'x4', tangent: 0.1696 }] } },
          { id: 'nothing', answers: {} },
        ],
      });
      const [partial, nothing] = answer.results;
      expect(partial!.tests.map((t) => [t.part, t.status])).toEqual([
        ['value', 'failed'],
        ['gradient.W1', 'failed'],
        ['forwardTrace.x2.value', 'passed'],
        ['forwardTrace.x2.tangent', 'failed'],
        ['forwardTrace.x4.value', 'failed'],
        ['forwardTrace.x4.tangent', 'passed'],
        ['forwardTrace.x5.value', 'failed'],
        ['forwardTrace.x5.tangent', 'failed'],
        ['reverseTrace.x.adjoint', 'failed'],
        ['x4', 'failed'],
      ]);
      expect(test(partial!, 'forwardTrace.x5.value').output).toBe('Row x5: the value is required but was not given.');
      // The maximum is what `required` names, a point each: the row named alone is one part (x4,
      // right only when right in every table given), and a cell given but not required
      // (forwardTrace.x2.value) is graded for feedback at no points.
      expect(partial).toMatchObject({ score: 0, max_score: 7 });
      expect(test(partial!, 'forwardTrace.x2.value')).toMatchObject({ status: 'passed', score: 0, max_score: 0, output: expect.stringContaining('Not asked for: no points') });
      expect(test(partial!, 'x4')).toMatchObject({ status: 'failed', max_score: 1, output: 'Row x4: 1 of 2 cells wrong or not given.' });
      // With no table at all the row is missing once; and nothing given is not gradable.
      expect(nothing!.tests.map((t) => t.part)).toEqual(['value', 'gradient.W1', 'x4', 'forwardTrace.x2.tangent', 'forwardTrace.x5.value', 'forwardTrace.x5.tangent', 'reverseTrace.x.adjoint']);
      expect(nothing).toMatchObject({ score: 0, max_score: 7, gradable: false, format_errors: [{ part: 'answers', message: expect.stringMatching(/^no answer was given/) }] });
    });

    it('a kind named alone requires every part of it', async () => {
      const answer = await postGrade(app, {
        reference: { expr: 'x * y' },
        required: ['derivative'],
        submissions: [{ id: 's', answers: { derivative: { y: 'x' } } }],
      });
      expect(answer.results[0]!.tests.map((t) => [t.part, t.status])).toEqual([
        ['derivative.x', 'failed'],
        ['derivative.y', 'passed'],
      ]);
    });

    it('a required entry that names nothing is an error of the request', async () => {
      for (const required of [['forwardTrace.x9'], ['nonsense'], ['gradient.z'], ['forwardTrace.x2.adjoint']]) {
        const res = await post({ reference: { expr: FORWARD.expr }, at: FORWARD.at, required, submissions: [] });
        expect(res.statusCode, JSON.stringify(required)).toBe(422);
        expect(res.json()).toMatchObject({ code: 'unknown_input', errors: [{ path: 'required.0' }] });
      }
      const noPoint = await post({ reference: { expr: LECTURE_F }, required: ['reverseTrace.x'], submissions: [] });
      expect(noPoint.statusCode).toBe(422);
      expect(noPoint.json().detail).toContain('tables need the point `at`');
    });
  });

  describe('one bad submission never fails the batch', () => {
    it('reports each malformed part as a format error and grades the rest', async () => {
      const answer = await postGrade(app, {
        reference: { expr: REVERSE.expr },
        at: REVERSE.at,
        submissions: [
          { id: 'not-an-object', answers: 'x1 = 0.49' },
          { id: 'wrong-types', answers: { gradient: 'two x', derivative: { x: ['2*x'] }, reverseTrace: reverseTable() } },
          { id: 'typo', answers: { derivatives: { x: '2*x' } } },
          { id: 'rows', answers: { reverseTrace: [{ id: 'x9', adjoint: 1 }, { id: 'x6', adjoint: 1 }, { id: 'x6', adjoint: 2 }, { id: 'x5', adjoint: 'one' }, { id: 'x4', adjoint: [[1, 2], [3]] }, { id: 'x3', adjoint: [1, 2] }] } },
          { answers: { derivative: { x: 'd/dx' }, gradient: { z: 1 } } },
          { id: 'fine', answers: { reverseTrace: reverseTable() } },
        ],
      });
      const [notObject, wrongTypes, typo, rows, noId, fine] = answer.results;
      expect(notObject).toMatchObject({ gradable: false, score: 0, max_score: 1, tests: [{ part: 'answers', status: 'failed' }], format_errors: [{ part: 'answers' }] });
      expect(wrongTypes).toMatchObject({ gradable: false, score: 7, max_score: 9 });
      expect(wrongTypes!.format_errors.map((e) => e.part)).toEqual(['gradient', 'derivative.x']);
      expect(wrongTypes!.format_errors[0]!.message).toBe('the gradient must be an object with a Value per input');
      expect(typo).toMatchObject({ gradable: false, format_errors: [{ part: 'derivatives', message: expect.stringContaining("'derivatives' is not a kind of answer") }] });
      expect(rows!.format_errors.map((e) => e.part)).toEqual(['reverseTrace.x9', 'reverseTrace.x6', 'reverseTrace.x5.adjoint', 'reverseTrace.x4.adjoint']);
      expect(rows!.tests.map((t) => [t.part, t.status])).toEqual([
        ['reverseTrace.x6.adjoint', 'passed'],
        ['reverseTrace.x3.adjoint', 'failed'],
        // Rows that cannot be read are failed tests saying why (x6, given twice, is graded once).
        ['reverseTrace.x9', 'failed'],
        ['reverseTrace.x5.adjoint', 'failed'],
        ['reverseTrace.x4.adjoint', 'failed'],
      ]);
      expect(test(rows!, 'reverseTrace.x3.adjoint').output).toBe('Row x3: expected an adjoint of shape [], given shape [2].');
      expect(noId).toMatchObject({ id: 4, gradable: false });
      expect(noId!.format_errors.map((e) => e.part)).toEqual(['gradient.z', 'derivative.x']);
      expect(fine).toMatchObject({ id: 'fine', gradable: true, score: 7, max_score: 7 });
    });

    it('carries an error forward through steps the student does not list, with tensors', async () => {
      // h = W x, t = tanh(h), s = Σ t²: the lowering adds an unnamed step (t * t) a student does not list.
      const W = [[1, 2], [0.5, -1]];
      const x = [0.3, -0.2];
      const h = W.map((row) => row[0]! * x[0]! + row[1]! * x[1]!);
      const t = h.map(Math.tanh);
      const table = (tBar: number[]) => {
        const hBar = tBar.map((v, i) => v * (1 - t[i]! ** 2));
        const xBar = [0, 1].map((j) => W[0]![j]! * hBar[0]! + W[1]![j]! * hBar[1]!);
        const WBar = hBar.map((hb) => x.map((xv) => hb * xv));
        return [{ id: 's', adjoint: 1 }, { id: 't', adjoint: tBar }, { id: 'h', adjoint: hBar }, { id: 'x', adjoint: xBar }, { id: 'W', adjoint: WBar }];
      };
      const answer = await postGrade(app, {
        reference: { expr: 'h = W @ x\nt = tanh(h)\ns = sum(t * t)\ns' },
        at: { W, x },
        submissions: [
          { id: 'right', answers: { reverseTrace: table(t.map((v) => 2 * v)) } },
          { id: 'one-factor', answers: { reverseTrace: table(t) } },
        ],
      });
      const [right, oneFactor] = answer.results;
      expect(right).toMatchObject({ score: 5, max_score: 5 });
      expect(oneFactor).toMatchObject({ score: 4, max_score: 5 });
      expect(oneFactor!.tests.filter((x) => x.status === 'failed').map((x) => x.part)).toEqual(['reverseTrace.t.adjoint']);
      expect(test(oneFactor!, 'reverseTrace.t.adjoint').output).toMatch(/^Row t, adjoint: expected -0\.199336, given -0\.099668 at index \[0\]\./);
      // x is used by h = W @ x alone (one matmul step, as written): its adjoint follows from the student's h.
      expect(test(oneFactor!, 'reverseTrace.x.adjoint').output).toMatch(/^Right given your own adjoints of the steps that use x \(h = \[.*\]\): from them the adjoint is/);
      expect(test(oneFactor!, 'reverseTrace.W.adjoint').output).toContain('Error carried forward');
    });

    it('a formula too long or too costly is not gradable', async () => {
      const answer = await postGrade(app, {
        reference: { expr: 'x^2' },
        submissions: [
          { id: 'long', answers: { derivative: { x: `2*x${' + 0'.repeat(2000)}` } } },
          { id: 'costly', answers: { derivative: { x: 'sum(inv(eye(300) + x))' } } },
          { id: 'fine', answers: { derivative: 'x*2' } },
        ],
      });
      expect(answer.results[0]).toMatchObject({ gradable: false, format_errors: [{ message: expect.stringContaining('more than the 5000 a formula may have') }] });
      expect(answer.results[1]).toMatchObject({ gradable: false, format_errors: [{ message: expect.stringContaining('operations to evaluate, more than') }] });
      expect(answer.results[2]).toMatchObject({ gradable: true, score: 1 });
    });
  });

  describe("the request's own mistakes and its limits", () => {
    it('refuses a reference or a known mistake that does not parse, with the position', async () => {
      const reference = await post({ reference: { expr: 'x^2 +' }, submissions: [] });
      expect(reference.statusCode).toBe(400);
      expect(reference.json()).toMatchObject({ code: 'parse_error', position: { line: 1, column: 6 } });
      const mistake = await post({ reference: { expr: 'x^2', feedback: [{ expr: 'x +* 2', message: 'm' }] }, submissions: [] });
      expect(mistake.statusCode).toBe(400);
      expect(mistake.json()).toMatchObject({ code: 'parse_error', position: { line: 1, column: 4 }, errors: [{ path: 'reference.feedback.0.expr' }] });
    });

    it('refuses ranges, points, tangents and feedback that name no input or do not fit', async () => {
      const cases: [unknown, number, string][] = [
        [{ reference: { expr: 'x^2' }, ranges: { y: [0, 1] }, submissions: [] }, 422, 'unknown_input'],
        [{ reference: { expr: 'x^2' }, ranges: { x: [1, 0] }, submissions: [] }, 400, 'validation_error'],
        [{ reference: { expr: 'x^2' }, points: 65, submissions: [] }, 400, 'validation_error'],
        [{ reference: { expr: 'x^2' }, points: [{ y: 1 }], submissions: [] }, 422, 'unknown_input'],
        [{ reference: { expr: 'x^2' }, points: [{ x: [1, 2] }], submissions: [] }, 422, 'shape_mismatch'],
        [{ reference: { expr: 'x^2' }, at: { x: 1 }, tangents: { x: [1, 2] }, submissions: [] }, 422, 'shape_mismatch'],
        [{ reference: { expr: 'x^2', feedback: [{ expr: 'x', message: 'm', wrt: 'y' }] }, submissions: [] }, 422, 'unknown_input'],
        [{ reference: { expr: 'x^2' }, submissions: [{ id: 1, answers: {} }], format: 'moodle' }, 400, 'validation_error'],
      ];
      for (const [body, status, code] of cases) {
        const res = await post(body);
        expect(res.statusCode, JSON.stringify(body)).toBe(status);
        expect(res.json().code).toBe(code);
      }
    });

    it('refuses more submissions than GRADE_MAX_SUBMISSIONS, and work past GRADE_MAX_FLOPS, with 422 limit_exceeded', async () => {
      const small = buildTestApp({ GRADE_MAX_SUBMISSIONS: 3, GRADE_MAX_FLOPS: 2e6 });
      await small.ready();
      try {
        const submissions = Array.from({ length: 4 }, (_, k) => ({ id: k, answers: { derivative: { x: '2*x' } } }));
        const many = await small.inject({ method: 'POST', url: '/grade', payload: { reference: { expr: 'x^2' }, submissions } });
        expect(many.statusCode).toBe(422);
        expect(many.json()).toMatchObject({ code: 'limit_exceeded', errors: [{ path: 'submissions' }] });
        expect(many.json().detail).toContain('GRADE_MAX_SUBMISSIONS');
        const distinct = Array.from({ length: 3 }, (_, k) => ({ id: k, answers: { derivative: { x: `2*x + ${k} - ${k}${' + 0*x'.repeat(60)}` } } }));
        const costly = await small.inject({ method: 'POST', url: '/grade', payload: { reference: { expr: 'x^2' }, submissions: distinct } });
        expect(costly.statusCode).toBe(422);
        expect(costly.json()).toMatchObject({ code: 'limit_exceeded' });
        expect(costly.json().detail).toContain('GRADE_MAX_FLOPS');
        const fits = await small.inject({ method: 'POST', url: '/grade', payload: { reference: { expr: 'x^2' }, submissions: submissions.slice(0, 3) } });
        expect(fits.statusCode).toBe(200);
      } finally {
        await small.close();
      }
    });
  });

  describe('points, tolerances and inputs', () => {
    it('checks at the points the request gives, skipping those where the reference is undefined', async () => {
      const answer = await postGrade(app, {
        reference: { expr: 'log(x) * y' },
        points: [{ x: 1.5, y: 2 }, { x: -1, y: 1 }, { x: 0.5, y: -3 }],
        submissions: [{ id: 's', answers: { derivative: { x: 'y / x', y: 'log(x)' } } }],
      });
      expect(answer.points).toEqual({ x: [{ x: 1.5, y: 2 }, { x: 0.5, y: -3 }], y: [{ x: 1.5, y: 2 }, { x: 0.5, y: -3 }] });
      expect(answer.results[0]).toMatchObject({ score: 2, max_score: 2 });
      expect(answer.settings.points).toBe(3);
    });

    it('draws the points of each part from the seed and the part alone', async () => {
      const one = await postGrade(app, { reference: { expr: 'x * y' }, seed: 7, submissions: [{ id: 's', answers: { derivative: { x: 'y' } } }] });
      const both = await postGrade(app, { reference: { expr: 'x * y' }, seed: 7, submissions: [{ id: 's', answers: { derivative: { x: 'y', y: 'x' } } }] });
      expect(both.points.x).toEqual(one.points.x);
      expect(both.points.y).not.toEqual(both.points.x);
      const fewer = await postGrade(app, { reference: { expr: 'x * y' }, seed: 7, points: 3, submissions: [{ id: 's', answers: { derivative: { x: 'y' } } }] });
      expect(fewer.points.x).toEqual(one.points.x!.slice(0, 3));
    });

    it('compares numbers with the tolerances the request gives', async () => {
      // x2 rounded to 0.964, and the later values worked out exactly from it.
      const rows = [
        { id: 'x1', value: 2 },
        { id: 'x2', value: 0.964 },
        { id: 'x3', value: 1.2 * 0.964 },
        { id: 'x4', value: 1.2 * 0.964 - 2 },
        { id: 'x5', value: (1.2 * 0.964 - 2) ** 2 },
      ];
      const loose = await postGrade(app, { reference: { expr: FORWARD.expr }, at: FORWARD.at, submissions: [{ id: 's', answers: { forwardTrace: rows } }] });
      expect(loose.results[0]).toMatchObject({ score: 5, max_score: 5 });
      expect(loose.results[0]!.tests.every((t) => t.output.startsWith('Right: '))).toBe(true);
      const tight = await postGrade(app, { reference: { expr: FORWARD.expr }, at: FORWARD.at, rtol: 1e-6, submissions: [{ id: 's', answers: { forwardTrace: rows } }] });
      // Only x2's rounding is charged: the rows after it are right given it.
      expect(tight.results[0]!.tests.map((t) => t.status)).toEqual(['passed', 'failed', 'passed', 'passed', 'passed']);
      expect(tight.settings).toMatchObject({ rtol: 1e-6, atol: 1e-8 });
    });

    it('grades formulas for tensor inputs, a constant standing for a constant tensor', async () => {
      const answer = await postGrade(app, {
        reference: { expr: 'sum(x^2) + dot(a, x) + sum(b)' },
        at: { x: [1, 2, 3], a: [0.5, -1, 2], b: [1, 1] },
        submissions: [
          { id: 'right', answers: { derivative: { x: '2*x + a', a: 'x', b: '1' }, gradient: { x: [2.5, 3, 8], b: [1, 1] } } },
          { id: 'wrong', answers: { derivative: { x: '2*x', a: '[1, 1]', b: 'x' } } },
        ],
      });
      const [right, wrong] = answer.results;
      expect(right).toMatchObject({ score: 5, max_score: 5, gradable: true });
      expect(wrong).toMatchObject({ score: 0, max_score: 3 });
      expect(test(wrong!, 'derivative.x').output).toMatch(/^∂f\/∂x at point 1 of 8 \(x = \[.*\], a = \[.*\], b = \[.*\]\), element \[0\]: expected .*, your formula gives .*\.$/);
      expect(test(wrong!, 'derivative.a').output).toMatch(/has the shape of a, \[3\], but your formula gives shape \[2\]/);
      expect(answer.points.x![0]!.x).toHaveLength(3);
    });

    it('takes a JSON-graph reference without `at`: its inputs are the names it reads', async () => {
      const graph = { nodes: [{ id: 'p', op: 'mul', args: ['x', 'y'] }, { id: 'q', op: 'sin', args: ['p'] }], output: 'q' };
      const answer = await postGrade(app, {
        reference: { graph },
        submissions: [{ id: 's', answers: { derivative: { x: 'y * cos(x*y)', y: 'cos(x*y)' } } }],
      });
      expect(answer.results[0]).toMatchObject({ score: 1, max_score: 2 });
      expect(test(answer.results[0]!, 'derivative.y').output).toContain('expected');
    });

    it('says what it cannot grade without `at`, without failing the batch', async () => {
      const answer = await postGrade(app, {
        reference: { expr: 'x^2' },
        submissions: [{ id: 's', answers: { value: 1, forwardTrace: [{ id: 'v1', value: 1 }], derivative: { x: '2*x' } } }],
      });
      // The answers it cannot grade are failed tests saying why: the maximum counts every answer given.
      expect(answer.results[0]).toMatchObject({ gradable: false, score: 1, max_score: 3 });
      expect(answer.results[0]!.format_errors.map((e) => e.part)).toEqual(['value', 'forwardTrace']);
      expect(answer.results[0]!.format_errors[0]!.message).toContain('no point `at`');
    });
  });
});
