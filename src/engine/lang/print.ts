// The printer: canonical source for a tree, which parses back to the same tree (spans aside).
// It adds parentheses only where the precedence of the parser needs them, and prints numbers
// with String(), which round-trips every finite double. It iterates over an explicit work stack,
// so a chain of any length prints without overflowing the stack.

import type { BinaryOp, Expr, IndexItem, Program, Statement } from './ast.js';

/** Binding strength of a printed form: an operand weaker than its slot needs is parenthesised. */
const Precedence = {
  Any: 0,
  Comparison: 1,
  Additive: 2,
  Multiplicative: 3,
  Unary: 4,
  Power: 5,
  Postfix: 6,
  Atom: 7,
  /** Stronger than anything: forces parentheses (a number before `.T`, `None` as an index expression). */
  Always: 8,
} as const;
type Precedence = number;

const BINARY_PRECEDENCE: { [Op in BinaryOp]: Precedence } = {
  '<': Precedence.Comparison,
  '<=': Precedence.Comparison,
  '>': Precedence.Comparison,
  '>=': Precedence.Comparison,
  '==': Precedence.Comparison,
  '!=': Precedence.Comparison,
  '+': Precedence.Additive,
  '-': Precedence.Additive,
  '*': Precedence.Multiplicative,
  '/': Precedence.Multiplicative,
  '@': Precedence.Multiplicative,
  '^': Precedence.Power,
};

/** A pending piece of output: literal text, or an expression that needs at least `min` precedence. */
type Piece = string | { expr: Expr; min: Precedence };

export function printProgram(program: Program): string {
  return program.statements.map(printStatement).join('\n');
}

export function printStatement(statement: Statement): string {
  const value = printExpr(statement.value);
  return statement.kind === 'assign' ? `${statement.name} = ${value}` : value;
}

export function printExpr(expr: Expr): string {
  const out: string[] = [];
  const work: Piece[] = [{ expr, min: Precedence.Any }];
  const emit = (...pieces: Piece[]): void => {
    for (let i = pieces.length - 1; i >= 0; i--) work.push(pieces[i]!);
  };
  while (work.length > 0) {
    const piece = work.pop()!;
    if (typeof piece === 'string') {
      out.push(piece);
      continue;
    }
    const e = piece.expr;
    if (precedenceOf(e) < piece.min) {
      emit('(', { expr: e, min: Precedence.Any }, ')');
      continue;
    }
    switch (e.kind) {
      case 'num':
        out.push(printNumber(e.value));
        break;
      case 'name':
        out.push(e.name);
        break;
      case 'none':
        out.push('None');
        break;
      case 'list':
        emit('[', ...commaSeparated(e.items.map((item) => ({ expr: item, min: Precedence.Any }))), ']');
        break;
      case 'unary': {
        // -(-x) rather than --x: a nested sign is easier to read in parentheses
        const nestedSign = e.operand.kind === 'unary' || (e.operand.kind === 'num' && isNegative(e.operand.value));
        emit(e.op, { expr: e.operand, min: nestedSign ? Precedence.Always : Precedence.Unary });
        break;
      }
      case 'binary': {
        if (e.op === '^') {
          // the base is a postfix expression, the exponent a unary one (right-assoc: 2^3^2)
          emit({ expr: e.left, min: Precedence.Postfix }, '^', { expr: e.right, min: Precedence.Unary });
        } else {
          const level = BINARY_PRECEDENCE[e.op];
          emit({ expr: e.left, min: level }, ` ${e.op} `, { expr: e.right, min: level + 1 });
        }
        break;
      }
      case 'call': {
        const args: Piece[][] = e.args.map((arg) => [{ expr: arg, min: Precedence.Any }]);
        const kwargs: Piece[][] = e.kwargs.map((k) => [`${k.name}=`, { expr: k.value, min: Precedence.Any }]);
        emit(`${e.callee}(`, ...joinGroups([...args, ...kwargs]), ')');
        break;
      }
      case 'attr':
        // `2.T` would lex as the number `2.` followed by `T`
        emit({ expr: e.operand, min: e.operand.kind === 'num' ? Precedence.Always : Precedence.Postfix }, '.T');
        break;
      case 'index':
        emit({ expr: e.operand, min: Precedence.Postfix }, '[', ...joinGroups(e.items.map(indexItemPieces)), ']');
        break;
    }
  }
  return out.join('');
}

function indexItemPieces(item: IndexItem): Piece[] {
  switch (item.kind) {
    case 'none':
      return ['None'];
    case 'expr':
      // a bare `None` item is a new axis; a `None` expression item has to be written `(None)`
      return [{ expr: item.value, min: item.value.kind === 'none' ? Precedence.Always : Precedence.Any }];
    case 'slice': {
      const pieces: Piece[] = [];
      if (item.start) pieces.push({ expr: item.start, min: Precedence.Any });
      pieces.push(':');
      if (item.stop) pieces.push({ expr: item.stop, min: Precedence.Any });
      if (item.step) pieces.push(':', { expr: item.step, min: Precedence.Any });
      return pieces;
    }
  }
}

function commaSeparated(pieces: Piece[]): Piece[] {
  return joinGroups(pieces.map((piece) => [piece]));
}

function joinGroups(groups: Piece[][]): Piece[] {
  const out: Piece[] = [];
  groups.forEach((group, i) => {
    if (i > 0) out.push(', ');
    out.push(...group);
  });
  return out;
}

function precedenceOf(e: Expr): Precedence {
  switch (e.kind) {
    case 'num':
      return isNegative(e.value) ? Precedence.Unary : Precedence.Atom; // -2 prints (and reparses) as a unary minus
    case 'name':
    case 'none':
    case 'list':
      return Precedence.Atom;
    case 'call':
    case 'attr':
    case 'index':
      return Precedence.Postfix;
    case 'unary':
      return Precedence.Unary;
    case 'binary':
      return BINARY_PRECEDENCE[e.op];
  }
}

function isNegative(value: number): boolean {
  return value < 0 || Object.is(value, -0);
}

/**
 * Source for a number. The parser makes only finite non-negative values; the others (from trees
 * built by hand) print as expressions with the same IEEE value: -2 as `-2`, Infinity as `(1/0)`.
 */
function printNumber(value: number): string {
  if (Number.isNaN(value)) return '(0/0)';
  if (value === Infinity) return '(1/0)';
  if (value === -Infinity) return '(-1/0)';
  if (Object.is(value, -0)) return '-0';
  return String(value);
}
