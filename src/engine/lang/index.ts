// The expression language (README "Differentiation endpoints", docs/engine.md): source -> syntax tree -> canonical source.

export { parseProgram, MAX_NESTING } from './parser.js';
export { printProgram, printExpr } from './print.js';
export { stripSpans, BINARY_OPS } from './ast.js';
export type {
  Expr,
  IndexItem,
  Kwarg,
  Program,
  Statement,
  WithoutSpans,
} from './ast.js';
export { freeNames } from './names.js';
