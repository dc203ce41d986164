// Lowering: a parsed program becomes primitives in a Builder, each node remembering the source
// span it came from and named intermediates keeping their names. Iterative over expressions, so a
// 10,000-term chain does not overflow the stack.

import { EngineError, type SourceSpan } from '../errors.js';
import type { Builder } from '../ir/builder.js';
import type { NodeId } from '../ir/graph.js';
import { FUNCTIONS, OPERATOR_FUNCTIONS, basicIndex, similarFunctions, type FunctionDef, type IndexItem, type StaticKind, type StaticValue, type StaticValues } from '../ops/functions.js';
import { ShapeError } from '../ops/types.js';
import type { Node } from '../ir/graph.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CallExpr, Expr, IndexItem as AstIndexItem, ListExpr, Program } from './ast.js';

// A Map, never a plain object: a name like `toString` or `__proto__` must not find Object.prototype.
const CONSTANTS: ReadonlyMap<string, number> = new Map([
  ['pi', Math.PI],
  ['e', Math.E],
]);

export interface LoweredProgram {
  output: NodeId;
}

/**
 * How to lower a call to a name that is neither a function of the language: by default an
 * `unknown_function` error; a symbolic table lowers it as an unspecified function of its arguments.
 */
export type UnknownFunction = (call: CallExpr) => FunctionDef | undefined;

/**
 * Lower `program` into `b`, whose inputs are already created (in `at` order). Names resolve to
 * earlier assignments, then inputs, then the constants pi and e.
 */
export function lowerProgram(b: Builder, program: Program, unknown?: UnknownFunction): LoweredProgram {
  const scope = new Map<string, NodeId>(b.inputs);
  let output: NodeId | undefined;
  for (const statement of program.statements) {
    const id = lowerExpr(b, statement.value, scope, unknown);
    if (statement.kind === 'assign') {
      const node = b.node(id);
      if (node.label === undefined) node.label = statement.name;
      scope.set(statement.name, id);
    }
    output = id;
  }
  if (output === undefined) throw new EngineError('parse_error', 'the program is empty', { position: { line: 1, column: 1 } });
  return { output };
}

type Frame = { expr: Expr; expanded: boolean; def?: FunctionDef };

function lowerExpr(b: Builder, root: Expr, scope: ReadonlyMap<string, NodeId>, unknown?: UnknownFunction): NodeId {
  const results: NodeId[] = [];
  const stack: Frame[] = [{ expr: root, expanded: false }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const { expr } = frame;
    if (!frame.expanded) {
      frame.expanded = true;
      const children = childrenOf(frame, unknown);
      for (let i = children.length - 1; i >= 0; i--) stack.push({ expr: children[i]!, expanded: false });
      continue;
    }
    stack.pop();
    const arity = childrenOf(frame).length;
    const args = results.splice(results.length - arity, arity);
    const before = b.nodes.length;
    const id = combine(b, frame, args, scope);
    groupSteps(b, before, id, frame, args);
    results.push(id);
  }
  return results[0]!;
}

/**
 * One step as written: when lowering one call, operator or index made several primitives (the
 * reshapes of `x[0]` or `outer(x, y)`, the sum and scale of `mean(x)`), the last is the step the
 * user wrote (`call`: the function's name and its tensor arguments) and the others are marked as
 * `within` it, so traces, tables and drawings show the function as written.
 */
function groupSteps(b: Builder, before: NodeId, id: NodeId, frame: Frame, args: readonly NodeId[]): void {
  if (id < before || id === before) return; // an existing node, or a single primitive
  // Constants stay rows of their own: a small one may be shared by a later step.
  for (let k = before; k < id; k++) if (b.node(k).op !== 'const') b.node(k).within = id;
  b.node(id).call = { fn: stepName(frame), args: [...args] };
}

function stepName(frame: Frame): string {
  const { expr } = frame;
  switch (expr.kind) {
    case 'call':
      return frame.def!.name;
    case 'binary':
      return OPERATOR_FUNCTIONS.get(expr.op)!;
    case 'index':
      return 'index';
    case 'attr':
      return 'transpose';
    default:
      return expr.kind;
  }
}

function childrenOf(frame: Frame, unknown?: UnknownFunction): Expr[] {
  const { expr } = frame;
  switch (expr.kind) {
    case 'unary':
    case 'attr':
    case 'index':
      return [expr.operand];
    case 'binary':
      return [expr.left, expr.right];
    case 'call': {
      const def = (frame.def ??= lookup(expr, unknown));
      return tensorArgs(expr, def);
    }
    default:
      return [];
  }
}

function lookup(call: CallExpr, unknown?: UnknownFunction): FunctionDef {
  const def = FUNCTIONS.get(call.callee) ?? unknown?.(call);
  if (def) return def;
  const hint = similarFunctions(call.callee);
  throw new EngineError(
    'unknown_function',
    `unknown function '${call.callee}' at line ${call.calleeSpan.line}, column ${call.calleeSpan.column}` +
      (hint.length > 0 ? `: did you mean ${hint.map((h) => `'${h}'`).join(' or ')}?` : ': GET /ops lists the functions'),
    { position: call.calleeSpan },
  );
}

function tensorArgs(call: CallExpr, def: FunctionDef): Expr[] {
  if (def.tensors === 'list') {
    const first = call.args[0];
    if (first === undefined || first.kind !== 'list') {
      throw callError(call, `${def.name} takes a list of tensors first, as in ${def.name}([a, b], axis=0)`);
    }
    return first.items;
  }
  if (call.args.length < def.tensors) {
    throw callError(call, `${def.name} takes ${def.tensors} tensor argument${def.tensors === 1 ? '' : 's'}, got ${call.args.length}`);
  }
  return call.args.slice(0, def.tensors);
}

function combine(b: Builder, frame: Frame, args: NodeId[], scope: ReadonlyMap<string, NodeId>): NodeId {
  const { expr } = frame;
  b.site = { span: expr.span };
  try {
    switch (expr.kind) {
      case 'num':
        return b.scalar(expr.value);
      case 'name': {
        const bound = scope.get(expr.name);
        if (bound !== undefined) return bound;
        const constant = CONSTANTS.get(expr.name);
        if (constant !== undefined) return b.scalar(constant);
        const known = [...scope.keys()];
        throw new EngineError(
          'unknown_input',
          `unknown name '${expr.name}' at line ${expr.span.line}, column ${expr.span.column}: it is neither an input (the keys of \`at\`) nor an earlier assignment` +
            (known.length > 0 ? ` (known: ${known.slice(0, 12).join(', ')})` : ''),
          { position: expr.span },
        );
      }
      case 'none':
        throw new EngineError('parse_error', `None at line ${expr.span.line}, column ${expr.span.column} is only allowed inside indexing, as in X[:, None]`, {
          position: expr.span,
        });
      case 'list':
        return b.constant(listConstant(b, expr, scope));
      case 'unary':
        return expr.op === '-' ? b.neg(args[0]!) : args[0]!;
      case 'binary':
        return FUNCTIONS.get(OPERATOR_FUNCTIONS.get(expr.op)!)!.lower(b, args, noStatics());
      case 'attr':
        return FUNCTIONS.get('transpose')!.lower(b, args, noStatics());
      case 'index':
        return basicIndex(b, args[0]!, expr.items.map(indexItem));
      case 'call':
        return frame.def!.lower(b, args, staticArgs(expr, frame.def!));
    }
  } catch (e) {
    if (e instanceof ShapeError) {
      throw new EngineError('shape_mismatch', `${e.message} (line ${expr.span.line}, column ${expr.span.column})`, { position: expr.span });
    }
    throw e;
  }
}

function callError(call: CallExpr, message: string, span: SourceSpan = call.span): EngineError {
  return new EngineError('parse_error', `${message} (line ${span.line}, column ${span.column})`, { position: span });
}

/** Static arguments by name: a null-prototype object, so only arguments given are found in it. */
function noStatics(): Record<string, StaticValue | undefined> {
  return Object.create(null) as Record<string, StaticValue | undefined>;
}

function staticArgs(call: CallExpr, def: FunctionDef): StaticValues {
  const values = noStatics();
  const first = def.tensors === 'list' ? 1 : def.tensors;
  const positional = call.args.slice(first);
  if (positional.length > def.statics.length) {
    throw callError(call, `${def.name} takes at most ${first + def.statics.length} positional arguments, got ${call.args.length}`);
  }
  positional.forEach((arg, i) => {
    const param = def.statics[i]!;
    values[param.name] = staticValue(arg, param.kind, `${def.name}'s ${param.name}`);
  });
  for (const kw of call.kwargs) {
    const param = def.statics.find((p) => p.name === kw.name);
    if (!param) {
      const allowed = def.statics.map((p) => p.name);
      throw callError(
        call,
        `${def.name} has no argument '${kw.name}'` + (allowed.length > 0 ? `; it takes ${allowed.join(', ')}` : '; it takes no keyword arguments'),
        kw.span,
      );
    }
    if (values[kw.name] !== undefined) throw callError(call, `${def.name}'s ${kw.name} is given twice`, kw.span);
    values[kw.name] = staticValue(kw.value, param.kind, `${def.name}'s ${kw.name}`);
  }
  for (const param of def.statics) {
    if (!param.optional && values[param.name] === undefined) {
      throw callError(call, `${def.name} needs its ${param.name} (${param.about})`);
    }
  }
  return values;
}

/** A compile-time constant: an integer, a list of them, or a boolean. */
function staticValue(expr: Expr, kind: StaticKind, what: string): StaticValue {
  const fail = (wanted: string): EngineError =>
    new EngineError('parse_error', `${what} must be ${wanted} (line ${expr.span.line}, column ${expr.span.column})`, { position: expr.span });
  switch (kind) {
    case 'bool': {
      if (expr.kind === 'name' && ['True', 'true', 'False', 'false'].includes(expr.name)) return expr.name.toLowerCase() === 'true';
      const n = constantNumber(expr);
      if (n === 0 || n === 1) return n === 1;
      throw fail('True or False');
    }
    case 'int': {
      const n = constantNumber(expr);
      if (n === undefined || !Number.isInteger(n)) throw fail('an integer constant');
      return n;
    }
    case 'axes':
    case 'shape': {
      if (expr.kind === 'list') {
        return expr.items.map((item) => {
          const n = constantNumber(item);
          if (n === undefined || !Number.isInteger(n)) throw fail('a list of integer constants');
          return n;
        });
      }
      const n = constantNumber(expr);
      if (n === undefined || !Number.isInteger(n)) throw fail(kind === 'axes' ? 'an integer or a list of integers' : 'a list of integers');
      return [n];
    }
    case 'index':
      throw fail('written with brackets, as in X[1:3]');
  }
}

function constantNumber(expr: Expr): number | undefined {
  let sign = 1;
  let e = expr;
  while (e.kind === 'unary') {
    if (e.op === '-') sign = -sign;
    e = e.operand;
  }
  return e.kind === 'num' ? sign * e.value : undefined;
}

function indexItem(item: AstIndexItem): IndexItem {
  const int = (e: Expr | undefined, what: string): number | undefined => {
    if (e === undefined) return undefined;
    const n = constantNumber(e);
    if (n === undefined || !Number.isInteger(n)) {
      throw new EngineError('parse_error', `${what} must be an integer constant (line ${e.span.line}, column ${e.span.column})`, { position: e.span });
    }
    return n;
  };
  switch (item.kind) {
    case 'none':
      return { kind: 'none' };
    case 'expr':
      if (item.value.kind === 'none') return { kind: 'none' };
      return { kind: 'int', index: int(item.value, 'an index')! };
    case 'slice': {
      const out: IndexItem = { kind: 'slice' };
      const start = int(item.start, 'a slice start');
      const stop = int(item.stop, 'a slice stop');
      const step = int(item.step, 'a slice step');
      if (start !== undefined) out.start = start;
      if (stop !== undefined) out.stop = stop;
      if (step !== undefined) out.step = step;
      return out;
    }
  }
}

/** A list literal of numbers as a constant tensor (items may be constant expressions like -2 or pi/2). */
function listConstant(b: Builder, list: ListExpr, scope: ReadonlyMap<string, NodeId>): Tensor {
  const values: number[] = [];
  // Nesting is bounded by the parser (MAX_NESTING), so recursion is safe here.
  const visit = (e: Expr): number[] => {
    if (e.kind !== 'list') {
      const node = b.node(lowerExpr(b, e, scope)) as Node<'const'>;
      if (node.op !== 'const' || node.shape.length !== 0) {
        throw new EngineError(
          'parse_error',
          `a list literal holds numbers only (line ${e.span.line}, column ${e.span.column}); to build a tensor from expressions use stack([...])`,
          { position: e.span },
        );
      }
      values.push(node.attrs.value.data[0]!);
      return [];
    }
    const shapes = e.items.map(visit);
    const first = shapes[0] ?? [];
    shapes.forEach((s, i) => {
      if (s.length !== first.length || s.some((d, j) => d !== first[j])) {
        const at = e.items[i]!.span;
        throw new EngineError('parse_error', `a list literal must be rectangular: the item at line ${at.line}, column ${at.column} does not match the first`, {
          position: at,
        });
      }
    });
    return [e.items.length, ...first];
  };
  const shape = visit(list);
  return { shape, data: Float64Array.from(values) };
}
