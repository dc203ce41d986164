import { describe, expect, it } from 'vitest';
import type { SourceSpan } from '../../../src/engine/errors.js';
import { parseProgram, printExpr, printProgram, stripSpans } from '../../../src/engine/lang/index.js';
import type { Expr } from '../../../src/engine/lang/index.js';

const SPAN: SourceSpan = { line: 1, column: 1, offset: 0, endOffset: 0 };
const num = (value: number): Expr => ({ kind: 'num', value, span: SPAN });
const name = (n: string): Expr => ({ kind: 'name', name: n, span: SPAN });

const canonical = (source: string): string => printProgram(parseProgram(source));

describe('printProgram', () => {
  it.each<[string, string]>([
    ['x1 = x^2; x2 = exp(x1); x4 + x2;', 'x1 = x^2\nx2 = exp(x1)\nx4 + x2'],
    ['(a + b) * c', '(a + b) * c'],
    ['((a * b)) + c', 'a * b + c'],
    ['a - (b - c)', 'a - (b - c)'],
    ['(a - b) - c', 'a - b - c'],
    ['a / (b * c)', 'a / (b * c)'],
    ['(2^3)^2', '(2^3)^2'],
    ['2 ** (3 ** 2)', '2^3^2'],
    ['(-x)^2', '(-x)^2'],
    ['-(x^2)', '-x^2'],
    ['2^(-1)', '2^-1'],
    ['- - x', '-(-x)'],
    ['-(+x)', '-(+x)'],
    ['(a < b) < c', 'a < b < c'],
    ['a < (b < c)', 'a < (b < c)'],
    ['(a + b).T', '(a + b).T'],
    ['(2).T', '(2).T'],
    ['(-x)[0]', '(-x)[0]'],
    ['X[ : , None , (None) ]', 'X[:, None, (None)]'],
    ['X[1:4:2, -1]', 'X[1:4:2, -1]'],
    ['X[::]', 'X[:]'],
    ['X[::-1]', 'X[::-1]'],
    ['X[:n, 1::2]', 'X[:n, 1::2]'],
    ['sum( x , axis = 0, keepdims = True )', 'sum(x, axis=0, keepdims=True)'],
    ['stack([a,b],axis=0)', 'stack([a, b], axis=0)'],
    ['[[1,0],[0,1]]', '[[1, 0], [0, 1]]'],
    ['f(a == b)', 'f(a == b)'],
    ['1.50e-3 + 1E21 + .5 + 1.', '0.0015 + 1e+21 + 0.5 + 1'],
  ])('%s prints as %s', (source, printed) => {
    expect(canonical(source)).toBe(printed);
    expect(canonical(printed)).toBe(printed);
  });

  it('prints hand-built trees with negative and non-finite numbers as expressions of the same value', () => {
    expect(printExpr({ kind: 'binary', op: '^', left: num(-2), right: num(2), span: SPAN })).toBe('(-2)^2');
    expect(printExpr({ kind: 'unary', op: '-', operand: num(-2), span: SPAN })).toBe('-(-2)');
    expect(printExpr({ kind: 'binary', op: '-', left: name('a'), right: num(-0), span: SPAN })).toBe('a - -0');
    expect(printExpr({ kind: 'binary', op: '*', left: num(Infinity), right: num(NaN), span: SPAN })).toBe('(1/0) * (0/0)');
    expect(printExpr({ kind: 'attr', operand: num(-Infinity), attr: 'T', span: SPAN })).toBe('((-1/0)).T');
  });

  it('prints a parsed program so that it parses to the same tree', () => {
    const source = 'D1 = (X[:, None, 0] - X[None, :, 0])^2\nK1 = exp(-D1 / (2 * l[0]^2))\ny.T @ inv(K1) @ y';
    expect(printProgram(parseProgram(source))).toBe(source);
    expect(stripSpans(parseProgram(printProgram(parseProgram(source))))).toEqual(stripSpans(parseProgram(source)));
  });
});
