// The commands: for each, its options, the request it sends (to the route of the same name) and
// how it shows the answer to a person. `--json` bypasses the showing and prints the answer as is.

import { readSubmissions } from './answers.js';
import { functionSource, InputError, parseJson, parseValue, parseValues, readArgument } from './inputs.js';
import { type AnswerValue, formatInline, formatNumber, formatTable, formatWarning, labelled, type Problem } from './print.js';

/** Exit codes (README "Command line"). */
export const EXIT = { ok: 0, failed: 1, input: 2, server: 3 } as const;

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** The value's placeholder in the help, for string options. */
  value?: string;
  help: string;
}

/** What parseArgs gives a command: its options by name, and its positional arguments. */
export interface Parsed {
  options: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** A request to send: the route, the body, and the expression (for carets under errors). */
export interface Request {
  path: string;
  body: Record<string, unknown>;
  source?: string;
}

/** What a command prints for an answer, and whether it passed (exit code 0 or 1). */
export interface Shown {
  text: string;
  passed: boolean;
}

export interface Command {
  summary: string;
  usage: string;
  /** More lines of help after the options. */
  notes?: string;
  options: Record<string, OptionSpec>;
  request(parsed: Parsed): Request;
  show(answer: unknown, parsed: Parsed): Shown | Promise<Shown>;
}

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', help: 'a running Adjoint server (default: $ADJOINT_URL; neither: compute in this process)' },
  'api-key': { type: 'string', value: 'KEY', help: 'its API key, sent as Authorization: Bearer (default: $ADJOINT_API_KEY, better: other users see arguments in ps)' },
  json: { type: 'boolean', help: "print the service's JSON answer exactly as it came" },
  job: { type: 'boolean', help: 'run on the server as a job (POST ...?async=true), with a progress bar on a terminal: for work longer than a proxy waits (every command but trace; needs --url)' },
  digits: { type: 'string', value: 'N', help: 'round printed numbers to N significant digits' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

const AT: OptionSpec = { type: 'string', multiple: true, value: 'NAME=VALUE', help: "an input's value, a number or JSON array: x=0.7, 'W=[[1,2],[3,4]]' (repeat per input; or a JSON object, or @file.json)" };
const WRT: OptionSpec = { type: 'string', multiple: true, value: 'NAME', help: 'differentiate with respect to this input only (repeatable; default: all)' };

const str = (parsed: Parsed, name: string): string | undefined => parsed.options[name] as string | undefined;
const list = (parsed: Parsed, name: string): string[] | undefined => parsed.options[name] as string[] | undefined;

function numberOption(parsed: Parsed, name: string): number | undefined {
  const text = str(parsed, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || Number.isNaN(value)) throw new InputError(`--${name} ${text}: must be a number`);
  return value;
}

/** The printing precision: --digits, else `fallback` (undefined: every digit of the float64). */
export function digitsOf(parsed: Parsed, fallback?: number): number | undefined {
  const digits = numberOption(parsed, 'digits');
  if (digits === undefined) return fallback;
  if (!Number.isInteger(digits) || digits < 1 || digits > 17) throw new InputError('--digits: must be an integer from 1 to 17');
  return digits;
}

function oneOf<T extends string>(parsed: Parsed, name: string, choices: readonly T[]): T | undefined {
  const value = str(parsed, name);
  if (value !== undefined && !(choices as readonly string[]).includes(value)) throw new InputError(`--${name} ${value}: must be one of ${choices.join(', ')}`);
  return value as T | undefined;
}

/** Fields with a value only: the service's defaults apply to the rest. */
function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** The request of a command on one function at one point: `<expr> --at ... [--wrt ...]`. */
function functionRequest(parsed: Parsed, path: string, extra: Record<string, unknown> = {}): Request {
  if (parsed.positionals.length === 0) throw new InputError("the function is missing: an expression in quotes, e.g. 'sin(x) * x', or @file");
  if (parsed.positionals.length > 1) throw new InputError(`expected one expression, got ${parsed.positionals.length} arguments: put the expression in quotes`);
  const source = functionSource(parsed.positionals[0]!);
  const at = parseValues(list(parsed, 'at'), '--at');
  if (at === undefined) throw new InputError('--at is required: the point, e.g. --at x=0.7');
  const body = defined({ ...source, at, wrt: list(parsed, 'wrt'), ...extra });
  return { path, body, ...('expr' in source ? { source: source.expr } : {}) };
}

interface Warning {
  message: string;
  position?: { line: number; column: number };
}

/** The answer's warnings (a NaN or infinity, and where it arose), for standard error. */
export function warningsOf(answer: { warnings?: Warning[] }, source: string | undefined): string | undefined {
  if (answer.warnings === undefined || answer.warnings.length === 0) return undefined;
  return answer.warnings.map((w) => formatWarning(w, source)).join('\n');
}

type Values = Record<string, AnswerValue>;

const grad: Command = {
  summary: 'the value and gradient of a scalar function (reverse mode)',
  usage: "adjoint grad <expr | @file> --at NAME=VALUE ... [--wrt NAME ...]",
  options: { at: AT, wrt: WRT },
  request: (parsed) => functionRequest(parsed, '/grad'),
  show(answer, parsed) {
    const { value, gradient } = answer as { value: AnswerValue; gradient: Values };
    const digits = digitsOf(parsed);
    const lines = labelled([['value', value], ...Object.entries(gradient).map(([name, g]): [string, AnswerValue] => [`∂f/∂${name}`, g])], digits);
    return { text: lines.join('\n'), passed: true };
  },
};

const evaluate: Command = {
  summary: 'the value of a function',
  usage: 'adjoint eval <expr | @file> --at NAME=VALUE ...',
  options: { at: AT },
  request: (parsed) => functionRequest(parsed, '/eval'),
  show(answer, parsed) {
    const { value } = answer as { value: AnswerValue };
    return { text: labelled([['value', value]], digitsOf(parsed)).join('\n'), passed: true };
  },
};

const jvp: Command = {
  summary: 'the value and a Jacobian-vector product J·t (forward mode, one pass)',
  usage: 'adjoint jvp <expr | @file> --at NAME=VALUE ... --tangent NAME=VALUE ...',
  notes: 'Inputs without a --tangent get a zero tangent; J·t has the output\'s shape.',
  options: {
    at: AT,
    tangent: { type: 'string', multiple: true, value: 'NAME=VALUE', help: "an input's tangent, of its shape (repeat per input; or a JSON object, or @file.json)" },
  },
  request(parsed) {
    const tangents = parseValues(list(parsed, 'tangent'), '--tangent');
    if (tangents === undefined) throw new InputError('--tangent is required: the direction, e.g. --tangent x=1');
    return functionRequest(parsed, '/jvp', { tangents });
  },
  show(answer, parsed) {
    const { value, tangent } = answer as { value: AnswerValue; tangent: AnswerValue };
    return { text: labelled([['value', value], ['J·t', tangent]], digitsOf(parsed)).join('\n'), passed: true };
  },
};

const hessian: Command = {
  summary: 'the value, gradient and Hessian of a scalar function (forward over reverse mode)',
  usage: 'adjoint hessian <expr | @file> --at NAME=VALUE ... [--wrt NAME ...]',
  notes: "∂²f/∂x∂y has x's shape followed by y's shape.",
  options: { at: AT, wrt: WRT },
  request: (parsed) => functionRequest(parsed, '/hessian'),
  show(answer, parsed) {
    const { value, gradient, hessian: blocks } = answer as { value: AnswerValue; gradient: Values; hessian: Record<string, Values> };
    const rows: [string, AnswerValue][] = [['value', value], ...Object.entries(gradient).map(([name, g]): [string, AnswerValue] => [`∂f/∂${name}`, g])];
    for (const [a, row] of Object.entries(blocks)) for (const [b, h] of Object.entries(row)) rows.push([`∂²f/∂${a}∂${b}`, h]);
    return { text: labelled(rows, digitsOf(parsed)).join('\n'), passed: true };
  },
};

const jacobian: Command = {
  summary: 'the Jacobian of a function, by forward or reverse mode',
  usage: "adjoint jacobian <expr | @file> --at NAME=VALUE ... [--wrt NAME ...] [--mode forward|reverse|auto]",
  notes: "∂f/∂x has the output's shape followed by x's shape.",
  options: { at: AT, wrt: WRT, mode: { type: 'string', value: 'MODE', help: 'forward, reverse, or auto (default: forward when the inputs are smaller than the output)' } },
  request: (parsed) => functionRequest(parsed, '/jacobian', { mode: oneOf(parsed, 'mode', ['forward', 'reverse', 'auto'] as const) }),
  show(answer, parsed) {
    const { value, jacobian, mode, passes } = answer as { value: AnswerValue; jacobian: Values; mode: string; passes: number };
    const digits = digitsOf(parsed);
    const lines = labelled([['value', value], ...Object.entries(jacobian).map(([name, j]): [string, AnswerValue] => [`∂f/∂${name}`, j])], digits);
    lines.push(`(${mode} mode, ${passes} passes)`);
    return { text: lines.join('\n'), passed: true };
  },
};

interface CheckAnswer {
  value: AnswerValue;
  ok: boolean;
  gradient: Values;
  numeric: Values;
  errors: Record<string, { maxAbsError: number | string; maxRelError: number | string }>;
  maxAbsError: number | string;
  maxRelError: number | string;
  evaluations: number;
  rtol: number;
  atol: number;
  method: string;
}

const check: Command = {
  summary: 'the AD gradient against finite differences (exit code 1 when they disagree)',
  usage: "adjoint check <expr | @file> --at NAME=VALUE ... [--wrt NAME ...] [--rtol R] [--atol A] [--method central|forward] [--directions K [--seed S]]",
  notes: 'They agree when every |AD − FD| ≤ atol + rtol·|FD| (PyTorch gradcheck\'s rule and defaults).',
  options: {
    at: AT,
    wrt: WRT,
    rtol: { type: 'string', value: 'R', help: 'relative tolerance (default 1e-3)' },
    atol: { type: 'string', value: 'A', help: 'absolute tolerance (default 1e-5)' },
    method: { type: 'string', value: 'METHOD', help: 'central (default) or forward differences' },
    directions: { type: 'string', value: 'K', help: 'check K random directions instead of every coordinate' },
    seed: { type: 'string', value: 'S', help: 'seed of the random directions (default 0)' },
  },
  request: (parsed) =>
    functionRequest(parsed, '/check', {
      rtol: numberOption(parsed, 'rtol'),
      atol: numberOption(parsed, 'atol'),
      method: oneOf(parsed, 'method', ['central', 'forward'] as const),
      directions: numberOption(parsed, 'directions'),
      seed: numberOption(parsed, 'seed'),
    }),
  show(answer, parsed) {
    const a = answer as CheckAnswer;
    const digits = digitsOf(parsed);
    const entries: [string, AnswerValue][] = [['value', a.value]];
    for (const [name, g] of Object.entries(a.gradient)) entries.push([`AD ∂f/∂${name}`, g], [`FD ∂f/∂${name}`, a.numeric[name]!]);
    const lines = labelled(entries, digits);
    for (const [name, e] of Object.entries(a.errors)) lines.push(`error in ∂f/∂${name}: max abs ${formatNumber(e.maxAbsError, 4)}, max rel ${formatNumber(e.maxRelError, 4)}`);
    const rule = `|AD − FD| ≤ ${a.atol} + ${a.rtol}·|FD|, ${a.method} differences, ${a.evaluations} evaluations`;
    lines.push(a.ok ? `ok: AD and finite differences agree (${rule})` : `FAILED: AD and finite differences disagree (${rule}): max abs error ${formatNumber(a.maxAbsError, 4)}, max rel error ${formatNumber(a.maxRelError, 4)}`);
    return { text: lines.join('\n'), passed: a.ok };
  },
};

interface TraceStep {
  id: string;
  op: string;
  args: (string | number)[];
  shape: number[];
  value: AnswerValue;
  tangent?: AnswerValue;
  adjoint?: AnswerValue;
}

/** The symbol of each operator primitive (`add` → `+`), from the expression language's own table. */
async function operatorSymbols(): Promise<Map<string, string>> {
  // Imported when a table is shown: the engine's function table is not needed for anything else.
  const { OPERATOR_FUNCTIONS } = await import('../engine/ops/functions.js');
  return new Map([...OPERATOR_FUNCTIONS].map(([symbol, name]) => [name, symbol]));
}

/** A step as the lecture writes it: `x1 + x2`, `exp(x1)`, `-x`; an input is `input`. */
function operation(step: TraceStep, symbols: Map<string, string>, digits: number | undefined): string {
  const args = step.args.map((a) => (typeof a === 'number' ? formatNumber(a, digits) : a));
  const symbol = symbols.get(step.op);
  if (symbol !== undefined && args.length === 2) return `${args[0]} ${symbol} ${args[1]}`;
  if (step.op === 'neg' && args.length === 1) return `-${args[0]}`;
  if (step.op === 'input') return 'input';
  return `${step.op}(${args.join(', ')})`;
}

const trace: Command = {
  summary: "the lecture's forward and reverse tables: each step's value, tangent and adjoint",
  usage: "adjoint trace <expr | @file> --at NAME=VALUE ... [--mode forward|reverse|both] [--tangent NAME=VALUE ...] [--cotangent VALUE]",
  notes: 'Numbers are shown to 6 significant digits unless --digits says otherwise (--json: every digit).',
  options: {
    at: AT,
    wrt: WRT,
    mode: { type: 'string', value: 'MODE', help: 'forward (tangents), reverse (adjoints) or both (default)' },
    tangent: { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'forward seed of an input (others zero; default: ones on the first input)' },
    cotangent: { type: 'string', value: 'VALUE', help: "reverse seed: the output's cotangent (default: ones)" },
  },
  request(parsed) {
    const cotangent = str(parsed, 'cotangent');
    return functionRequest(parsed, '/trace', {
      mode: oneOf(parsed, 'mode', ['forward', 'reverse', 'both'] as const),
      tangents: parseValues(list(parsed, 'tangent'), '--tangent'),
      cotangent: cotangent === undefined ? undefined : parseValue(cotangent, '--cotangent'),
    });
  },
  async show(answer, parsed) {
    const symbols = await operatorSymbols();
    const { steps, output, seeds } = answer as { steps: TraceStep[]; output: string; seeds: { tangents?: Values; cotangent?: AnswerValue } };
    const digits = digitsOf(parsed, 6);
    const tensors = steps.some((s) => s.shape.length > 0);
    const header = ['step', 'operation', ...(tensors ? ['shape'] : []), 'value'];
    const forward = steps.some((s) => s.tangent !== undefined);
    const reverse = steps.some((s) => s.adjoint !== undefined);
    if (forward) header.push('tangent');
    if (reverse) header.push('adjoint');
    const cell = (v: AnswerValue | undefined) => (v === undefined ? '' : formatInline(v, digits));
    const rows = steps.map((s) => [
      s.id,
      operation(s, symbols, digits),
      ...(tensors ? [`[${s.shape.join(', ')}]`] : []),
      cell(s.value),
      ...(forward ? [cell(s.tangent)] : []),
      ...(reverse ? [cell(s.adjoint)] : []),
    ]);
    const notes = [`output: ${output}`];
    if (seeds.tangents !== undefined) notes.push(`tangent seeds: ${Object.entries(seeds.tangents).map(([n, v]) => `${n} = ${formatInline(v, digits)}`).join(', ')}`);
    if (seeds.cotangent !== undefined) notes.push(`cotangent seed: ${formatInline(seeds.cotangent, digits)}`);
    return { text: `${formatTable(header, rows)}\n\n${notes.join('; ')}`, passed: true };
  },
};

interface NativeResult {
  id: string | number;
  score: number;
  max_score: number;
  gradable: boolean;
  output: string;
}

/** Whether a submission has full marks and could be read whole, in each result format. */
function fullMarks(format: string, result: Record<string, unknown>): boolean {
  if (format === 'gradescope') {
    const extra = result.extra_data as { max_score: number; gradable: boolean };
    return result.score === extra.max_score && extra.gradable;
  }
  if (format === 'prairielearn') return result.score === 1 && result.gradable === true;
  return result.score === result.max_score && result.gradable === true;
}

/** The reference: an expression, or `@file` with an expression, a JSON graph, or a JSON object of the request's settings (`reference`, `at`, `required`, ...). */
function gradeSettings(argument: string): { settings: Record<string, unknown>; source?: string } {
  const text = readArgument(argument);
  if (!argument.startsWith('@') || !text.trimStart().startsWith('{')) return { settings: { reference: { expr: text } }, source: text };
  const json = parseJson(text, argument.slice(1)) as Record<string, unknown>;
  if (!('reference' in json)) return { settings: { reference: { graph: json } } };
  const expr = (json.reference as { expr?: unknown } | null)?.expr;
  return { settings: json, ...(typeof expr === 'string' ? { source: expr } : {}) };
}

const grade: Command = {
  summary: "grade a class's answers (CSV or JSON) against a reference (exit code 1 unless every submission has full marks)",
  usage: 'adjoint grade <reference expr | @file> <answers.csv | answers.json | -> [--at NAME=VALUE ...] [--required PART ...] [options]',
  notes: [
    'The CSV has a header row naming each column: id, value, gradient.<input>, derivative.<input> (or',
    'derivative, for a function of one input), forwardTrace.<step>.value, forwardTrace.<step>.tangent,',
    'reverseTrace.<step>, shapes.<step>; then a row per submission (an empty cell: not answered). The',
    'JSON is [{ "id": ..., "answers": {...} }] as POST /grade takes it. A reference @file.json may hold',
    'the request without its submissions ({ "reference": { "expr": ..., "feedback": [...] }, "at": ... });',
    'options given here take precedence over it. --format gradescope|prairielearn prints that JSON.',
  ].join('\n'),
  options: {
    at: { ...AT, help: 'the point of numbers and tables (value, gradient, forwardTrace, ...)' },
    tangent: trace.options.tangent!,
    cotangent: trace.options.cotangent!,
    required: { type: 'string', multiple: true, value: 'PART', help: 'an answer every submission must give: derivative.x, forwardTrace.x2, ... (repeatable)' },
    points: { type: 'string', value: 'N', help: 'random points each formula is checked at (default 8)' },
    seed: { type: 'string', value: 'S', help: 'seed of the random points (default 0)' },
    rtol: { type: 'string', value: 'R', help: 'relative tolerance of numbers and table cells (default 1e-2)' },
    atol: { type: 'string', value: 'A', help: 'absolute tolerance of numbers and table cells (default 1e-8)' },
    'formula-rtol': { type: 'string', value: 'R', help: 'relative tolerance of formulas (default 1e-6)' },
    'formula-atol': { type: 'string', value: 'A', help: 'absolute tolerance of formulas (default 1e-9)' },
    format: { type: 'string', value: 'FORMAT', help: "native (default), gradescope or prairielearn: the results' shape" },
  },
  request(parsed) {
    if (parsed.positionals.length !== 2) throw new InputError(`expected a reference and an answers file, got ${parsed.positionals.length} arguments`);
    const { settings, source } = gradeSettings(parsed.positionals[0]!);
    const cotangent = str(parsed, 'cotangent');
    const body = {
      ...settings,
      ...defined({
        at: parseValues(list(parsed, 'at'), '--at'),
        tangents: parseValues(list(parsed, 'tangent'), '--tangent'),
        cotangent: cotangent === undefined ? undefined : parseValue(cotangent, '--cotangent'),
        required: list(parsed, 'required'),
        points: numberOption(parsed, 'points'),
        seed: numberOption(parsed, 'seed'),
        rtol: numberOption(parsed, 'rtol'),
        atol: numberOption(parsed, 'atol'),
        formulaRtol: numberOption(parsed, 'formula-rtol'),
        formulaAtol: numberOption(parsed, 'formula-atol'),
        format: oneOf(parsed, 'format', ['native', 'gradescope', 'prairielearn'] as const),
      }),
      submissions: readSubmissions(parsed.positionals[1]!),
    };
    return { path: '/grade', body, ...(source === undefined ? {} : { source }) };
  },
  show(answer) {
    const { format, results } = answer as { format: string; results: Record<string, unknown>[] };
    const full = results.filter((r) => fullMarks(format, r)).length;
    if (format !== 'native') return { text: JSON.stringify(answer, null, 2), passed: full === results.length };
    const lines = (results as unknown as NativeResult[]).map((r) => {
      const head = `${r.id}: ${r.score}/${r.max_score}${r.gradable ? '' : ' (not gradable: do not record this score)'}`;
      return `${head}\n${r.output.replace(/^/gm, '  ')}`;
    });
    const notGradable = results.filter((r) => r.gradable === false).length;
    lines.push(`${results.length} submissions: ${full} with full marks, ${results.length - full} without${notGradable > 0 ? ` (${notGradable} not gradable)` : ''}`);
    return { text: lines.join('\n'), passed: full === results.length };
  },
};

export const COMMANDS: ReadonlyMap<string, Command> = new Map([
  ['eval', evaluate],
  ['grad', grad],
  ['jvp', jvp],
  ['jacobian', jacobian],
  ['hessian', hessian],
  ['check', check],
  ['trace', trace],
  ['grade', grade],
]);

/** A command's help: usage, summary, its options and the common ones. */
export function commandHelp(name: string, command: Command): string {
  const describe = (options: Record<string, OptionSpec>) =>
    Object.entries(options).map(([option, spec]) => {
      const flag = `${spec.short ? `-${spec.short}, ` : ''}--${option}${spec.value ? ` ${spec.value}` : ''}`;
      return `  ${flag.padEnd(28)} ${spec.help}`;
    });
  return [
    `usage: ${command.usage}`,
    '',
    `adjoint ${name}: ${command.summary}.`,
    ...(command.notes ? ['', command.notes] : []),
    '',
    'options:',
    ...describe(command.options),
    ...describe(COMMON_OPTIONS),
  ].join('\n');
}

/** The problem of an error answer, or a stand-in when the body is not one (a proxy's page). */
export function problemOf(reply: { status: number; body: string }): Problem {
  try {
    const problem = JSON.parse(reply.body) as Problem;
    if (problem !== null && typeof problem === 'object') return problem;
  } catch {
    // not JSON: described below
  }
  return { status: reply.status, code: 'http_error', detail: `HTTP ${reply.status}: ${reply.body.slice(0, 200)}` };
}

/**
 * The text a problem's position is in: the request field its first issue's path names when that
 * is a string (`reference.feedback.0.expr`), else the command's expression.
 */
export function sourceOf(problem: Problem, request: Request): string | undefined {
  const path = problem.errors?.[0]?.path;
  if (path === undefined || path === '') return request.source;
  let field: unknown = request.body;
  for (const key of path.split('.')) field = field !== null && typeof field === 'object' && Object.hasOwn(field, key) ? (field as Record<string, unknown>)[key] : undefined;
  return typeof field === 'string' ? field : request.source;
}

/** 2 for a request the service refused as wrong (4xx), 3 for one it could not take now or at all. */
export function exitCodeOf(status: number): number {
  return status >= 500 || status === 429 || status === 408 ? EXIT.server : EXIT.input;
}

