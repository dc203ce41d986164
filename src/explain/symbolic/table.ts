// Symbolic tables (docs/symbolic.md): every step of a scalar program with its value, its tangent
// (forward mode) and its adjoint (reverse mode) as formulas. The recipes are local, as the lecture
// writes them: a tangent from the arguments' tangents, an adjoint as the sum over the steps that use
// this one (its parents) of their adjoint times the local partial (section 5.3). The expanded forms
// substitute every earlier step, so they are functions of the inputs alone. Simplification is
// mathjs's `simplify`, bounded by a formula-size cap and a time budget.

import { simplify, simplifyCore, SymbolNode, type MathNode } from 'mathjs';
import { rowArgs, rowOp, traceRowsOf, type TraceMode } from '../../engine/ad/trace.js';
import { EngineError } from '../../engine/errors.js';
import { Builder } from '../../engine/ir/builder.js';
import type { Node, NodeId } from '../../engine/ir/graph.js';
import { freeNames, parseProgram, type Expr } from '../../engine/lang/index.js';
import { lowerProgram, type UnknownFunction } from '../../engine/lang/lower.js';
import { FUNCTIONS, type FunctionDef } from '../../engine/ops/functions.js';
import { isInputName, labelUnnamed, type Limits } from '../../engine/prepare.js';
import { Names, toLatex, toText, type Spelling } from './convert.js';
import { add, mul, num, RULES, UNSUPPORTED, unspecifiedRule, type M, type SymbolicRule } from './rules.js';

/** Steps of a program a symbolic table is drawn for. */
export const MAX_SYMBOLIC_STEPS = 64;
/** Nodes of any formula the answer holds. */
export const MAX_FORMULA_NODES = 500;
/** Nodes of a formula handed to the full `simplify` (its time grows fast with size); larger ones get `simplifyCore` only. */
export const MAX_SIMPLIFY_NODES = 60;
/** Wall-clock budget of one table's symbolic work. */
export const SYMBOLIC_BUDGET_MS = 10_000;

export interface SymbolicRequest {
  expr: string;
  /** The inputs in order: the keys of `at`, or else the program's free names in order of appearance. */
  inputs?: string[] | undefined;
  wrt?: string[] | undefined;
  mode: TraceMode;
  simplify: boolean;
  tangents?: Record<string, unknown> | undefined;
  cotangent?: unknown;
}

export interface FormulaSet {
  value?: Spelling;
  tangent?: Spelling;
  adjoint?: Spelling;
}

export interface SymbolicRow {
  id: string;
  op: string;
  args: (string | number)[];
  position?: { line: number; column: number };
  formulas: FormulaSet & { expanded?: FormulaSet };
}

export interface SymbolicTable {
  rows: SymbolicRow[];
  output: string;
  inputs: string[];
  seeds: { tangents: Record<string, number>; cotangent: number };
  /** Unspecified functions: the name, its arguments' count, how its partials are written. */
  functions: { name: string; arity: number; derivatives: string[] }[];
  notes: string[];
}

const fail = (message: string, path?: string[]): EngineError => new EngineError('symbolic_unsupported', message, path ? { path } : {});

function size(node: M): number {
  let n = 0;
  node.traverse(() => n++);
  return n;
}

/** Replace internal symbols (never a function's name) by formulas. */
function substitute(node: M, by: (name: string) => M | undefined): M {
  return node.transform((n: MathNode, path: string) => {
    if (n instanceof SymbolNode && path !== 'fn') return by(n.name)?.cloneDeep() ?? n;
    return n;
  });
}

class Simplifier {
  private readonly deadline = Date.now() + SYMBOLIC_BUDGET_MS;
  constructor(private readonly on: boolean) {}

  /**
   * The formula simplified (when asked), or undefined when it is too big to hold: mathjs's cheap
   * `simplifyCore` pass, then its full `simplify` when the formula is small enough for it. With
   * `core`, a formula not to be simplified still gets the cheap pass (drops factors 1, terms 0).
   */
  run(node: M, core = false): M | undefined {
    if (size(node) > MAX_FORMULA_NODES) return undefined;
    if (!this.on) return core ? simplifyCore(node) : node;
    let out = simplifyCore(node);
    if (size(out) <= MAX_SIMPLIFY_NODES) out = simplified(out);
    if (Date.now() > this.deadline) {
      throw new EngineError('limit_exceeded', `symbolic work took more than ${SYMBOLIC_BUDGET_MS / 1000} s: symbolic tables are for programs small enough to read`);
    }
    return size(out) > MAX_FORMULA_NODES ? undefined : out;
  }
}

/**
 * Simplified formulas by shape: the symbols renamed p0, p1, ... in order of appearance, so the
 * recipe `a3 * exp(s1) + a4 * 1` of one table and `a7 * exp(s5) + a9 * 1` of another share one
 * entry (mathjs's rules never look at a symbol's name). Bounded: cleared when full.
 */
const SIMPLIFIED = new Map<string, M>();
const SIMPLIFIED_ENTRIES = 4096;

function renamed(node: M, name: (from: string) => string): M {
  return node.transform((n: MathNode, path: string) => (n instanceof SymbolNode && path !== 'fn' ? new SymbolNode(name(n.name)) : n));
}

function simplified(node: M): M {
  const canonical = new Map<string, string>();
  const back = new Map<string, string>();
  const key = renamed(node, (from) => {
    let to = canonical.get(from);
    if (to === undefined) {
      to = `p${canonical.size}`;
      canonical.set(from, to);
      back.set(to, from);
    }
    return to;
  });
  const text = key.toString();
  let out = SIMPLIFIED.get(text);
  if (out === undefined) {
    out = simplify(key, {}, { exactFractions: false });
    if (SIMPLIFIED.size >= SIMPLIFIED_ENTRIES) SIMPLIFIED.clear();
    SIMPLIFIED.set(text, out);
  }
  return renamed(out, (to) => back.get(to) ?? to);
}

function readNumber(raw: unknown, fallback: number, path: string[]): number {
  if (raw === undefined) return fallback;
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw;
  throw new EngineError('validation_error', `${path.join('.')} must be a finite number in a symbolic table (symbolic tables are for scalar programs)`, { path });
}

/** Lower the program, a call to a name that is no function of the language being an unspecified function of its arguments. */
function lower(request: SymbolicRequest, limits: Limits): { b: Builder; output: NodeId; inputs: string[]; unspecified: Set<string> } {
  if (request.expr.length > limits.maxExprLength) throw new EngineError('limit_exceeded', `the expression has ${request.expr.length} characters, more than the limit of ${limits.maxExprLength} (MAX_EXPR_LENGTH)`);
  const program = parseProgram(request.expr);
  const inputs = request.inputs ?? freeNames(program);
  const b = new Builder({ optimize: false, maxElements: limits.maxTensorElements, maxNodes: limits.maxNodes });
  for (const name of inputs) {
    if (!isInputName(name)) throw new EngineError('validation_error', `input name '${name}' must be an identifier`, { path: ['at', name] });
    if (/^(dot|bar|d[0-9]*)_/.test(name)) throw new EngineError('validation_error', `the name '${name}' is reserved in symbolic tables (dot_ tangents, bar_ adjoints, d_ derivatives)`, { path: ['at', name] });
    b.input(name, []);
  }
  const unspecified = new Set<string>();
  const unknown: UnknownFunction = (call) => {
    if (call.args.length === 0) return undefined;
    unspecified.add(call.callee);
    const def: FunctionDef = {
      name: call.callee,
      tensors: call.args.length,
      statics: [],
      composite: true,
      doc: { value: 'an unspecified function', derivative: 'its partials' },
      // Stands for the function in the graph: two primitives grouped as one step named for it.
      lower: (bb, xs) => bb.neg(bb.neg(xs.slice(1).reduce((sum, x) => bb.add(sum, x), xs[0]!))),
    };
    return def;
  };
  const { output } = lowerProgram(b, program, unknown);
  labelUnnamed(b, output);
  return { b, output, inputs, unspecified };
}

/** The symbolic table of a scalar program. */
export function symbolicTable(request: SymbolicRequest, limits: Limits): SymbolicTable {
  const { b, output, inputs, unspecified } = lower(request, limits);
  const rows = traceRowsOf(b.nodes, output);
  if (rows.length > MAX_SYMBOLIC_STEPS) {
    throw new EngineError('limit_exceeded', `the program has ${rows.length} steps, more than the ${MAX_SYMBOLIC_STEPS} a symbolic table shows: symbolic tables are for programs small enough to read`);
  }
  for (const node of b.nodes) {
    if (node.shape.length !== 0) throw fail(`step ${node.label ?? node.id} has shape [${node.shape.join(', ')}]: symbolic tables are for scalar programs (every input and step a number)`);
  }
  const names = new Names();
  const index = new Map<NodeId, number>(rows.map((node, k) => [node.id, k]));
  rows.forEach((node, k) => names.step(k, node.label!));
  const wrt = request.wrt ?? inputs;
  for (const name of wrt) if (!inputs.includes(name)) throw new EngineError('unknown_input', `wrt names '${name}', which is not an input`, { path: ['wrt'] });
  const seeds = { tangents: Object.create(null) as Record<string, number>, cotangent: readNumber(request.cotangent, 1, ['cotangent']) };
  for (const name of Object.keys(request.tangents ?? {})) if (!inputs.includes(name)) throw new EngineError('unknown_input', `tangents names '${name}', which is not an input`, { path: ['tangents', name] });
  inputs.forEach((name) => (seeds.tangents[name] = readNumber(request.tangents?.[name], name === wrt[0] ? 1 : 0, ['tangents', name])));

  // The argument of a step as a formula: a step's value symbol, or a scalar constant's number.
  const argument = (id: NodeId): M => {
    const k = index.get(id);
    if (k !== undefined) return new SymbolNode(`s${k}`);
    const node = b.node(id) as Node<'const'>;
    return num(node.attrs.value.data[0]!);
  };
  const ruleOf = (node: Node): SymbolicRule => {
    const op = rowOp(node);
    if (unspecified.has(op) && node.call !== undefined) {
      const internal = names.unspecifiedFunction(op);
      const arity = node.call.args.length;
      return unspecifiedRule(internal, (i) => names.partialOf(internal, i, arity));
    }
    const rule = RULES.get(op);
    if (rule !== undefined) return rule;
    const why = UNSUPPORTED.get(op);
    throw fail(`symbolic tables have no rule for ${op}` + (why ? `: ${why}` : ': it is not a scalar elementwise function') + (node.span ? ` (line ${node.span.line}, column ${node.span.column})` : ''));
  };

  // The local recipes.
  const n = rows.length;
  const value: M[] = [];
  const tangent: M[] = [];
  const partials: M[][] = [];
  const sum = (terms: M[]): M => (terms.length === 0 ? num(0) : terms.reduce((s, t) => add(s, t)));
  rows.forEach((node, k) => {
    if (node.op === 'input') {
      value.push(new SymbolNode(`s${k}`));
      tangent.push(num(seeds.tangents[node.label!]!));
      partials.push([]);
      return;
    }
    if (node.op === 'const') {
      value.push(argument(node.id));
      tangent.push(num(0));
      partials.push([]);
      return;
    }
    const rule = ruleOf(node);
    const args = rowArgs(node).map(argument);
    value.push(rule.value(args));
    const ps = rule.partials(args);
    partials.push(ps);
    const terms: M[] = [];
    rowArgs(node).forEach((id, i) => {
      const j = index.get(id);
      if (j !== undefined) terms.push(mul(ps[i]!, new SymbolNode(`t${j}`)));
    });
    tangent.push(sum(terms));
  });
  // Reverse: rows the output depends on (live) and that depend on a wrt input (active).
  const live = new Uint8Array(n);
  const active = new Uint8Array(n);
  live[index.get(output)!] = 1;
  for (let k = n - 1; k >= 0; k--) if (live[k]) for (const id of rowArgs(rows[k]!)) if (index.has(id)) live[index.get(id)!] = 1;
  rows.forEach((node, k) => {
    if (node.op === 'input') active[k] = wrt.includes(node.label!) ? 1 : 0;
    else active[k] = rowArgs(node).some((id) => index.has(id) && active[index.get(id)!]) ? 1 : 0;
  });
  const adjoint: M[] = rows.map((node, k) => {
    if (!live[k] || !active[k]) return num(0);
    const terms: M[] = node.id === output ? [num(seeds.cotangent)] : [];
    for (let p = k + 1; p < n; p++) {
      if (!live[p]) continue;
      rowArgs(rows[p]!).forEach((id, i) => {
        if (id === node.id) terms.push(mul(new SymbolNode(`a${p}`), partials[p]![i]!));
      });
    }
    return sum(terms);
  });

  const simplifier = new Simplifier(request.simplify);
  const local = (m: M, what: string, k: number): M => {
    const out = simplifier.run(m);
    if (out === undefined) throw new EngineError('limit_exceeded', `the ${what} of step ${rows[k]!.label} is a formula of more than ${MAX_FORMULA_NODES} nodes: symbolic tables are for programs small enough to read`);
    return out;
  };
  const forward = request.mode !== 'reverse';
  const reverse = request.mode !== 'forward';
  const recipe = rows.map((_, k) => ({
    value: local(value[k]!, 'value', k),
    tangent: forward ? local(tangent[k]!, 'tangent', k) : undefined,
    adjoint: reverse ? local(adjoint[k]!, 'adjoint', k) : undefined,
  }));

  // Expanded: every earlier step substituted, down to the inputs (and the seeds).
  const ev: (M | undefined)[] = [];
  const et: (M | undefined)[] = [];
  const ea: (M | undefined)[] = new Array<M | undefined>(n);
  const lookup = (name: string): M | undefined => {
    const k = Number(name.slice(1));
    return name[0] === 's' ? ev[k] : name[0] === 't' ? et[k] : ea[k];
  };
  const expand = (m: M | undefined): M | undefined => {
    if (m === undefined) return undefined;
    let missing = false;
    const out = substitute(m, (name) => {
      const found = lookup(name);
      if (found === undefined) missing = true;
      return found;
    });
    // Expanded forms unsimplified would repeat every factor 1 of every rule: they get at least the cheap pass.
    return missing ? undefined : simplifier.run(out, true);
  };
  rows.forEach((node, k) => {
    ev.push(node.op === 'input' ? new SymbolNode(`s${k}`) : expand(recipe[k]!.value));
    if (forward) et.push(expand(recipe[k]!.tangent));
  });
  if (reverse) for (let k = n - 1; k >= 0; k--) ea[k] = expand(recipe[k]!.adjoint);

  const spell = (m: M | undefined): Spelling | undefined => (m === undefined ? undefined : { text: toText(m, names), latex: toLatex(m, names) });
  const notes: string[] = [];
  const answerRows = rows.map((node, k): SymbolicRow => {
    const formulas: SymbolicRow['formulas'] = { value: spell(recipe[k]!.value)! };
    if (forward) formulas.tangent = spell(recipe[k]!.tangent);
    if (reverse) formulas.adjoint = spell(recipe[k]!.adjoint);
    const expanded: FormulaSet = {};
    const expandedValue = spell(ev[k]);
    if (expandedValue) expanded.value = expandedValue;
    if (forward && et[k]) expanded.tangent = spell(et[k]);
    if (reverse && ea[k]) expanded.adjoint = spell(ea[k]);
    if (!expandedValue || (forward && !et[k]) || (reverse && !ea[k])) notes.push(`step ${node.label}: an expanded formula is too big to show (more than ${MAX_FORMULA_NODES} nodes)`);
    formulas.expanded = expanded;
    const row: SymbolicRow = { id: node.label!, op: rowOp(node), args: rowArgs(node).map((id) => (index.has(id) ? b.node(id).label! : (b.node(id) as Node<'const'>).attrs.value.data[0]!)), formulas };
    if (node.span) row.position = { line: node.span.line, column: node.span.column };
    return row;
  });
  const functions = [...unspecified].map((name) => {
    const f = names.functions.get(names.unspecifiedFunction(name))!;
    return { name, arity: f.arity, derivatives: Array.from({ length: f.arity }, (_, i) => names.partialText(name, i + 1, f.arity)) };
  });
  return { rows: answerRows, output: b.node(output).label!, inputs, seeds, functions, notes };
}

/** The names a program calls that are no function of the language: its unspecified functions. */
export function unspecifiedFunctions(expr: string): string[] {
  const found = new Set<string>();
  for (const statement of parseProgram(expr).statements) {
    const stack: Expr[] = [statement.value];
    while (stack.length > 0) {
      const e = stack.pop()!;
      if (e.kind === 'call') {
        if (!FUNCTIONS.has(e.callee)) found.add(e.callee);
        stack.push(...e.args);
      } else if (e.kind === 'binary') stack.push(e.left, e.right);
      else if (e.kind === 'unary' || e.kind === 'attr' || e.kind === 'index') stack.push(e.operand);
      else if (e.kind === 'list') stack.push(...e.items);
    }
  }
  return [...found];
}
