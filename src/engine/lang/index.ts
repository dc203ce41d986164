// The expression language (CONTRACT §1): source -> syntax tree -> canonical source.

export { parseProgram, MAX_NESTING } from './parser.js';
export { printProgram, printStatement, printExpr } from './print.js';
export { stripSpans, BINARY_OPS, COMPARISON_OPS } from './ast.js';
export type {
  AssignStatement,
  AttrExpr,
  BinaryExpr,
  BinaryOp,
  CallExpr,
  ComparisonOp,
  Expr,
  ExprIndexItem,
  ExprKind,
  ExprStatement,
  IndexExpr,
  IndexItem,
  Kwarg,
  ListExpr,
  NameExpr,
  NoneExpr,
  NoneIndexItem,
  NumExpr,
  Program,
  SliceIndexItem,
  SourceSpan,
  Statement,
  UnaryExpr,
  UnaryOp,
  WithoutSpans,
} from './ast.js';
export { freeNames } from './names.js';
