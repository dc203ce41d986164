// The pieces of `adjoint grade` and of the printing that need no process: the CSV reader (RFC 4180
// quoting, as spreadsheets export it), the columns-to-answers mapping, and how numbers and carets print.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv, readSubmissions } from '../../src/cli/answers.js';
import { sourceOf } from '../../src/cli/commands.js';
import { caretUnder, formatNumber, formatTensor } from '../../src/cli/print.js';

const scratch = mkdtempSync(join(tmpdir(), 'adjoint-cli-answers-'));
const file = (name: string, text: string) => {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
};

describe('the CSV reader', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks; CRLF and LF; skips blank lines', () => {
    const text = 'id,derivative.x\r\n"s,1","max(x, 0) + ""x"""\r\n\r\ns2,"x +\nx"\nlast,x';
    expect(parseCsv(text)).toEqual([
      ['id', 'derivative.x'],
      ['s,1', 'max(x, 0) + "x"'],
      ['s2', 'x +\nx'],
      ['last', 'x'],
    ]);
  });

  it('maps each column to its answer; an empty cell is no answer; a cell that is no number goes to the grader as text', () => {
    const path = file(
      'class.csv',
      '\uFEFFid,value,gradient.W,derivative.x,forwardTrace.x2.value,forwardTrace.x2.tangent,reverseTrace.x1,shapes.K1\n' +
        's1,0.5,"[[1,2],[3,4]]",2*x,0.964,0.141,NaN,"[4, 4]"\n' +
        's2,,,x,abc,,,\n',
    );
    expect(JSON.parse(JSON.stringify(readSubmissions(path)))).toEqual([
      {
        id: 's1',
        answers: {
          value: 0.5,
          gradient: { W: [[1, 2], [3, 4]] },
          derivative: { x: '2*x' },
          forwardTrace: [{ id: 'x2', value: 0.964, tangent: 0.141 }],
          reverseTrace: [{ id: 'x1', adjoint: 'NaN' }],
          shapes: { K1: [4, 4] },
        },
      },
      { id: 's2', answers: { derivative: { x: 'x' }, forwardTrace: [{ id: 'x2', value: 'abc' }] } },
    ]);
  });

  it('refuses a column that names no answer, naming it', () => {
    expect(() => readSubmissions(file('bad.csv', 'id,derivatve.x\ns1,x\n'))).toThrow(/column "derivatve.x" names no answer/);
  });

  it('reads JSON submissions as POST /grade takes them, bare or under "submissions"', () => {
    const submissions = [{ id: 1, answers: { derivative: 'cos(x)' } }];
    expect(readSubmissions(file('a.json', JSON.stringify(submissions)))).toEqual(submissions);
    expect(readSubmissions(file('b.json', JSON.stringify({ submissions })))).toEqual(submissions);
  });
});

describe('printing', () => {
  it('numbers: every digit by default (the float64 reads back), N significant digits when asked, non-finite by name', () => {
    for (const x of [0.1 + 0.2, -1.8740017049647133, 1e-300, 2 ** 60]) expect(Number(formatNumber(x))).toBe(x);
    expect(formatNumber(0.48999999999999994, 6)).toBe('0.49');
    expect(formatNumber(-1.8740017049647133, 4)).toBe('-1.874');
    expect([formatNumber('NaN'), formatNumber(Infinity, 3), formatNumber('-Infinity', 3)]).toEqual(['NaN', 'Infinity', '-Infinity']);
  });

  it('a matrix in rows with aligned columns; a vector on one line', () => {
    expect(formatTensor([[1, -2.5], ['NaN', 4]])).toBe('[[   1, -2.5],\n [ NaN,    4]]');
    expect(formatTensor([1, 'Infinity'])).toBe('[1, Infinity]');
  });

  it('the caret sits under the column, tabs kept', () => {
    expect(caretUnder('x = 1\n\ty = sin(x', { line: 2, column: 8 })).toBe('2 | \ty = sin(x\n  | \t      ^');
  });

  it("the caret goes under the field a problem's path names: a known mistake's formula, not the reference", () => {
    const request = { path: '/grade', body: { reference: { expr: 'x*x', feedback: [{ expr: 'x +', message: 'm' }] } }, source: 'x*x' };
    expect(sourceOf({ errors: [{ path: 'reference.feedback.0.expr', message: '' }] }, request)).toBe('x +');
    expect(sourceOf({ position: { line: 1, column: 3 } }, request)).toBe('x*x');
    expect(sourceOf({ errors: [{ path: 'reference.constructor', message: '' }] }, request)).toBe('x*x');
  });
});
