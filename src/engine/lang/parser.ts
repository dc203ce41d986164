// The parser: recursive descent over the precedence levels, lowest first.
//
//   comparison   < <= > >= == !=   left-assoc
//   additive     + -               left-assoc
//   multiplicative * / @           left-assoc
//   unary        - +               prefix (so -x^2 is -(x^2))
//   power        ^ **              right-assoc; the exponent is a unary (2^-1)
//   postfix      f(...)  X[...]  X.T
//   atom         number, name, None, ( expr ), [ list ]
//
// Left-assoc chains and statement lists are loops; recursion (parentheses, brackets, unary
// operators, exponents) is bounded by MAX_NESTING, so no input overflows the stack.

import { EngineError } from '../errors.js';
import type { SourceSpan } from '../errors.js';
import type { BinaryOp, Expr, IndexItem, Kwarg, Program, SliceIndexItem, Statement } from './ast.js';
import { Lexer, parseError, where } from './lexer.js';
import type { Token, TokenKind } from './lexer.js';

/** The deepest nesting of parentheses, brackets, unary operators and exponents a program may use. */
export const MAX_NESTING = 256;

const COMPARISON: ReadonlySet<TokenKind> = new Set(['<', '<=', '>', '>=', '==', '!=']);
const ADDITIVE: ReadonlySet<TokenKind> = new Set(['+', '-']);
const MULTIPLICATIVE: ReadonlySet<TokenKind> = new Set(['*', '/', '@']);
/** Tokens after which an expression must follow: named in "expected an expression after '+'". */
const OPERATORS: ReadonlySet<TokenKind> = new Set([...COMPARISON, ...ADDITIVE, ...MULTIPLICATIVE, '^', '**', '=', ',', ':', '(', '[']);

/** Parses a program; throws EngineError('parse_error') with the position of the first error. */
export function parseProgram(source: string): Program {
  const parser = new Parser(source);
  try {
    return parser.program();
  } catch (error) {
    if (error instanceof EngineError) throw error;
    // Only a stack overflow can land here (when called from an already deep stack).
    if (error instanceof RangeError) throw parser.tooDeep();
    throw error;
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'number':
      return `number '${token.text}'`;
    case 'name':
      return `name '${token.text}'`;
    case 'newline':
      return 'end of line';
    case 'eof':
      return 'end of input';
    default:
      return `'${token.text}'`;
  }
}

class Parser {
  private readonly lexer: Lexer;
  private readonly lookahead: Token[] = [];
  /** The last token consumed: spans end where it ends. */
  private previous: Token | undefined;
  private depth = 0;
  /** The ( and [ being parsed, innermost last: an input that ends early names the innermost. */
  private readonly openers: Token[] = [];

  constructor(source: string) {
    this.lexer = new Lexer(source);
  }

  program(): Program {
    const statements: Statement[] = [];
    for (;;) {
      while (this.at('newline') || this.at(';')) this.advance();
      if (this.at('eof')) break;
      statements.push(this.statement());
      const token = this.peek();
      if (token.kind === 'newline' || token.kind === ';' || token.kind === 'eof') continue;
      if (token.kind === ')' || token.kind === ']') {
        const opener = token.kind === ')' ? '(' : '[';
        throw parseError(`unexpected '${token.text}' at ${where(token)}: there is no '${opener}' to close`, token);
      }
      throw this.unexpected(token, "an operator, ';' or a new line");
    }
    const end = this.peek();
    const last = statements.at(-1);
    if (last === undefined) {
      throw parseError(`the program is empty (at ${where(end)}): write an expression, e.g. 'x^2'`, end);
    }
    if (last.kind !== 'expr') {
      throw parseError(
        `the program must end with an expression: the output (at ${where(end)} it ends with the assignment to ` +
          `'${last.name}'; add a last line such as '${last.name}')`,
        end,
      );
    }
    return { statements };
  }

  private statement(): Statement {
    const start = this.peek();
    if (start.kind === 'name' && this.peek(1).kind === '=') {
      this.advance();
      this.advance();
      const value = this.expression();
      return { kind: 'assign', name: start.text, nameSpan: spanOf(start), value, span: this.spanFrom(start) };
    }
    const value = this.expression();
    return { kind: 'expr', value, span: this.spanFrom(start) };
  }

  private expression(): Expr {
    return this.comparison();
  }

  private comparison(): Expr {
    return this.leftAssociative(COMPARISON, () => this.additive());
  }

  private additive(): Expr {
    return this.leftAssociative(ADDITIVE, () => this.multiplicative());
  }

  private multiplicative(): Expr {
    return this.leftAssociative(MULTIPLICATIVE, () => this.unary());
  }

  private leftAssociative(operators: ReadonlySet<TokenKind>, operand: () => Expr): Expr {
    const start = this.peek();
    let left = operand();
    while (operators.has(this.peek().kind)) {
      const op = this.advance().kind as BinaryOp;
      const right = operand();
      left = { kind: 'binary', op, left, right, span: this.spanFrom(start) };
    }
    return left;
  }

  private unary(): Expr {
    const token = this.peek();
    if (token.kind !== '-' && token.kind !== '+') return this.power();
    this.advance();
    this.enter(token);
    const operand = this.unary();
    this.leave();
    return { kind: 'unary', op: token.kind, operand, span: this.spanFrom(token) };
  }

  private power(): Expr {
    const start = this.peek();
    const base = this.postfix();
    if (!this.at('^') && !this.at('**')) return base;
    const op = this.advance();
    this.enter(op);
    const exponent = this.unary(); // right-assoc: 2^3^2 is 2^(3^2); 2^-1 is allowed
    this.leave();
    return { kind: 'binary', op: '^', left: base, right: exponent, span: this.spanFrom(start) };
  }

  private postfix(): Expr {
    const start = this.peek();
    let expr = this.atom();
    let callable = start.kind === 'name'; // a bare name, not parenthesised, not yet postfixed
    for (;;) {
      const token = this.peek();
      if (token.kind === '(') {
        if (!callable || expr.kind !== 'name') {
          throw parseError(`unexpected '(' at ${where(token)}: only a function name can be called, as in 'exp(x)'`, token);
        }
        expr = this.call(expr.name, spanOf(start));
      } else if (token.kind === '[') {
        this.advance();
        const items: IndexItem[] = [];
        if (this.at(']')) {
          throw parseError(`empty index at ${where(this.peek())}: write an index, a slice or None, as in 'X[0]' or 'X[:, None]'`, this.peek());
        }
        this.bracketed(token, ']', () => items.push(this.indexItem()));
        expr = { kind: 'index', operand: expr, items, span: this.spanFrom(start) };
      } else if (token.kind === '.') {
        this.advance();
        const name = this.peek();
        if (name.kind === 'name' && name.text === 'T') {
          this.advance();
          expr = { kind: 'attr', operand: expr, attr: 'T', span: this.spanFrom(start) };
        } else if (name.kind === 'name' || name.kind === 'None') {
          throw parseError(`unknown attribute '.${name.text}' at ${where(name)}: only '.T' (transpose) is supported`, name);
        } else {
          throw this.unexpected(name, "'T' after '.' (only '.T', the transpose, is supported)");
        }
      } else {
        return expr;
      }
      callable = false;
    }
  }

  private call(callee: string, calleeSpan: SourceSpan): Expr {
    const open = this.advance();
    const args: Expr[] = [];
    const kwargs: Kwarg[] = [];
    this.bracketed(open, ')', () => {
      const start = this.peek();
      if (start.kind === 'name' && this.peek(1).kind === '=') {
        if (kwargs.some((k) => k.name === start.text)) {
          throw parseError(`keyword argument '${start.text}' at ${where(start)} is given twice`, start);
        }
        this.advance();
        this.advance();
        const value = this.expression();
        kwargs.push({ name: start.text, value, span: this.spanFrom(start) });
        return;
      }
      const lastKeyword = kwargs.at(-1);
      if (lastKeyword !== undefined) {
        throw parseError(
          `positional argument at ${where(start)} after keyword argument '${lastKeyword.name}': put positional arguments first`,
          start,
        );
      }
      args.push(this.expression());
    });
    const span: SourceSpan = { ...calleeSpan, endOffset: this.previous!.endOffset };
    return { kind: 'call', callee, calleeSpan, args, kwargs, span };
  }

  private atom(): Expr {
    const token = this.peek();
    switch (token.kind) {
      case 'number':
        this.advance();
        return { kind: 'num', value: token.value, span: spanOf(token) };
      case 'name':
        this.advance();
        return { kind: 'name', name: token.text, span: spanOf(token) };
      case 'None':
        this.advance();
        return { kind: 'none', span: spanOf(token) };
      case '(': {
        this.advance();
        this.enter(token, true);
        if (this.at(')')) {
          throw parseError(`empty parentheses at ${where(token)}: expected an expression between '(' and ')'`, token);
        }
        const inner = this.expression();
        this.close(token, ')', "an operator or ')'");
        this.leave(true);
        return inner;
      }
      case '[': {
        this.advance();
        const items: Expr[] = [];
        this.bracketed(token, ']', () => items.push(this.expression()));
        return { kind: 'list', items, span: this.spanFrom(token) };
      }
      default:
        throw this.unexpected(token, 'an expression');
    }
  }

  /** One item of `X[...]`: an expression, a slice `start:stop:step`, or a bare `None`. */
  private indexItem(): IndexItem {
    const start = this.peek();
    if (start.kind === 'None' && (this.peek(1).kind === ',' || this.peek(1).kind === ']')) {
      this.advance();
      return { kind: 'none', span: spanOf(start) };
    }
    let first: Expr | undefined;
    if (!this.at(':')) {
      first = this.expression();
      if (!this.at(':')) return { kind: 'expr', value: first, span: this.spanFrom(start) };
    }
    this.advance(); // ':'
    const slice: SliceIndexItem = { kind: 'slice', span: spanOf(start) };
    if (first !== undefined) slice.start = first;
    if (!this.at(':') && !this.at(',') && !this.at(']')) slice.stop = this.expression();
    if (this.at(':')) {
      this.advance();
      if (!this.at(',') && !this.at(']')) slice.step = this.expression();
    }
    slice.span = this.spanFrom(start);
    return slice;
  }

  /**
   * The comma-separated items after `opener` (already consumed) up to `closer`, which it consumes.
   * Empty and trailing-comma forms are allowed: `f()`, `[]`, `[a, b,]`.
   */
  private bracketed(opener: Token, closer: ')' | ']', item: () => void): void {
    this.enter(opener, true);
    while (!this.at(closer)) {
      item();
      if (!this.at(',')) break;
      this.advance();
    }
    this.close(opener, closer, `an operator, ',' or '${closer}'`);
    this.leave(true);
  }

  private close(opener: Token, closer: ')' | ']', expected: string): void {
    const token = this.peek();
    if (token.kind === closer) {
      this.advance();
      return;
    }
    throw this.unexpected(token, `${expected} to close the '${opener.text}' at ${where(opener)}`);
  }

  private enter(token: Token, opener = false): void {
    if (++this.depth > MAX_NESTING) {
      throw parseError(
        `expression nested too deeply at ${where(token)}: more than ${MAX_NESTING} levels of parentheses, ` +
          'brackets, calls, unary operators or exponents',
        token,
      );
    }
    if (opener) this.openers.push(token);
  }

  private leave(opener = false): void {
    this.depth--;
    if (opener) this.openers.pop();
  }

  /** The error for `token` where `expected` should be, naming the real problem where it can. */
  private unexpected(token: Token, expected: string): EngineError {
    const opener = this.openers.at(-1);
    if (token.kind === 'eof' && opener !== undefined) {
      const closer = opener.kind === '(' ? ')' : ']';
      return parseError(`unclosed '${opener.text}' opened at ${where(opener)}: the input ends before its '${closer}'`, opener);
    }
    if (token.kind === '=') {
      return parseError(
        `unexpected '=' at ${where(token)}: '=' only assigns at the start of a statement ('name = expression') ` +
          "or names a keyword argument ('axis=0'); to compare, use '=='",
        token,
      );
    }
    const previous = this.previous;
    let message = `unexpected ${describe(token)} at ${where(token)}: expected ${expected}`;
    if (expected === 'an expression' && previous !== undefined && OPERATORS.has(previous.kind)) {
      message += ` after '${previous.text}'`;
      if (token.kind === 'newline') message += ' (to continue on the next line, wrap the expression in parentheses)';
    }
    return parseError(message, token);
  }

  /** The error for a stack overflow, at the token being looked at. */
  tooDeep(): EngineError {
    const token = this.lookahead[0] ?? this.previous;
    const position = token ?? { line: 1, column: 1 };
    return parseError(`expression nested too deeply at ${where(position)}`, position);
  }

  private peek(k = 0): Token {
    while (this.lookahead.length <= k) this.lookahead.push(this.lexer.next());
    return this.lookahead[k]!;
  }

  private at(kind: TokenKind): boolean {
    return this.peek().kind === kind;
  }

  private advance(): Token {
    const token = this.peek();
    this.lookahead.shift();
    this.previous = token;
    return token;
  }

  private spanFrom(start: Token): SourceSpan {
    return { line: start.line, column: start.column, offset: start.offset, endOffset: this.previous!.endOffset };
  }
}

function spanOf(token: Token): SourceSpan {
  return { line: token.line, column: token.column, offset: token.offset, endOffset: token.endOffset };
}
