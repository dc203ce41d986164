// The syntax tree of the expression language (README "Differentiation endpoints", docs/engine.md). The parser builds it, the printer
// turns it back into canonical source, the lowering turns it into a graph. Parentheses make no
// node: a node's span covers its own tokens (with the parentheses around its operands).

import type { SourceSpan } from '../errors.js';

export type { SourceSpan } from '../errors.js';

export type UnaryOp = '-' | '+';

export const COMPARISON_OPS = ['<', '<=', '>', '>=', '==', '!='] as const;
type ComparisonOp = (typeof COMPARISON_OPS)[number];

/** `**` in the source is the same operator as `^`. */
export const BINARY_OPS = ['+', '-', '*', '/', '^', '@', ...COMPARISON_OPS] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export interface NumExpr {
  kind: 'num';
  /** Never negative in a parsed tree: `-2` is a unary minus applied to `2`. */
  value: number;
  span: SourceSpan;
}

/** An identifier. `pi`, `e`, `True` and `False` are names too: the lowering gives them meaning. */
export interface NameExpr {
  kind: 'name';
  name: string;
  span: SourceSpan;
}

/** The keyword `None`: meaningful only as an index item, parsed anywhere, refused by the lowering. */
export interface NoneExpr {
  kind: 'none';
  span: SourceSpan;
}

/** `[a, b]`: a constant tensor when the items are numbers, or the list argument of `stack`. */
export interface ListExpr {
  kind: 'list';
  items: Expr[];
  span: SourceSpan;
}

export interface UnaryExpr {
  kind: 'unary';
  op: UnaryOp;
  operand: Expr;
  span: SourceSpan;
}

export interface BinaryExpr {
  kind: 'binary';
  op: BinaryOp;
  left: Expr;
  right: Expr;
  span: SourceSpan;
}

export interface Kwarg {
  name: string;
  value: Expr;
  /** From the keyword to the end of its value. */
  span: SourceSpan;
}

export interface CallExpr {
  kind: 'call';
  callee: string;
  calleeSpan: SourceSpan;
  args: Expr[];
  kwargs: Kwarg[];
  span: SourceSpan;
}

/** `X.T`: the only attribute the language has. */
export interface AttrExpr {
  kind: 'attr';
  operand: Expr;
  attr: 'T';
  span: SourceSpan;
}

/** NumPy basic indexing: `X[i]`, `X[:, None, a]`, `X[1:4:2, -1]`, `X[::-1]`. */
export interface IndexExpr {
  kind: 'index';
  operand: Expr;
  items: IndexItem[];
  span: SourceSpan;
}

export type IndexItem = ExprIndexItem | SliceIndexItem | NoneIndexItem;

export interface ExprIndexItem {
  kind: 'expr';
  value: Expr;
  span: SourceSpan;
}

/** `start:stop:step`, each part optional (absent parts are absent keys). */
export interface SliceIndexItem {
  kind: 'slice';
  start?: Expr;
  stop?: Expr;
  step?: Expr;
  span: SourceSpan;
}

/** A bare `None` item: a new axis of length 1. */
export interface NoneIndexItem {
  kind: 'none';
  span: SourceSpan;
}

export type Expr =
  | NumExpr
  | NameExpr
  | NoneExpr
  | ListExpr
  | UnaryExpr
  | BinaryExpr
  | CallExpr
  | AttrExpr
  | IndexExpr;

type ExprKind = Expr['kind'];

/** `name = value`: binds an intermediate, which keeps its name in traces. */
export interface AssignStatement {
  kind: 'assign';
  name: string;
  nameSpan: SourceSpan;
  value: Expr;
  span: SourceSpan;
}

export interface ExprStatement {
  kind: 'expr';
  value: Expr;
  span: SourceSpan;
}

export type Statement = AssignStatement | ExprStatement;

/** A parsed program always ends with an expression statement: the output. */
export interface Program {
  statements: Statement[];
}

type SpanKey = 'span' | 'calleeSpan' | 'nameSpan';

/** A tree with every span removed: what two parses of equivalent sources agree on. */
export type WithoutSpans<T> = T extends readonly (infer U)[]
  ? WithoutSpans<U>[]
  : T extends object
    ? { [K in keyof T as K extends SpanKey ? never : K]: WithoutSpans<T[K]> }
    : T;

const SPAN_KEYS: ReadonlySet<string> = new Set<SpanKey>(['span', 'calleeSpan', 'nameSpan']);

/**
 * A deep copy of `node` without its spans. Iterative, so a parsed chain like `x+x+...+x` of any
 * length (a tree as deep as the chain is long) does not overflow the stack.
 */
export function stripSpans<T>(node: T): WithoutSpans<T> {
  const root: { value?: unknown } = {};
  const stack: [source: unknown, target: object, key: string | number][] = [
    [node, root, 'value'],
  ];
  while (stack.length > 0) {
    const [source, target, key] = stack.pop()!;
    if (Array.isArray(source)) {
      const copy: unknown[] = new Array<unknown>(source.length);
      Reflect.set(target, key, copy);
      for (let i = 0; i < source.length; i++) stack.push([source[i], copy, i]);
    } else if (source !== null && typeof source === 'object') {
      const copy: Record<string, unknown> = {};
      Reflect.set(target, key, copy);
      for (const [k, v] of Object.entries(source)) {
        if (SPAN_KEYS.has(k)) continue;
        copy[k] = v; // keeps the key order; objects are replaced by their copies below
        if (v !== null && typeof v === 'object') stack.push([v, copy, k]);
      }
    } else {
      Reflect.set(target, key, source);
    }
  }
  return root.value as WithoutSpans<T>;
}
