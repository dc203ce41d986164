// How the command line prints what it cannot print whole, and what it must not print raw: tensors
// of any size summarised as NumPy does (compared with NumPy's own text for the same arrays),
// iteratively (no stack overflow, no spread of a big array), count-first (an empty tensor with
// huge leading dimensions is described by its shape without a walk over its rows); and control
// characters from input or the service shown as escapes, never sent to the terminal.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPERATOR_FUNCTIONS } from '../../src/engine/ops/functions.js';
import { OPERATOR_SYMBOLS } from '../../src/cli/commands.js';
import { caretUnder, formatInline, formatProblem, formatTable, formatTensor, labelled, shapeOf, SUMMARY_THRESHOLD, summaryOf, type AnswerValue } from '../../src/cli/print.js';
import { visible } from '../../src/cli/terminal.js';
import { BASE64_THRESHOLD, encodeLarge, encodeRequest } from '../../src/cli/wire.js';

/** A nested array of `shape` whose element at (i, j, ...) is `f(i, j, ...)`. */
function tensor(shape: number[], f: (index: number[]) => number): AnswerValue {
  const build = (prefix: number[]): AnswerValue => (prefix.length === shape.length ? f(prefix) : Array.from({ length: shape[prefix.length]! }, (_, i) => build([...prefix, i])));
  return build([]);
}

describe('printing tensors of any size', () => {
  it('small tensors whole: rows aligned as NumPy aligns them, a vector on one line', () => {
    expect(formatTensor([[1, -2.5], ['NaN', 4]])).toBe('[[   1, -2.5],\n [ NaN,    4]]');
    expect(formatTensor([1, 'Infinity'])).toBe('[1, Infinity]');
    // 1000 elements is NumPy's threshold: still whole.
    const whole = tensor([10, 100], ([i, j]) => i! * 100 + j!);
    expect(summaryOf(whole)).toBeUndefined();
    expect(formatTensor(whole).split('\n')).toHaveLength(10);
    expect(formatTensor(whole)).not.toContain('...');
  });

  it("above 1000 elements: each long axis's first and last three, as numpy.array2string prints np.arange(2000).reshape(40, 50)", () => {
    expect(SUMMARY_THRESHOLD).toBe(1000);
    const a = tensor([40, 50], ([i, j]) => i! * 50 + j!);
    // >>> print(np.arange(2000).reshape(40, 50))
    expect(formatTensor(a)).toBe(
      [
        '[[   0,    1,    2, ...,   47,   48,   49],',
        ' [  50,   51,   52, ...,   97,   98,   99],',
        ' [ 100,  101,  102, ...,  147,  148,  149],',
        ' ...,',
        ' [1850, 1851, 1852, ..., 1897, 1898, 1899],',
        ' [1900, 1901, 1902, ..., 1947, 1948, 1949],',
        ' [1950, 1951, 1952, ..., 1997, 1998, 1999]]',
      ].join('\n'),
    );
    // A short axis stays whole; rank 3 puts a blank line between matrices, as NumPy does.
    const b = tensor([2, 3, 400], ([i, j, k]) => i! * 10000 + j! * 1000 + k!);
    expect(formatTensor(b)).toBe(
      [
        '[[[    0,     1,     2, ...,   397,   398,   399],',
        '  [ 1000,  1001,  1002, ...,  1397,  1398,  1399],',
        '  [ 2000,  2001,  2002, ...,  2397,  2398,  2399]],',
        '',
        ' [[10000, 10001, 10002, ..., 10397, 10398, 10399],',
        '  [11000, 11001, 11002, ..., 11397, 11398, 11399],',
        '  [12000, 12001, 12002, ..., 12397, 12398, 12399]]]',
      ].join('\n'),
    );
    expect(formatInline(tensor([2000], ([i]) => i!))).toBe('shape [2000] [0, 1, 2, ..., 1997, 1998, 1999]');
  });

  it('labelled: a summarised tensor says its shape first, on the label line', () => {
    const eye = tensor([1000, 1000], ([i, j]) => (i === j ? 1 : 0));
    const [line] = labelled([['value', eye]]);
    const [head, ...rows] = line!.split('\n');
    expect(head).toBe('value  shape [1000, 1000], 1000000 elements (summarised: --json or --out FILE for all of them)');
    expect(rows).toEqual(['  [[1, 0, 0, ..., 0, 0, 0],', '   [0, 1, 0, ..., 0, 0, 0],', '   [0, 0, 1, ..., 0, 0, 0],', '   ...,', '   [0, 0, 0, ..., 1, 0, 0],', '   [0, 0, 0, ..., 0, 1, 0],', '   [0, 0, 0, ..., 0, 0, 1]]']);
  });

  it('iterates: a nesting 200,000 deep prints (recursion would overflow the stack)', () => {
    let deep: AnswerValue = [7];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const text = formatTensor(deep);
    expect(text).toBe(`${'['.repeat(200_001)}7${']'.repeat(200_001)}`);
    expect(formatInline(deep)).toBe(text);
  });

  it('counts first: an empty tensor of shape [100000, 100000, 0] is described by its shape, its 10^10 rows never visited', () => {
    // Every row is the same empty array: a walk over the rows would take 10^10 steps (the test would time out).
    const row: AnswerValue[] = [];
    const middle = new Array<AnswerValue>(100_000).fill(row);
    const empty = new Array<AnswerValue>(100_000).fill(middle);
    expect(shapeOf(empty)).toEqual([100_000, 100_000, 0]);
    expect(formatTensor(empty)).toBe('[] (shape [100000, 100000, 0])');
    expect(formatInline(empty)).toBe('[] (shape [100000, 100000, 0])');
    expect(labelled([['value', empty]])).toEqual(['value  [] (shape [100000, 100000, 0])']);
    expect(formatTensor([])).toBe('[]');
  });

  it('a table of 200,000 rows (no spread of its widths into Math.max)', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => [`v${i}`, 'x']);
    const lines = formatTable(['step', 'op'], rows).split('\n');
    expect(lines).toHaveLength(200_002);
    expect(lines[1]).toBe('-------  --');
    expect(lines.at(-1)).toBe('v199999  x');
  });
});

describe('terminal safety', () => {
  it('control characters become visible escapes; line feeds and tabs stay', () => {
    expect(visible('a\u001b[2Jb')).toBe('a\\u001b[2Jb');
    expect(visible('\u001b]52;c;aGk=\u0007')).toBe('\\u001b]52;c;aGk=\\u0007');
    expect(visible('x\ry')).toBe('x\\u000dy');
    expect(visible('\u009b31m \u007f \u202e')).toBe('\\u009b31m \\u007f \\u202e');
    expect(visible('line 1\n\tline 2 ∂f/∂x')).toBe('line 1\n\tline 2 ∂f/∂x');
    // On JSON text: the same JSON value, made harmless.
    const json = JSON.stringify({ id: 'a\u009bb' });
    expect(JSON.parse(visible(json))).toEqual(JSON.parse(json));
    expect(visible(json)).not.toMatch(/[\u0080-\u009f]/);
  });

  it('the caret stays under its character when the line holds an escape sequence', () => {
    // Column 8 is the '+' (ESC [ 3 1 m x space +).
    const caret = caretUnder('\u001b[31mx + ', { line: 1, column: 8 })!;
    const [shown, under] = caret.split('\n');
    expect(shown).toBe('1 | \\u001b[31mx + ');
    expect(under!.indexOf('^')).toBe(shown!.indexOf('+'));
    expect(formatProblem({ code: 'parse_error', status: 400, detail: 'bad', position: { line: 1, column: 1 } }, '\u001b[2J')).not.toContain('\u001b');
  });
});

describe('large inputs travel as base64, as the clients send them', () => {
  it("the threshold is the TypeScript and Python clients' (4096 elements)", () => {
    const ts = readFileSync(new URL('../../clients/typescript/src/arrays.ts', import.meta.url), 'utf8');
    expect(Number(/export const BASE64_THRESHOLD = (\d+)/.exec(ts)?.[1])).toBe(BASE64_THRESHOLD);
    const py = readFileSync(new URL('../../clients/python/adjoint/_wire.py', import.meta.url), 'utf8');
    expect(py).toMatch(new RegExp(`\\b${BASE64_THRESHOLD}\\b`));
  });

  it('a nested array of 4096 elements or more becomes an EncodedArray of exactly its float64 values, row-major', () => {
    const x = tensor([64, 64], ([i, j]) => Math.sin(i! * 64 + j!) / 3);
    (x as AnswerValue[][])[1]![2] = 'NaN';
    (x as AnswerValue[][])[3]![4] = '-Infinity';
    const encoded = encodeLarge(x) as { dtype: string; shape: number[]; data: string };
    expect(encoded.dtype).toBe('float64');
    expect(encoded.shape).toEqual([64, 64]);
    const bytes = Buffer.from(encoded.data, 'base64');
    const decoded = Array.from({ length: 4096 }, (_, k) => bytes.readDoubleLE(8 * k));
    expect(decoded[1 * 64 + 2]).toBeNaN();
    expect(decoded[3 * 64 + 4]).toBe(-Infinity);
    expect(decoded[4095]).toBe(Math.sin(4095) / 3);
    expect(decoded[0]).toBe(0);
  });

  it('below the threshold, ragged, or not numbers: unchanged, for the service to read or refuse', () => {
    const small = tensor([4095], ([i]) => i!);
    expect(encodeLarge(small)).toBe(small);
    const ragged = [...Array.from({ length: 4095 }, () => [1, 2]), [1]];
    expect(encodeLarge(ragged)).toBe(ragged);
    const words = Array.from({ length: 5000 }, () => 'good');
    expect(encodeLarge(words)).toBe(words);
  });

  it('which fields: every input of at/tangents/vector and the cotangent; POST /probe: its one input', () => {
    const big = tensor([5000], ([i]) => i!);
    const body = encodeRequest({ expr: 'sum(x)', at: { x: big, y: 1 }, vector: { x: big }, cotangent: big, wrt: ['x'] }, { perInput: true });
    expect(body.at).toMatchObject({ x: { dtype: 'float64', shape: [5000] }, y: 1 });
    expect(body.vector).toMatchObject({ x: { shape: [5000] } });
    expect(body.cotangent).toMatchObject({ shape: [5000] });
    expect(body.wrt).toEqual(['x']);
    expect(encodeRequest({ target: { expr: 'sum(x)' }, at: big }, { perInput: false }).at).toMatchObject({ shape: [5000] });
  });
});

it("the operators' symbols are the expression language's own table", () => {
  expect(new Map([...OPERATOR_FUNCTIONS].map(([symbol, name]) => [name, symbol]))).toEqual(OPERATOR_SYMBOLS);
});
