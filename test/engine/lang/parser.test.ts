import { describe, expect, it } from 'vitest';
import { EngineError } from '../../../src/engine/errors.js';
import type { SourceSpan } from '../../../src/engine/errors.js';
import { MAX_NESTING, parseProgram, printExpr, printProgram, stripSpans } from '../../../src/engine/lang/index.js';
import type { Expr, IndexItem, Program, WithoutSpans } from '../../../src/engine/lang/index.js';

// Span-less trees to compare against: what `stripSpans(parse(...))` gives.
type E = WithoutSpans<Expr>;
type I = WithoutSpans<IndexItem>;
const num = (value: number): E => ({ kind: 'num', value });
const v = (name: string): E => ({ kind: 'name', name });
const none: E = { kind: 'none' };
const neg = (operand: E): E => ({ kind: 'unary', op: '-', operand });
const bin = (op: string, left: E, right: E): E => ({ kind: 'binary', op, left, right }) as E;
const call = (callee: string, args: E[], kwargs: { name: string; value: E }[] = []): E => ({ kind: 'call', callee, args, kwargs });
const list = (...items: E[]): E => ({ kind: 'list', items });
const T = (operand: E): E => ({ kind: 'attr', operand, attr: 'T' });
const index = (operand: E, ...items: I[]): E => ({ kind: 'index', operand, items });
const at = (value: E): I => ({ kind: 'expr', value });
const slice = (parts: { start?: E; stop?: E; step?: E }): I => ({ kind: 'slice', ...parts });
const newAxis: I = { kind: 'none' };

/** The output expression of a program. */
function parseExpr(source: string): Expr {
  return parseProgram(source).statements.at(-1)!.value;
}

const tree = (source: string): E => stripSpans(parseExpr(source));

/** The source text a span covers. */
const textOf = (source: string, span: SourceSpan): string => source.slice(span.offset, span.endOffset);

function parseFailure(source: string): EngineError {
  try {
    parseProgram(source);
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('parse_error');
    return error as EngineError;
  }
  throw new Error(`expected ${JSON.stringify(source)} not to parse`);
}

describe('precedence and associativity', () => {
  it.each<[string, E]>([
    ['-x^2', neg(bin('^', v('x'), num(2)))],
    ['2^3^2', bin('^', num(2), bin('^', num(3), num(2)))],
    ['2**3**2', bin('^', num(2), bin('^', num(3), num(2)))],
    ['2^-1', bin('^', num(2), neg(num(1)))],
    ['2^-x^2', bin('^', num(2), neg(bin('^', v('x'), num(2))))],
    ['(-x)^2', bin('^', neg(v('x')), num(2))],
    ['a @ b + c', bin('+', bin('@', v('a'), v('b')), v('c'))],
    ['a + b @ c', bin('+', v('a'), bin('@', v('b'), v('c')))],
    ['a < b + 1', bin('<', v('a'), bin('+', v('b'), num(1)))],
    ['a < b < c', bin('<', bin('<', v('a'), v('b')), v('c'))],
    ['a == b != c', bin('!=', bin('==', v('a'), v('b')), v('c'))],
    ['a - b - c', bin('-', bin('-', v('a'), v('b')), v('c'))],
    ['a / b * c', bin('*', bin('/', v('a'), v('b')), v('c'))],
    ['a * b @ c', bin('@', bin('*', v('a'), v('b')), v('c'))],
    ['a - -b', bin('-', v('a'), neg(v('b')))],
    ['a * -b', bin('*', v('a'), neg(v('b')))],
    ['- -x', neg(neg(v('x')))],
    ['+x', { kind: 'unary', op: '+', operand: v('x') }],
    ['-x.T', neg(T(v('x')))],
    ['x.T^2', bin('^', T(v('x')), num(2))],
    ['-X[0]^2', neg(bin('^', index(v('X'), at(num(0))), num(2)))],
    ['a <= b >= c', bin('>=', bin('<=', v('a'), v('b')), v('c'))],
    ['a > -b * c', bin('>', v('a'), bin('*', neg(v('b')), v('c')))],
  ])('%s', (source, expected) => {
    expect(tree(source)).toEqual(expected);
  });
});

describe('numbers', () => {
  it.each<[string, number]>([
    ['2', 2],
    ['1.5e-3', 1.5e-3],
    ['.5', 0.5],
    ['1.', 1],
    ['1e10', 1e10],
    ['1E+3', 1000],
    ['007', 7],
    ['1e-400', 0],
    ['1.7976931348623157e308', Number.MAX_VALUE],
    ['5e-324', 5e-324],
    ['0.1', 0.1],
  ])('%s', (source, value) => {
    expect(tree(source)).toEqual(num(value));
  });

  it('has no negative literals: -2 is a unary minus', () => {
    expect(tree('-2')).toEqual(neg(num(2)));
  });
});

describe('the constructs of the expression language', () => {
  it('parses the lecture program on one line with ;', () => {
    const program = parseProgram('x1 = x^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x4 + x5');
    expect(stripSpans(program)).toEqual({
      statements: [
        { kind: 'assign', name: 'x1', value: bin('^', v('x'), num(2)) },
        { kind: 'assign', name: 'x2', value: call('exp', [v('x1')]) },
        { kind: 'assign', name: 'x3', value: bin('+', v('x1'), v('x2')) },
        { kind: 'assign', name: 'x4', value: call('sqrt', [v('x3')]) },
        { kind: 'assign', name: 'x5', value: call('cos', [v('x3')]) },
        { kind: 'expr', value: bin('+', v('x4'), v('x5')) },
      ],
    });
  });

  it('parses the multi-line Gaussian-process program', () => {
    const source = [
      'D1 = (X[:, None, 0] - X[None, :, 0])^2',
      'D2 = (X[:, None, 1] - X[None, :, 1])^2',
      'K1 = exp(-D1 / (2 * l[0]^2))',
      'K2 = exp(-D2 / (2 * l[1]^2))',
      'y.T @ inv(K1 + K2) @ y',
    ].join('\n');
    const program = stripSpans(parseProgram(source));
    expect(program.statements.map((s) => s.kind)).toEqual(['assign', 'assign', 'assign', 'assign', 'expr']);
    const all = slice({});
    expect(program.statements[0]).toEqual({
      kind: 'assign',
      name: 'D1',
      value: bin('^', bin('-', index(v('X'), all, newAxis, at(num(0))), index(v('X'), newAxis, all, at(num(0)))), num(2)),
    });
    expect(program.statements[2]!.value).toEqual(
      call('exp', [bin('/', neg(v('D1')), bin('*', num(2), bin('^', index(v('l'), at(num(0))), num(2))))]),
    );
    expect(program.statements[4]!.value).toEqual(bin('@', bin('@', T(v('y')), call('inv', [bin('+', v('K1'), v('K2'))])), v('y')));
  });

  it('parses the lecture program with one assignment per line', () => {
    const program = parseProgram('x1 = W0 * x\nx2 = tanh(x1)\nx3 = W1 * x2\nx4 = x3 - y\nx5 = x4^2\nx5');
    expect(program.statements.map((s) => (s.kind === 'assign' ? s.name : printExpr(s.value)))).toEqual([
      'x1', 'x2', 'x3', 'x4', 'x5', 'x5',
    ]);
  });

  it('parses keyword arguments', () => {
    expect(tree('sum(x, axis=0, keepdims=True)')).toEqual(
      call('sum', [v('x')], [
        { name: 'axis', value: num(0) },
        { name: 'keepdims', value: v('True') },
      ]),
    );
    expect(tree('softmax(x, axis=-1)')).toEqual(call('softmax', [v('x')], [{ name: 'axis', value: neg(num(1)) }]));
  });

  it('parses list arguments and constant tensors', () => {
    expect(tree('stack([a, b], axis=0)')).toEqual(call('stack', [list(v('a'), v('b'))], [{ name: 'axis', value: num(0) }]));
    expect(tree('[[1, 0], [0, 1]]')).toEqual(list(list(num(1), num(0)), list(num(0), num(1))));
    expect(tree('[1, -2, 3]')).toEqual(list(num(1), neg(num(2)), num(3)));
    expect(tree('reshape(x, [2, 3])')).toEqual(call('reshape', [v('x'), list(num(2), num(3))]));
    expect(tree('[]')).toEqual(list());
    expect(tree('eye(3)')).toEqual(call('eye', [num(3)]));
    expect(tree('f()')).toEqual(call('f', []));
  });

  it('allows a trailing comma in calls, lists and indices', () => {
    expect(tree('f(a, b,)')).toEqual(call('f', [v('a'), v('b')]));
    expect(tree('[1, 2,]')).toEqual(list(num(1), num(2)));
    expect(tree('X[0,]')).toEqual(index(v('X'), at(num(0))));
  });

  it('parses NumPy basic indexing', () => {
    expect(tree('X[i]')).toEqual(index(v('X'), at(v('i'))));
    expect(tree('X[:, None, a]')).toEqual(index(v('X'), slice({}), newAxis, at(v('a'))));
    expect(tree('X[1:4:2, -1]')).toEqual(index(v('X'), slice({ start: num(1), stop: num(4), step: num(2) }), at(neg(num(1)))));
    expect(tree('X[::-1]')).toEqual(index(v('X'), slice({ step: neg(num(1)) })));
    expect(tree('X[1:]')).toEqual(index(v('X'), slice({ start: num(1) })));
    expect(tree('X[:3]')).toEqual(index(v('X'), slice({ stop: num(3) })));
    expect(tree('X[1::2]')).toEqual(index(v('X'), slice({ start: num(1), step: num(2) })));
    expect(tree('X[::]')).toEqual(index(v('X'), slice({})));
    expect(tree('X[n - 1:]')).toEqual(index(v('X'), slice({ start: bin('-', v('n'), num(1)) })));
    expect(tree('X[0][1]')).toEqual(index(index(v('X'), at(num(0))), at(num(1))));
    expect(tree('f(x)[0].T')).toEqual(T(index(call('f', [v('x')]), at(num(0)))));
  });

  it('parses None as an atom everywhere, but only a bare None item is a new axis', () => {
    expect(tree('X[None]')).toEqual(index(v('X'), newAxis));
    expect(tree('X[(None)]')).toEqual(index(v('X'), at(none)));
    expect(tree('X[None + 1]')).toEqual(index(v('X'), at(bin('+', none, num(1)))));
    expect(tree('X[None:]')).toEqual(index(v('X'), slice({ start: none })));
    expect(tree('None')).toEqual(none);
    expect(tree('f(None)')).toEqual(call('f', [none]));
  });

  it('treats pi, e, True and False as plain names', () => {
    expect(tree('pi * e + True - False')).toEqual(bin('-', bin('+', bin('*', v('pi'), v('e')), v('True')), v('False')));
    expect(tree('e^2')).toEqual(bin('^', v('e'), num(2)));
    expect(tree('Nonesuch')).toEqual(v('Nonesuch'));
  });

  it('parses transposes', () => {
    expect(tree('X.T')).toEqual(T(v('X')));
    expect(tree('X.T.T')).toEqual(T(T(v('X'))));
    expect(tree('(a + b).T')).toEqual(T(bin('+', v('a'), v('b'))));
    expect(tree('(2).T')).toEqual(T(num(2)));
    expect(tree('X . T')).toEqual(T(v('X')));
  });

  it('skips comments and blank lines, and accepts ; and trailing ;', () => {
    const source = '# the lecture example\n\n  a = x^2   # square\n\n;b = a + 1;; \n# done\nb;\n\n';
    expect(stripSpans(parseProgram(source))).toEqual({
      statements: [
        { kind: 'assign', name: 'a', value: bin('^', v('x'), num(2)) },
        { kind: 'assign', name: 'b', value: bin('+', v('a'), num(1)) },
        { kind: 'expr', value: v('b') },
      ],
    });
  });

  it('joins lines inside ( ) and [ ]', () => {
    expect(tree('f(a,\n  b)')).toEqual(call('f', [v('a'), v('b')]));
    expect(tree('(a\n+ b)')).toEqual(bin('+', v('a'), v('b')));
    expect(tree('[[1, 0],  # first row\n [0, 1]]')).toEqual(list(list(num(1), num(0)), list(num(0), num(1))));
    expect(tree('X[:,\nNone]')).toEqual(index(v('X'), slice({}), newAxis));
  });

  it('accepts \\r\\n and \\r line breaks, tabs and form feeds', () => {
    expect(parseProgram('a = 1\r\nb = 2\rc = 3\n\ta +\fb').statements).toHaveLength(4);
  });

  it('tells assignment from comparison', () => {
    const program = stripSpans(parseProgram('a == b'));
    expect(program.statements).toEqual([{ kind: 'expr', value: bin('==', v('a'), v('b')) }]);
    expect(stripSpans(parseProgram('a = b == c; a')).statements[0]).toEqual({
      kind: 'assign',
      name: 'a',
      value: bin('==', v('b'), v('c')),
    });
  });

  it('keeps statements in order and allows an unused expression statement', () => {
    expect(parseProgram('x; y').statements.map((s) => s.kind)).toEqual(['expr', 'expr']);
  });
});

describe('spans', () => {
  it('covers each node of the lecture output expression', () => {
    const source = 'y.T @ inv(K1 + K2) @ y';
    const output = parseExpr(source);
    expect(output.kind).toBe('binary');
    if (output.kind !== 'binary') return;
    expect(output.span).toEqual({ line: 1, column: 1, offset: 0, endOffset: source.length });
    const left = output.left;
    expect(textOf(source, left.span)).toBe('y.T @ inv(K1 + K2)');
    if (left.kind !== 'binary' || left.right.kind !== 'call') throw new Error('unexpected tree');
    const inv = left.right;
    expect(textOf(source, inv.span)).toBe('inv(K1 + K2)');
    expect(inv.calleeSpan).toEqual({ line: 1, column: 7, offset: 6, endOffset: 9 });
    expect(textOf(source, inv.args[0]!.span)).toBe('K1 + K2');
    expect(textOf(source, left.left.span)).toBe('y.T');
    expect(output.right.span).toEqual({ line: 1, column: 22, offset: 21, endOffset: 22 });
  });

  it('gives statements, names and keyword arguments their own spans, across lines', () => {
    const source = 'a = 1\n  b = sum(x,\n axis=0)\nb';
    const [a, b, output] = parseProgram(source).statements;
    expect(a!.span).toEqual({ line: 1, column: 1, offset: 0, endOffset: 5 });
    if (b!.kind !== 'assign') throw new Error('expected an assignment');
    expect(b!.nameSpan).toEqual({ line: 2, column: 3, offset: 8, endOffset: 9 });
    expect(textOf(source, b!.span)).toBe('b = sum(x,\n axis=0)');
    const sum = b!.value;
    if (sum.kind !== 'call') throw new Error('expected a call');
    expect(sum.kwargs[0]!.span).toEqual({ line: 3, column: 2, offset: 20, endOffset: 26 });
    expect(output!.span).toMatchObject({ line: 4, column: 1 });
  });

  it('includes the parentheses around operands, not around the node itself', () => {
    const source = '(a + b) * (c)';
    const product = parseExpr(source);
    expect(textOf(source, product.span)).toBe(source);
    if (product.kind !== 'binary') throw new Error('expected a binary node');
    expect(textOf(source, product.left.span)).toBe('a + b');
    expect(textOf(source, product.right.span)).toBe('c');
    expect(textOf('-(x)', parseExpr('-(x)').span)).toBe('-(x)');
    expect(textOf(source, parseProgram(source).statements[0]!.span)).toBe(source);
  });

  it('covers index items, slices and unary operators', () => {
    const source = 'X[1:4:2, -1, None]';
    const x = parseExpr(source);
    if (x.kind !== 'index') throw new Error('expected an index');
    expect(x.items.map((item) => textOf(source, item.span))).toEqual(['1:4:2', '-1', 'None']);
    expect(textOf(source, x.span)).toBe(source);
    const step = x.items[0]!;
    if (step.kind !== 'slice') throw new Error('expected a slice');
    expect(step.step!.span).toEqual({ line: 1, column: 7, offset: 6, endOffset: 7 });
  });

  it('counts columns after a tab as one character, like the error positions', () => {
    const x = parseExpr('\tx');
    expect(x.span).toEqual({ line: 1, column: 2, offset: 1, endOffset: 2 });
  });
});

describe('parse errors', () => {
  it.each<[string, string, string, number, number]>([
    ['an unclosed parenthesis', 'f(x, (1 + 2)', "unclosed '(' opened at line 1, column 2", 1, 2],
    ['an unclosed parenthesis across lines', 'a = 1\nb = (a +\n  2', "unclosed '(' opened at line 2, column 5", 2, 5],
    ['an unclosed bracket', 'X[0', "unclosed '[' opened at line 1, column 2", 1, 2],
    ['a trailing operator', 'x + 1 *', "unexpected end of input at line 1, column 8: expected an expression after '*'", 1, 8],
    ['an operator at the end of a line', 'x = a +\nb', "unexpected end of line at line 1, column 8: expected an expression after '+'", 1, 8],
    ['an unexpected closer', 'a = 1\nb = (a + ))', "unexpected ')' at line 2, column 10: expected an expression after '+'", 2, 10],
    ['a stray closer', 'x)', "unexpected ')' at line 1, column 2: there is no '(' to close", 1, 2],
    ['a mismatched closer', '(a]', "unexpected ']' at line 1, column 3: expected an operator or ')' to close the '(' at line 1, column 1", 1, 3],
    ['two expressions in a row', 'x y', "unexpected name 'y' at line 1, column 3: expected an operator, ';' or a new line", 1, 3],
    ['an attribute other than .T', 'X.foo', "unknown attribute '.foo' at line 1, column 3: only '.T' (transpose) is supported", 1, 3],
    ['a dot without a name', 'X.(1)', "unexpected '(' at line 1, column 3: expected 'T' after '.'", 1, 3],
    ['an unknown character', 'a = 1\nb = a $ 2', "unknown character '$' at line 2, column 7", 2, 7],
    ['a non-ASCII character', 'x × y', 'unknown character U+00D7 at line 1, column 3', 1, 3],
    ['a lone !', 'a ! b', "unknown character '!' at line 1, column 3: did you mean '!='?", 1, 3],
    ['an assignment with no value', 'x = ', "unexpected end of input at line 1, column 5: expected an expression after '='", 1, 5],
    ['an assignment with no value before a newline', 'x = \ny', "unexpected end of line at line 1, column 5: expected an expression after '='", 1, 5],
    ['a program ending in an assignment', 'x = 1\ny = x^2\n', 'the program must end with an expression: the output', 3, 1],
    ['a program ending in an assignment and ;', 'y = x^2;', 'the program must end with an expression: the output', 1, 9],
    ['a positional argument after a keyword one', 'sum(x, axis=0, y)', "positional argument at line 1, column 16 after keyword argument 'axis'", 1, 16],
    ['a repeated keyword argument', 'sum(x, axis=0, axis=1)', "keyword argument 'axis' at line 1, column 16 is given twice", 1, 16],
    ['an overflowing number', 'x * 1e999', "number '1e999' at line 1, column 5 is too large", 1, 5],
    ['a number running into a name', 'y = 2x', "invalid number '2x' at line 1, column 5", 1, 5],
    ['an empty program', '', 'the program is empty', 1, 1],
    ['a program of blanks and comments', '  \n# nothing\n ', 'the program is empty', 3, 2],
    ['assigning to an index', 'X[0] = 1', "unexpected '=' at line 1, column 6: '=' only assigns at the start of a statement", 1, 6],
    ['assigning to None', 'None = 1', "unexpected '=' at line 1, column 6", 1, 6],
    ['calling a call', 'f(x)(y)', "unexpected '(' at line 1, column 5: only a function name can be called", 1, 5],
    ['calling a parenthesised name', '(f)(y)', "unexpected '(' at line 1, column 4: only a function name can be called", 1, 4],
    ['an empty index', 'X[]', 'empty index at line 1, column 3', 1, 3],
    ['empty parentheses', '2 * ()', 'empty parentheses at line 1, column 5', 1, 5],
    ['a missing comma', 'f(a b)', "unexpected name 'b' at line 1, column 5: expected an operator, ',' or ')' to close the '(' at line 1, column 2", 1, 5],
    ['a statement break inside parentheses', 'f(a; b)', "unexpected ';' at line 1, column 4", 1, 4],
    ['a comparison chain with =', 'a = b = c', "unexpected '=' at line 1, column 7", 1, 7],
  ])('%s', (_, source, message, line, column) => {
    const error = parseFailure(source);
    expect(error.message).toContain(message);
    expect(error.position).toEqual({ line, column });
  });

  it('reports the first error in the source, even when a later one is a bad character', () => {
    expect(parseFailure('(a b) $').position).toEqual({ line: 1, column: 4 });
    expect(parseFailure('a $ (').message).toContain("unknown character '$'");
  });

  it(`allows ${MAX_NESTING} levels of nesting and refuses one more`, () => {
    const nested = (open: string, close: string, depth: number): string => open.repeat(depth) + 'x' + close.repeat(depth);
    for (const [open, close] of [['(', ')'], ['[', ']'], ['f(', ')'], ['-', ''], ['2^', ''], ['X[', ']'], ['-(', ')']] as const) {
      const levels = open === '-(' ? MAX_NESTING / 2 : MAX_NESTING;
      expect(() => parseProgram(nested(open, close, levels)), open).not.toThrow();
      const error = parseFailure(nested(open, close, levels + 1));
      expect(error.message).toContain(`more than ${MAX_NESTING} levels`);
      expect(error.position!.line).toBe(1);
    }
    const error = parseFailure('('.repeat(100_000));
    expect(error.message).toMatch(/^expression nested too deeply at line 1, column 257/);
    expect(error.position).toEqual({ line: 1, column: MAX_NESTING + 1 });
  });

  // How quickly is a benchmark's claim (bench/timing.ts): a clock here would break on a busy machine.
  it('parses a 100,000-character chain without recursion', () => {
    const terms = 50_000;
    const source = Array.from({ length: terms }, (_, i) => (i % 2 === 0 ? 'x' : 'y')).join('+');
    expect(source.length).toBeGreaterThan(99_000);
    const program = parseProgram(source);
    const printed = printProgram(program);
    const stripped = stripSpans(program);
    expect(printed).toBe(source.replaceAll('+', ' + '));
    // the tree is as deep as the chain is long: walk the left spine
    let depth = 0;
    let node: WithoutSpans<Expr> = stripped.statements[0]!.value;
    while (node.kind === 'binary') {
      node = node.left;
      depth++;
    }
    expect(depth).toBe(terms - 1);
    expect(parseProgram(Array(20_000).fill('x').join('\n')).statements).toHaveLength(20_000);
    expect(parseProgram('X' + '.T'.repeat(30_000)).statements).toHaveLength(1);
  });
});

describe('Program type', () => {
  it('is plain data', () => {
    const program: Program = parseProgram('x');
    expect(JSON.parse(JSON.stringify(program))).toEqual(program);
  });
});
