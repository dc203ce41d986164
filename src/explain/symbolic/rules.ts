// The symbolic rules (docs/symbolic.md): one row per scalar op, its value and its local partials
// ∂(step)/∂(argument i) as mathjs nodes built from the arguments' symbols. The forward recipe is
// Σᵢ partialᵢ · (tangent of argument i); the reverse recipe, for each argument, Σ over the steps
// that use it of (their adjoint) · partial. Ops without a rule are listed in UNSUPPORTED with why.

import { ConstantNode, FunctionNode, OperatorNode, SymbolNode, type MathNode } from 'mathjs';

export type M = MathNode;

export const num = (value: number): M => new ConstantNode(value);
const op = (symbol: string, fn: string, args: M[]): M => new OperatorNode(symbol as never, fn as never, args);
export const add = (a: M, b: M): M => op('+', 'add', [a, b]);
export const sub = (a: M, b: M): M => op('-', 'subtract', [a, b]);
export const mul = (a: M, b: M): M => op('*', 'multiply', [a, b]);
export const div = (a: M, b: M): M => op('/', 'divide', [a, b]);
export const pow = (a: M, b: M): M => op('^', 'pow', [a, b]);
export const neg = (a: M): M => op('-', 'unaryMinus', [a]);
export const call = (name: string, ...args: M[]): M => new FunctionNode(new SymbolNode(name), args);

const one = num(1);
const two = num(2);
const square = (a: M): M => pow(a, two);

export interface SymbolicRule {
  /** The step's value from its arguments. */
  value: (args: readonly M[]) => M;
  /** ∂(step)/∂(argument i), one per argument. */
  partials: (args: readonly M[]) => M[];
}

const unary = (f: string, partial: (x: M) => M): SymbolicRule => ({ value: ([x]) => call(f, x!), partials: ([x]) => [partial(x!)] });

/** Keyed by the op as a trace names it (`rowOp`): the primitive, or the function as written. */
export const RULES: ReadonlyMap<string, SymbolicRule> = new Map<string, SymbolicRule>([
  ['neg', { value: ([x]) => neg(x!), partials: () => [num(-1)] }],
  ['abs', unary('abs', (x) => call('sign', x))], // d|x| = sign(x) dx (0 at 0, as the engine)
  ['sign', unary('sign', () => num(0))],
  ['exp', unary('exp', (x) => call('exp', x))],
  ['log', unary('log', (x) => div(one, x))],
  ['log1p', unary('log1p', (x) => div(one, add(one, x)))],
  ['expm1', unary('expm1', (x) => call('exp', x))],
  ['sqrt', unary('sqrt', (x) => div(one, mul(two, call('sqrt', x))))],
  ['sin', unary('sin', (x) => call('cos', x))],
  ['cos', unary('cos', (x) => neg(call('sin', x)))],
  ['tan', unary('tan', (x) => add(one, square(call('tan', x))))],
  ['asin', unary('asin', (x) => div(one, call('sqrt', sub(one, square(x)))))],
  ['acos', unary('acos', (x) => neg(div(one, call('sqrt', sub(one, square(x))))))],
  ['atan', unary('atan', (x) => div(one, add(one, square(x))))],
  ['sinh', unary('sinh', (x) => call('cosh', x))],
  ['cosh', unary('cosh', (x) => call('sinh', x))],
  ['tanh', unary('tanh', (x) => sub(one, square(call('tanh', x))))],
  ['sigmoid', unary('sigmoid', (x) => mul(call('sigmoid', x), sub(one, call('sigmoid', x))))],
  ['softplus', unary('softplus', (x) => call('sigmoid', x))],
  ['add', { value: ([x, y]) => add(x!, y!), partials: () => [num(1), num(1)] }],
  ['sub', { value: ([x, y]) => sub(x!, y!), partials: () => [num(1), num(-1)] }],
  ['mul', { value: ([x, y]) => mul(x!, y!), partials: ([x, y]) => [y!, x!] }], // the product rule
  ['div', { value: ([x, y]) => div(x!, y!), partials: ([x, y]) => [div(one, y!), neg(div(x!, square(y!)))] }],
  // d(x^y) = y x^(y-1) dx + x^y ln(x) dy
  ['pow', { value: ([x, y]) => pow(x!, y!), partials: ([x, y]) => [mul(y!, pow(x!, sub(y!, one))), mul(pow(x!, y!), call('log', x!))] }],
  // atan2(y, x): ∂/∂y = x / (x² + y²), ∂/∂x = -y / (x² + y²)
  ['atan2', { value: ([y, x]) => call('atan2', y!, x!), partials: ([y, x]) => [div(x!, add(square(x!), square(y!))), neg(div(y!, add(square(x!), square(y!))))] }],
  ['hypot', { value: ([x, y]) => call('hypot', x!, y!), partials: ([x, y]) => [div(x!, call('hypot', x!, y!)), div(y!, call('hypot', x!, y!))] }],
]);

const KINK = 'its derivative is piecewise (a kink or a jump): a symbolic table would need cases';
const BOOLEAN = 'a comparison is a 0/1 value with no derivative to show';

/** Scalar elementwise ops with no symbolic rule, and why (a request using one is answered 422). */
export const UNSUPPORTED: ReadonlyMap<string, string> = new Map([
  ['relu', KINK],
  ['maximum', KINK],
  ['minimum', KINK],
  ['where', 'a choice between two branches: a symbolic table would need cases'],
  ['lt', BOOLEAN],
  ['le', BOOLEAN],
  ['gt', BOOLEAN],
  ['ge', BOOLEAN],
  ['eq', BOOLEAN],
  ['ne', BOOLEAN],
]);

/** An unspecified function `a(x, ...)`: its value, and its partials ∂ᵢa(x, ...) (internal names). */
export function unspecifiedRule(fn: string, derivative: (i: number) => string): SymbolicRule {
  return { value: (args) => call(fn, ...args), partials: (args) => args.map((_, i) => call(derivative(i), ...args)) };
}
