// Behind the body parser: `__proto__` as a JSON key never reaches the grader over HTTP (the parser
// refuses it), but a request built otherwise — or the one-input shorthand, which makes the input's
// name a key — must still treat it as a key like any other. The grader and the trace are called
// directly here with objects that hold `__proto__` (and the other Object.prototype names) as own keys.

import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { trace } from '../../src/explain/trace.js';
import { readAnswers } from '../../src/grade/answers.js';
import { grade } from '../../src/grade/grade.js';
import type { GradeRequest, GradeResult } from '../../src/grade/types.js';

const NAMES = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__'])];
const LIMITS = { maxSubmissions: 100, maxFlops: 1e9 };

/** An object with these own keys (`__proto__` included: Object.fromEntries defines, never sets). */
const keyed = <T>(...entries: [string, T][]): Record<string, T> => Object.fromEntries(entries);

function results(request: GradeRequest): GradeResult[] {
  return grade(new Engine(), request, LIMITS).results as GradeResult[];
}

describe.each(NAMES)('the name %s', (name) => {
  it('as an answers key, is no kind of answer', () => {
    const { answers, errors } = readAnswers(keyed([name, 1], ['value', 2]));
    expect(answers).toEqual({ value: 2 });
    expect(errors).toEqual([{ part: name, message: expect.stringContaining(`'${name}' is not a kind of answer`) }]);
  });

  it('as a key of a per-name answer, is kept as given (never dropped, never read from Object.prototype)', () => {
    const { answers, errors } = readAnswers({ gradient: keyed([name, 2]), derivative: keyed([name, '2*x']), shapes: keyed([name, [3]]) });
    expect(errors).toEqual([]);
    for (const [kind, value] of [
      ['gradient', 2],
      ['derivative', '2*x'],
      ['shapes', [3]],
    ] as const) {
      const read = answers[kind] as Record<string, unknown>;
      expect(Object.keys(read)).toEqual([name]);
      expect(Object.hasOwn(read, name) && read[name]).toEqual(value);
    }
    expect(Object.hasOwn(readAnswers({ gradient: { x: 1 } }).answers.gradient!, name)).toBe(false);
    const bad = readAnswers({ derivative: keyed([name, ['2*x']]) });
    expect(bad.errors).toEqual([{ part: `derivative.${name}`, message: 'a derivative must be a formula (a string)' }]);
  });

  it('as the reference`s input, is graded like any other input', () => {
    const at = keyed([name, 3], ['x', 2]);
    const reference = { expr: `${name}^2 * x` };
    const answers = { gradient: keyed([name, 12], ['x', 9]), derivative: keyed([name, `2*${name}*x`], ['x', `${name}^2`]) };
    const [right, partial] = results({
      reference,
      at,
      ranges: keyed<[number, number]>([name, [1, 2]]),
      required: ['gradient', 'derivative'],
      submissions: [{ answers }, { answers: { gradient: { x: 9 } } }],
    });
    expect(right).toMatchObject({ gradable: true, score: 4, max_score: 4 });
    expect(partial).toMatchObject({ gradable: true, score: 1, max_score: 4 });
    const answer = grade(new Engine(), { reference, at, ranges: keyed<[number, number]>([name, [1, 2]]), submissions: [{ answers }] }, LIMITS);
    expect(Object.keys(answer.points).sort()).toEqual([name, 'x'].sort());
    expect(Object.hasOwn(answer.settings.ranges, name) && answer.settings.ranges[name]).toEqual([1, 2]);
    // The one-input shorthand makes the name a key.
    const [alone] = results({ reference: { expr: `${name}^2` }, submissions: [{ answers: { derivative: `2*${name}` } }] });
    expect(alone).toMatchObject({ gradable: true, score: 1, max_score: 1 });
  });

  it('in the format PrairieLearn reads, is a part like any other', () => {
    const answer = grade(new Engine(), { reference: { expr: 'x^2' }, at: { x: 1 }, format: 'prairielearn', submissions: [{ answers: keyed([name, 1], ['value', 1]) }] }, LIMITS);
    const [result] = answer.results as { format_errors: string[] }[];
    expect(result!.format_errors).toHaveLength(1);
    expect(result!.format_errors[0]!.startsWith(`${name}: '${name}' is not a kind of answer`), result!.format_errors[0]).toBe(true);
  });

  it('as an input of a trace, is seeded by `tangents` only where they give it', () => {
    const traced = trace(new Engine(), { expr: `${name} * x`, at: keyed([name, 3], ['x', 2]), mode: 'forward', tangents: { x: 1 } });
    expect(Object.keys(traced.seeds.tangents!)).toEqual([name, 'x']);
    expect(Object.hasOwn(traced.seeds.tangents!, name) && traced.seeds.tangents![name]).toBe(0);
    expect(traced.steps.map((s) => s.id)).toEqual([name, 'x', 'v1']);
    expect(traced.steps.at(-1)).toMatchObject({ value: 6, tangent: 3 });
  });
});
