// The lecture's exercises as grading cases (POST /grade): question 1's product rule, the forward
// table of section 5.1, the reverse table of section 5.3, the shapes of question 2a, and
// derivatives in equivalent forms, with a missing chain-rule factor, or that do not parse.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { FORWARD, forwardTable, failed, GP, LECTURE_DF, LECTURE_DF_NO_CHAIN, LECTURE_F, postGrade, REVERSE, reverseTable, test } from './helpers.js';

describe('POST /grade: the lecture exercises', () => {
  let app: App;
  beforeAll(async () => {
    app = buildTestApp();
    await app.ready();
  });
  afterAll(() => app.close());

  it('question 1: the product rule gives 2x for a = x, b = x, in any equivalent form', async () => {
    const answer = await postGrade(app, {
      reference: { expr: 'a = x\nb = x\na * b' },
      submissions: [
        { id: 'times', answers: { derivative: { x: '2*x' } } },
        { id: 'sum', answers: { derivative: { x: 'x + x' } } },
        { id: 'one-factor', answers: { derivative: { x: 'x' } } },
      ],
    });
    const [times, sum, oneFactor] = answer.results;
    expect(times).toMatchObject({ id: 'times', score: 1, max_score: 1, gradable: true });
    expect(sum).toMatchObject({ id: 'sum', score: 1, max_score: 1, gradable: true });
    expect(oneFactor).toMatchObject({ id: 'one-factor', score: 0, max_score: 1, gradable: true });
    const output = test(oneFactor!, 'derivative.x').output;
    expect(output).toMatch(/expected .*, your formula gives/);
    expect(output).toContain('0.5 times the right answer');
    // The points are echoed, and the feedback names one of them.
    expect(answer.points.x).toHaveLength(8);
    const [first] = answer.points.x!;
    expect(output).toContain(`x = ${Number((first!.x as number).toPrecision(6))}`);
  });

  it('section 5.1: the forward table, right (rounded as the notes print it) and with a slip in a middle row', async () => {
    const right = forwardTable().map((row) => ({ id: row.id, value: Number(row.value.toPrecision(3)), tangent: Number(row.tangent.toPrecision(3)) }));
    // The slip: x2's tangent without the chain factor d1 = 2, then every later tangent computed from it.
    const slip = forwardTable().map((row) => ({ ...row }));
    slip[1]!.tangent /= 2;
    slip[2]!.tangent = 1.2 * slip[1]!.tangent;
    slip[3]!.tangent = slip[2]!.tangent;
    slip[4]!.tangent = 2 * slip[3]!.value * slip[3]!.tangent;
    const answer = await postGrade(app, { reference: { expr: FORWARD.expr }, at: FORWARD.at, tangents: FORWARD.tangents, submissions: [{ id: 'right', answers: { forwardTrace: right } }, { id: 'slip', answers: { forwardTrace: slip } }] });
    const [r, s] = answer.results;
    expect(r).toMatchObject({ score: 10, max_score: 10, gradable: true });
    // One slip, charged once: x3..x5's tangents are right given the student's own x2.
    expect(s).toMatchObject({ score: 9, max_score: 10, gradable: true });
    expect(failed(s!).map((t) => t.part)).toEqual(['forwardTrace.x2.tangent']);
    expect(test(s!, 'forwardTrace.x2.tangent').output).toBe('Row x2, tangent: expected 0.141302, given 0.0706508.');
    for (const row of ['x3', 'x4', 'x5']) {
      const t = test(s!, `forwardTrace.${row}.tangent`);
      expect(t.status).toBe('passed');
      expect(t.output).toMatch(/Right given your own earlier numbers .*Error carried forward/);
    }
    expect(s!.output).toContain('the first wrong row is x2 (tangent): expected 0.141302, given 0.0706508');
    expect(s!.output).toContain('x3 tangent, x4 tangent, x5 tangent are right given your own earlier values (error carried forward)');
  });

  it('section 5.3: the reverse table, right and with a forgotten parent in a middle row', async () => {
    const answer = await postGrade(app, {
      reference: { expr: REVERSE.expr },
      at: REVERSE.at,
      submissions: [
        { id: 'right', answers: { reverseTrace: reverseTable() } },
        { id: 'slip', answers: { reverseTrace: reverseTable(true) } },
      ],
    });
    const [r, s] = answer.results;
    expect(r).toMatchObject({ score: 7, max_score: 7, gradable: true });
    expect(s).toMatchObject({ score: 6, max_score: 7 });
    expect(failed(s!).map((t) => t.part)).toEqual(['reverseTrace.x1.adjoint']);
    expect(test(s!, 'reverseTrace.x1.adjoint').output).toMatch(/^Row x1, adjoint: expected -1\.33857, given -0\.830058\. x1 is used by 2 steps \(x2, x3\)/);
    const carried = test(s!, 'reverseTrace.x.adjoint');
    expect(carried.status).toBe('passed');
    expect(carried.output).toContain('Right given your own adjoints of the steps that use x (x1 = -0.830058)');
    expect(s!.output).toBe('Reverse table: the first wrong row is x1: expected -1.33857, given -0.830058; x is right given your own adjoints of later steps (error carried forward).');
  });

  it("question 2a: the shapes of the Gaussian process's intermediates for N = 4", async () => {
    const shapes = { X: [4, 2], l: [2], y: [4], D1: [4, 4], D2: [4, 4], L1: [4, 4], L2: [4, 4], K1: [4, 4], K2: [4, 4], K: [4, 4], f: [] };
    const answer = await postGrade(app, {
      reference: { expr: GP.expr },
      at: GP.at,
      submissions: [
        { id: 'right', answers: { shapes } },
        { id: 'wrong', answers: { shapes: { ...shapes, D1: [4, 2], f: [1] } } },
      ],
    });
    const [r, w] = answer.results;
    expect(r).toMatchObject({ score: 11, max_score: 11, gradable: true });
    expect(w).toMatchObject({ score: 9, max_score: 11 });
    expect(test(w!, 'shapes.D1')).toMatchObject({ status: 'failed', output: 'D1: expected [4, 4], given [4, 2].' });
    expect(test(w!, 'shapes.f')).toMatchObject({ status: 'failed', output: 'f: expected [], given [1].' });
    expect(w!.output).toBe('Shapes: the first wrong one is D1: expected [4, 4], given [4, 2].');
  });

  it('derivatives of section 5.3 in equivalent forms get full marks; a missing chain-rule factor is failed with feedback', async () => {
    const forms = [
      LECTURE_DF,
      '2*x*(1 + exp(x^2)) * (0.5 / sqrt(x^2 + exp(x^2)) - sin(x^2 + exp(x^2)))',
      'u = x^2 + exp(x^2)\ndu = 2*x + 2*x*exp(x^2)\ndu / (2*u^0.5) - du * sin(u)',
      '(x + x*exp(x**2)) / sqrt(exp(x^2) + x^2) - 2*x*(1 + exp(x^2)) * sin(exp(x^2) + x^2)',
    ];
    const answer = await postGrade(app, {
      reference: { expr: LECTURE_F },
      submissions: [...forms.map((f, i) => ({ id: `form${i}`, answers: { derivative: { x: f } } })), { id: 'no-chain', answers: { derivative: { x: LECTURE_DF_NO_CHAIN } } }],
    });
    for (const r of answer.results.slice(0, forms.length)) expect(r, r.output).toMatchObject({ score: 1, max_score: 1, gradable: true });
    const noChain = answer.results.at(-1)!;
    expect(noChain).toMatchObject({ score: 0, max_score: 1, gradable: true });
    expect(test(noChain, 'derivative.x').output).toMatch(/^∂f\/∂x at point 1 of 8 \(x = -?[\d.]+\): expected -?[\d.e-]+, your formula gives -?[\d.e-]+\.$/);
  });

  it('a matching known mistake shows its message', async () => {
    const message = 'You forgot the chain rule: multiply by the derivative of x^2 + exp(x^2).';
    const answer = await postGrade(app, {
      reference: { expr: LECTURE_F, feedback: [{ expr: LECTURE_DF_NO_CHAIN, message }, { expr: '0', message: 'never shown' }] },
      at: { x: 0.7 },
      submissions: [
        { id: 'formula', answers: { derivative: { x: LECTURE_DF_NO_CHAIN } } },
        { id: 'number', answers: { gradient: { x: 1 / (2 * Math.sqrt(0.49 + Math.exp(0.49))) - Math.sin(0.49 + Math.exp(0.49)) } } },
        { id: 'right', answers: { derivative: { x: LECTURE_DF } } },
      ],
    });
    const [formula, number, right] = answer.results;
    expect(test(formula!, 'derivative.x')).toMatchObject({ status: 'failed' });
    expect(test(formula!, 'derivative.x').output).toContain(message);
    expect(test(formula!, 'derivative.x').output).not.toContain('never shown');
    expect(formula!.output).toContain(message);
    expect(test(number!, 'gradient.x')).toMatchObject({ status: 'failed' });
    expect(test(number!, 'gradient.x').output).toMatch(/^∂f\/∂x: expected -1\.874, given -0\.50851[0-9]*\. You forgot the chain rule/);
    expect(right).toMatchObject({ score: 1, max_score: 1 });
    expect(right!.output).not.toContain(message);
  });

  it('a formula that does not parse is not gradable, with the position, and the batch goes on', async () => {
    const answer = await postGrade(app, {
      reference: { expr: LECTURE_F },
      submissions: [
        { id: 'syntax', answers: { derivative: { x: '2*x*(1 + exp(x^2) * (0.5 / sqrt(x^2 + exp(x^2)))' } } },
        { id: 'unknown', answers: { derivative: { x: '2*x*cosh(y)' } } },
        { id: 'right', answers: { derivative: { x: LECTURE_DF } } },
      ],
    });
    const [syntax, unknown, right] = answer.results;
    // Not gradable, and out of the same maximum as the right answer: the part is a failed test saying why.
    expect(syntax).toMatchObject({ gradable: false, score: 0, max_score: 1, tests: [{ part: 'derivative.x', status: 'failed', output: expect.stringMatching(/^Not graded: /) }] });
    expect(syntax!.format_errors).toEqual([{ part: 'derivative.x', message: expect.stringContaining('cannot be read'), position: { line: 1, column: expect.any(Number) } }]);
    expect(syntax!.output).toMatch(/^Not graded: derivative\.x: the formula for ∂f\/∂x cannot be read: .*line 1, column \d+/);
    expect(unknown).toMatchObject({ gradable: false, format_errors: [{ part: 'derivative.x', position: { line: 1, column: 10 } }] });
    expect(unknown!.format_errors[0]!.message).toContain("unknown name 'y'");
    expect(right).toMatchObject({ gradable: true, score: 1, max_score: 1 });
  });

  it('references with restricted domains are checked only where they are defined', async () => {
    const answer = await postGrade(app, {
      reference: { expr: 'sqrt(x) + log(y)' },
      submissions: [
        { id: 'right', answers: { derivative: { x: '1 / (2*sqrt(x))', y: '1/y' } } },
        { id: 'powers', answers: { derivative: { x: '0.5 * x^-0.5', y: 'y^-1' } } },
        { id: 'wrong', answers: { derivative: { x: '1/sqrt(x)', y: 'log(y)' } } },
      ],
    });
    const [right, powers, wrong] = answer.results;
    expect(right).toMatchObject({ score: 2, max_score: 2, gradable: true });
    expect(powers).toMatchObject({ score: 2, max_score: 2, gradable: true });
    expect(wrong).toMatchObject({ score: 0, max_score: 2, gradable: true });
    for (const input of ['x', 'y']) {
      expect(answer.points[input]).toHaveLength(8);
      for (const point of answer.points[input]!) {
        expect(point.x).toBeGreaterThan(0);
        expect(point.y).toBeGreaterThan(0);
        expect(point.x).toBeLessThanOrEqual(2);
      }
    }
  });

  it('a part whose reference is defined at too few points is not gradable, not wrong', async () => {
    const answer = await postGrade(app, {
      reference: { expr: 'log(x - 1.99)' },
      submissions: [{ id: 's', answers: { derivative: { x: '1/(x - 1.99)' } } }],
    });
    const [s] = answer.results;
    expect(s).toMatchObject({ gradable: false, score: 0, max_score: 1, tests: [{ part: 'derivative.x', status: 'failed' }] });
    expect(s!.format_errors[0]!.message).toMatch(/defined at only \d+ of 160 points drawn from x in \[-2, 2\].*set `ranges`/);
    // With a range where it is defined, the same answer is right.
    const ranged = await postGrade(app, {
      reference: { expr: 'log(x - 1.99)' },
      ranges: { x: [2, 5] },
      submissions: [{ id: 's', answers: { derivative: { x: '1/(x - 1.99)' } } }],
    });
    expect(ranged.results[0]).toMatchObject({ gradable: true, score: 1, max_score: 1 });
    expect(ranged.settings.ranges).toEqual({ x: [2, 5] });
  });

  it('gives the same answer to the same request', async () => {
    const body = {
      reference: { expr: LECTURE_F },
      at: { x: 0.7 },
      seed: 42,
      submissions: [
        { id: 'a', answers: { derivative: { x: LECTURE_DF_NO_CHAIN }, value: 0.93, forwardTrace: [{ id: 'v1', value: 0.49 }] } },
        { id: 'b', answers: { derivative: { x: 'x +' } } },
      ],
    };
    const first = await app.inject({ method: 'POST', url: '/grade', payload: body });
    const second = await app.inject({ method: 'POST', url: '/grade', payload: body });
    expect(second.body).toBe(first.body);
    // Another seed moves the points; the verdicts stay.
    const reseeded = await postGrade(app, { ...body, seed: 43 });
    const original = first.json() as typeof reseeded;
    expect(reseeded.points.x).not.toEqual(original.points.x);
    expect(reseeded.results.map((r) => [r.score, r.gradable])).toEqual(original.results.map((r) => [r.score, r.gradable]));
  });

  it('grades a class of 300 in one request in reasonable time', async () => {
    const answers = [
      { derivative: { x: LECTURE_DF } },
      { derivative: { x: LECTURE_DF_NO_CHAIN } },
      { derivative: { x: 'cos(x +' } },
      { derivative: { x: '2*x*(1 + exp(x^2)) * (0.5 / sqrt(x^2 + exp(x^2)) - sin(x^2 + exp(x^2)))' }, reverseTrace: reverseTable(true) },
    ];
    // Every formula spelled a little differently, as a class writes them.
    const submissions = Array.from({ length: 300 }, (_, k) => {
      const a = answers[k % answers.length]!;
      return { id: `student-${k}`, answers: { ...a, derivative: { x: `${a.derivative.x}${' '.repeat(k % 5)}` } } };
    });
    const started = performance.now();
    const answer = await postGrade(app, { reference: { expr: REVERSE.expr }, at: REVERSE.at, submissions });
    // Did not hang (a bound generous on a loaded machine); how fast is timed in bench/timing.ts.
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(answer.results).toHaveLength(300);
    expect(answer.results.map((r) => r.id)).toEqual(submissions.map((s) => s.id));
    expect(answer.results.filter((r) => r.gradable && r.score === r.max_score)).toHaveLength(75);
    expect(answer.results.filter((r) => !r.gradable)).toHaveLength(75);
    expect(answer.results[3]).toMatchObject({ score: 7, max_score: 8 });
  });
});
