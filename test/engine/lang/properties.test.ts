import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../../src/engine/errors.js';
import type { SourceSpan } from '../../../src/engine/errors.js';
import { BINARY_OPS, parseProgram, printExpr, printProgram, stripSpans } from '../../../src/engine/lang/index.js';
import type { Expr, IndexItem, Kwarg, Program, Statement } from '../../../src/engine/lang/index.js';

// Generated trees carry this span; comparisons strip spans.
const SPAN: SourceSpan = { line: 1, column: 1, offset: 0, endOffset: 0 };

const identifier = fc
  .oneof(
    fc.constantFrom('x', 'X', 'y', 'W0', 'pi', 'e', 'E', 'True', 'False', 'T', '_', 'sum', 'axis', 'Nonesuch', 'e10'),
    fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,5}$/),
  )
  .filter((name) => name !== 'None');

const literal = fc
  .oneof(
    fc.nat({ max: 1000 }),
    fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(0, 0.5, 0.1, 1e-7, 1e21, 1e300, 5e-324, 2.2250738585072014e-308, Number.MAX_VALUE, 123456789012345680000),
  )
  .filter((value) => !Object.is(value, -0));

const leaf: fc.Arbitrary<Expr> = fc.oneof(
  literal.map((value): Expr => ({ kind: 'num', value, span: SPAN })),
  identifier.map((name): Expr => ({ kind: 'name', name, span: SPAN })),
  fc.constant<Expr>({ kind: 'none', span: SPAN }),
);

function indexItem(sub: fc.Arbitrary<Expr>): fc.Arbitrary<IndexItem> {
  const part = fc.option(sub, { nil: undefined });
  return fc.oneof(
    sub.map((value): IndexItem => ({ kind: 'expr', value, span: SPAN })),
    fc.constant<IndexItem>({ kind: 'none', span: SPAN }),
    fc.record({ start: part, stop: part, step: part }).map(({ start, stop, step }): IndexItem => {
      const slice: IndexItem = { kind: 'slice', span: SPAN };
      if (start) slice.start = start;
      if (stop) slice.stop = stop;
      if (step) slice.step = step;
      return slice;
    }),
  );
}

/** Expressions of every kind, at most `depth` levels deep. */
function expression(depth: number): fc.Arbitrary<Expr> {
  if (depth === 0) return leaf;
  const sub = expression(depth - 1);
  const kwarg = fc.record({ name: identifier, value: sub }).map((k): Kwarg => ({ ...k, span: SPAN }));
  return fc.oneof(
    { arbitrary: leaf, weight: 3 },
    {
      arbitrary: fc
        .tuple(fc.constantFrom('-' as const, '+' as const), sub)
        .map(([op, operand]): Expr => ({ kind: 'unary', op, operand, span: SPAN })),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...BINARY_OPS), sub, sub)
        .map(([op, left, right]): Expr => ({ kind: 'binary', op, left, right, span: SPAN })),
      weight: 5,
    },
    {
      arbitrary: fc
        .tuple(identifier, fc.array(sub, { maxLength: 3 }), fc.uniqueArray(kwarg, { maxLength: 2, selector: (k) => k.name }))
        .map(([callee, args, kwargs]): Expr => ({ kind: 'call', callee, calleeSpan: SPAN, args, kwargs, span: SPAN })),
      weight: 2,
    },
    { arbitrary: fc.array(sub, { maxLength: 3 }).map((items): Expr => ({ kind: 'list', items, span: SPAN })), weight: 1 },
    { arbitrary: sub.map((operand): Expr => ({ kind: 'attr', operand, attr: 'T', span: SPAN })), weight: 1 },
    {
      arbitrary: fc
        .tuple(sub, fc.array(indexItem(sub), { minLength: 1, maxLength: 3 }))
        .map(([operand, items]): Expr => ({ kind: 'index', operand, items, span: SPAN })),
      weight: 2,
    },
  );
}

const expr = expression(4);

const program: fc.Arbitrary<Program> = fc
  .tuple(
    fc.array(
      fc.oneof(
        fc.tuple(identifier, expr).map(([name, value]): Statement => ({ kind: 'assign', name, nameSpan: SPAN, value, span: SPAN })),
        expr.map((value): Statement => ({ kind: 'expr', value, span: SPAN })),
      ),
      { maxLength: 3 },
    ),
    expr,
  )
  .map(([statements, output]) => ({ statements: [...statements, { kind: 'expr', value: output, span: SPAN }] }));

/** Snippets of the language (and near misses) that random concatenation turns into tricky programs. */
const tokenSoup = fc
  .array(
    fc.constantFrom(
      'x', 'X', 'y1', 'exp', 'sum', 'None', 'T', 'e', 'pi', '2', '1.5e-3', '.5', '1.', '1e999', '0', '1e',
      '+', '-', '*', '/', '^', '**', '@', '<', '<=', '>', '>=', '==', '!=', '=', '!',
      '(', ')', '[', ']', ',', ':', '.', '.T', '.foo', ';', ' ', '  ', '\t', '\n', '\r\n', '\r', '# note\n',
      'axis=', 'keepdims=True', '$', '\\', 'é', '😀', '\u00a0', '"', "'",
    ),
    { maxLength: 40 },
  )
  .map((tokens) => tokens.join(''));

const anySource = fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 30 }), tokenSoup);

/** Every node and index item of a program, without recursion. */
function* nodes(program: Program): Generator<{ span: SourceSpan }> {
  const stack: { span: SourceSpan }[] = [...program.statements];
  while (stack.length > 0) {
    const node = stack.pop()!;
    yield node;
    for (const value of Object.values(node)) {
      for (const child of Array.isArray(value) ? value : [value]) {
        if (child !== null && typeof child === 'object' && 'span' in child) stack.push(child as { span: SourceSpan });
      }
    }
  }
}

const linesOf = (source: string): string[] => source.split(/\r\n|\r|\n/);

/** The 1-based line and column of an offset, breaking lines as the lexer does. */
function positionOf(source: string, offset: number): { line: number; column: number } {
  const before = linesOf(source.slice(0, offset));
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

describe('the parser on any input', () => {
  it('parses, or throws a parse_error whose position lies within the source', () => {
    fc.assert(
      fc.property(anySource, (source) => {
        let parsed: Program;
        try {
          parsed = parseProgram(source);
        } catch (error) {
          expect(error).toBeInstanceOf(EngineError);
          const { code, position, message } = error as EngineError;
          expect(code).toBe('parse_error');
          const lines = linesOf(source);
          expect(position!.line).toBeGreaterThanOrEqual(1);
          expect(position!.line).toBeLessThanOrEqual(lines.length);
          expect(position!.column).toBeGreaterThanOrEqual(1);
          expect(position!.column).toBeLessThanOrEqual(lines[position!.line - 1]!.length + 1);
          expect(message).toContain(`line ${position!.line}, column ${position!.column}`);
          return;
        }
        expect(parsed.statements.at(-1)!.kind).toBe('expr');
        // spans agree with the source: offsets in range, line and column where the offset is
        for (const node of nodes(parsed)) {
          const { offset, endOffset, line, column } = node.span;
          expect(0 <= offset && offset < endOffset && endOffset <= source.length).toBe(true);
          expect({ line, column }).toEqual(positionOf(source, offset));
        }
        // what parses, prints to a fixed point that means the same
        const printed = printProgram(parsed);
        expect(stripSpans(parseProgram(printed))).toEqual(stripSpans(parsed));
        expect(printProgram(parseProgram(printed))).toBe(printed);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('printing', () => {
  it('round-trips any tree: parse(print(tree)) is the tree, and printing is idempotent', () => {
    fc.assert(
      fc.property(program, (tree) => {
        const printed = printProgram(tree);
        const reparsed = parseProgram(printed);
        expect(stripSpans(reparsed)).toEqual(stripSpans(tree));
        expect(printProgram(reparsed)).toBe(printed);
      }),
      { numRuns: 1_000 },
    );
  });

  it('round-trips any expression on its own', () => {
    fc.assert(
      fc.property(expr, (tree) => {
        const printed = printExpr(tree);
        const reparsed = parseProgram(printed).statements;
        expect(reparsed).toHaveLength(1);
        expect(stripSpans(reparsed[0]!.value)).toEqual(stripSpans(tree));
      }),
      { numRuns: 1_000 },
    );
  });

  it('prints every finite double so it parses back to the same double', () => {
    fc.assert(
      fc.property(literal, (value) => {
        const parsed = parseProgram(printExpr({ kind: 'num', value, span: SPAN })).statements[0]!.value;
        expect(parsed.kind === 'num' && Object.is(parsed.value, value)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});
