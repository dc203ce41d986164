// Between mathjs nodes and the service's own syntax (docs/symbolic.md). Inside, formulas use
// internal names mathjs gives no meaning to (s3 for step 3's value, t3 its tangent, a3 its
// adjoint, F0 for an unspecified function, F0d1 for its first partial); out, they are written with
// the program's names: `text` in the expression language (printed by its own printer, so it parses
// back), `latex` for typesetting. Each direction is an explicit table per op.

import { ConstantNode, FunctionNode, OperatorNode, ParenthesisNode, SymbolNode, type MathNode } from 'mathjs';
import { EngineError, type SourceSpan } from '../../engine/errors.js';
import { printExpr, type Expr } from '../../engine/lang/index.js';
import { add, call, div, mul, neg, num, pow, sub, type M } from './rules.js';

const SPAN: SourceSpan = { line: 1, column: 1, offset: 0, endOffset: 0 };

/** mathjs operator (its `fn`) -> the language's binary operator. */
const BINARY_OPERATORS: ReadonlyMap<string, '+' | '-' | '*' | '/' | '^'> = new Map([
  ['add', '+'],
  ['subtract', '-'],
  ['multiply', '*'],
  ['divide', '/'],
  ['pow', '^'],
] as const);

/** The language's binary operator -> a mathjs node builder. */
const FROM_BINARY: ReadonlyMap<string, (a: M, b: M) => M> = new Map([
  ['+', add],
  ['-', sub],
  ['*', mul],
  ['/', div],
  ['^', pow],
  ['**', pow],
]);

/** Functions both sides know by the same name (mathjs's, or kept by it as unknown functions). */
const FUNCTIONS: ReadonlyMap<string, { latex: string }> = new Map([
  ['exp', { latex: '\\exp' }],
  ['log', { latex: '\\ln' }],
  ['log1p', { latex: '\\operatorname{log1p}' }],
  ['expm1', { latex: '\\operatorname{expm1}' }],
  ['sqrt', { latex: '' }],
  ['sin', { latex: '\\sin' }],
  ['cos', { latex: '\\cos' }],
  ['tan', { latex: '\\tan' }],
  ['asin', { latex: '\\arcsin' }],
  ['acos', { latex: '\\arccos' }],
  ['atan', { latex: '\\arctan' }],
  ['sinh', { latex: '\\sinh' }],
  ['cosh', { latex: '\\cosh' }],
  ['tanh', { latex: '\\tanh' }],
  ['sigmoid', { latex: '\\sigma' }],
  ['softplus', { latex: '\\operatorname{softplus}' }],
  ['abs', { latex: '' }],
  ['sign', { latex: '\\operatorname{sign}' }],
  ['atan2', { latex: '\\operatorname{atan2}' }],
  ['hypot', { latex: '\\operatorname{hypot}' }],
]);

export interface Spelling {
  text: string;
  latex: string;
}

/** A name in LaTeX: `x1` -> `x_{1}`, `W0` -> `W_{0}`, `loss` -> `\mathrm{loss}`, with an accent when given. */
export function latexName(name: string, accent?: 'dot' | 'bar'): string {
  const m = /^([A-Za-z]+)_?([0-9]+)$/.exec(name);
  const base = m ? m[1]! : name;
  const sub = m ? `_{${m[2]}}` : '';
  const letters = base.length === 1 ? base : `\\mathrm{${base.replaceAll('_', '\\_')}}`;
  return (accent ? `\\${accent}{${letters}}` : letters) + sub;
}

/** The names of one table: internal symbols and functions, and how each is written. */
export class Names {
  readonly symbols = new Map<string, Spelling>();
  readonly functions = new Map<string, { name: string; partial?: number; arity: number }>();
  private readonly unspecified = new Map<string, string>();

  step(k: number, id: string): void {
    this.symbols.set(`s${k}`, { text: id, latex: latexName(id) });
    this.symbols.set(`t${k}`, { text: `dot_${id}`, latex: latexName(id, 'dot') });
    this.symbols.set(`a${k}`, { text: `bar_${id}`, latex: latexName(id, 'bar') });
  }

  /** The internal name of the unspecified function `name` (registered on first use). */
  unspecifiedFunction(name: string): string {
    let internal = this.unspecified.get(name);
    if (internal === undefined) {
      internal = `F${this.unspecified.size}`;
      this.unspecified.set(name, internal);
      this.functions.set(internal, { name, arity: 0 });
    }
    return internal;
  }

  /** The internal name of ∂ᵢ of an unspecified function of `arity` arguments (i from 0). */
  partialOf(internal: string, i: number, arity: number): string {
    const f = this.functions.get(internal)!;
    f.arity = Math.max(f.arity, arity);
    const name = `${internal}d${i + 1}`;
    this.functions.set(name, { name: f.name, partial: i + 1, arity });
    return name;
  }

  /** How the derivative of an unspecified function is written in `text`: d_a, or d1_a, d2_a, ... */
  partialText(name: string, partial: number, arity: number): string {
    return arity === 1 ? `d_${name}` : `d${partial}_${name}`;
  }
}

/** A formula in the expression language, printed by the language's printer. */
export function toText(root: M, names: Names): string {
  return printExpr(toServiceExpr(root, names));
}

function unsupported(what: string): EngineError {
  return new EngineError('symbolic_unsupported', `internal: a simplified formula uses ${what}, which the expression language cannot write`);
}

/** mathjs -> the language's syntax tree. Recursion depth is bounded by the formula-size limit. */
export function toServiceExpr(node: M, names: Names): Expr {
  if (node instanceof ParenthesisNode) return toServiceExpr(node.content, names);
  if (node instanceof ConstantNode) {
    const value = Number(node.value);
    if (!Number.isFinite(value)) {
      // 1/0, -1/0, 0/0: what the language has for these.
      const numerator = Number.isNaN(value) ? 0 : 1;
      const inf: Expr = { kind: 'binary', op: '/', left: { kind: 'num', value: numerator, span: SPAN }, right: { kind: 'num', value: 0, span: SPAN }, span: SPAN };
      return value < 0 ? { kind: 'unary', op: '-', operand: inf, span: SPAN } : inf;
    }
    const magnitude: Expr = { kind: 'num', value: Math.abs(value), span: SPAN };
    return value < 0 || Object.is(value, -0) ? { kind: 'unary', op: '-', operand: magnitude, span: SPAN } : magnitude;
  }
  if (node instanceof SymbolNode) {
    const spelled = names.symbols.get(node.name);
    if (spelled === undefined) throw unsupported(`the symbol ${node.name}`);
    return { kind: 'name', name: spelled.text, span: SPAN };
  }
  if (node instanceof OperatorNode) {
    const args = node.args.map((a) => toServiceExpr(a, names));
    if (node.fn === 'unaryMinus') return { kind: 'unary', op: '-', operand: args[0]!, span: SPAN };
    if (node.fn === 'unaryPlus') return args[0]!;
    const op = BINARY_OPERATORS.get(node.fn);
    if (op === undefined || args.length < 2) throw unsupported(`the operator ${node.op}`);
    // mathjs may hold a sum or a product of several terms in one node: fold it left.
    return args.slice(1).reduce<Expr>((left, right) => ({ kind: 'binary', op, left, right, span: SPAN }), args[0]!);
  }
  if (node instanceof FunctionNode) {
    const args = node.args.map((a) => toServiceExpr(a, names));
    const internal = node.fn.name;
    const f = names.functions.get(internal);
    let callee: string;
    if (f !== undefined) callee = f.partial === undefined ? f.name : names.partialText(f.name, f.partial, f.arity);
    else if (FUNCTIONS.has(internal)) callee = internal;
    else throw unsupported(`the function ${internal}`);
    return { kind: 'call', callee, calleeSpan: SPAN, args, kwargs: [], span: SPAN };
  }
  throw unsupported(`a ${node.type}`);
}

/**
 * The language's syntax tree -> mathjs, names resolved by `name` (a formula's text read back, as
 * the tests do). Calls keep their names: built-ins, unspecified functions and their d_ partials.
 */
export function fromServiceExpr(expr: Expr, name: (n: string) => M): M {
  switch (expr.kind) {
    case 'num':
      return num(expr.value);
    case 'name':
      return name(expr.name);
    case 'unary':
      return expr.op === '-' ? neg(fromServiceExpr(expr.operand, name)) : fromServiceExpr(expr.operand, name);
    case 'binary': {
      const build = FROM_BINARY.get(expr.op);
      if (build === undefined) throw new EngineError('symbolic_unsupported', `the operator ${expr.op} has no symbolic form`);
      return build(fromServiceExpr(expr.left, name), fromServiceExpr(expr.right, name));
    }
    case 'call':
      return call(expr.callee, ...expr.args.map((a) => fromServiceExpr(a, name)));
    default:
      throw new EngineError('symbolic_unsupported', `${expr.kind} has no symbolic form`);
  }
}

/** A formula in LaTeX: mathjs's typesetting with the program's names and the functions' usual signs. */
export function toLatex(root: M, names: Names): string {
  // A leading space, as mathjs writes its own symbols: `\\cdot x`, never `\\cdotx`.
  const handler = (node: MathNode, options: object): string | undefined => {
    const own = latexOf(node, options);
    return own === undefined ? undefined : ` ${own}`;
  };
  const latexOf = (node: MathNode, options: object): string | undefined => {
    if (node instanceof SymbolNode) return names.symbols.get(node.name)?.latex;
    if (!(node instanceof FunctionNode)) return undefined;
    const args = node.args.map((a) => a.toTex(options)).join(', ');
    const internal = node.fn.name;
    const f = names.functions.get(internal);
    if (f !== undefined) {
      const fn = latexName(f.name);
      if (f.partial === undefined) return `${fn}\\left(${args}\\right)`;
      return f.arity === 1 ? `${fn}'\\left(${args}\\right)` : `\\partial_{${f.partial}} ${fn}\\left(${args}\\right)`;
    }
    if (internal === 'sqrt') return `\\sqrt{${args}}`;
    if (internal === 'abs') return `\\left|${args}\\right|`;
    const known = FUNCTIONS.get(internal);
    return known === undefined ? undefined : `${known.latex}\\left(${args}\\right)`;
  };
  return root.toTex({ handler, parenthesis: 'auto', implicit: 'show' } as never);
}
