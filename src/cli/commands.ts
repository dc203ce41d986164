// The commands: for each, its options, the request it sends (to the route of the same name) and
// how it shows the answer to a person. `--json` bypasses the showing and prints the answer as is.

import { readSubmissions } from './answers.js';
import { functionSource, InputError, parseJson, parseValue, parseValues, readArgument } from './inputs.js';
import { type AnswerOf, type Command, defined, EXIT, digitsOf, list, numberOption, oneOf, type OptionSpec, type Parsed, type Request, str, writeAnswerFile } from './options.js';
import { type AnswerValue, formatInline, formatNumber, formatTable, formatWarning, labelled, type Problem } from './print.js';
import { probe } from './probe.js';

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', help: 'a running Adjoint server (default: $ADJOINT_URL; neither: compute in this process)' },
  'api-key': { type: 'string', value: 'KEY', help: 'its API key, sent as Authorization: Bearer (default: $ADJOINT_API_KEY, better: other users see arguments in ps)' },
  json: { type: 'boolean', help: "print the service's whole answer exactly as it came (JSON), instead of the summary" },
  msgpack: { type: 'boolean', help: 'send the request as MessagePack (large tensors as raw float64 bytes) and ask the answer so; shown as without it' },
  out: { type: 'string', value: 'FILE', help: "also write the service's whole answer, as it came, to FILE" },
  job: { type: 'boolean', help: 'run on the server as a job (POST ...?async=true), with a progress bar on a terminal: for work longer than a proxy waits (needs --url; probe always runs as one)' },
  digits: { type: 'string', value: 'N', help: 'round printed numbers to N significant digits' },
  'max-file-bytes': { type: 'string', value: 'N', help: 'the most bytes an @file or standard input may hold (default: $ADJOINT_MAX_FILE_BYTES, else 50331648, the server\'s BODY_LIMIT)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

const AT: OptionSpec = { type: 'string', multiple: true, value: 'NAME=VALUE', help: "an input's value, a number or JSON array: x=0.7, 'W=[[1,2],[3,4]]' (repeat per input; or a JSON object, or @file.json)" };
const WRT: OptionSpec = { type: 'string', multiple: true, value: 'NAME', help: 'differentiate with respect to this input only (repeatable; default: all)' };

/** The request of a command on one function at one point: `<expr> --at ... [--wrt ...]`. */
function functionRequest(parsed: Parsed, path: string, extra: Record<string, unknown> = {}, options: { inputs: 'required' | 'optional' } = { inputs: 'required' }): Request {
  if (parsed.positionals.length === 0) throw new InputError("the function is missing: an expression in quotes, e.g. 'sin(x) * x', or @file");
  if (parsed.positionals.length > 1) throw new InputError(`expected one expression, got ${parsed.positionals.length} arguments: put the expression in quotes`);
  const source = functionSource(parsed.positionals[0]!);
  // A constant (adjoint eval 'eye(3)') has no inputs; a derivative needs a point.
  const at = parseValues(list(parsed, 'at'), '--at') ?? (options.inputs === 'optional' ? {} : undefined);
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
  usage: 'adjoint eval <expr | @file> [--at NAME=VALUE ...]',
  options: { at: AT },
  request: (parsed) => functionRequest(parsed, '/eval', {}, { inputs: 'optional' }),
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

/** One point's answer (the commands send `at`, never a `points` batch). */
type CheckAnswer = Exclude<AnswerOf<'/check'>, { results: unknown }>;

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
    const entries: [string, AnswerValue][] = [['value', a.value as AnswerValue]];
    // With --directions, `numeric` is a number per random direction, compared with `directions[k].ad`.
    const numeric = a.numeric as Record<string, AnswerValue> | AnswerValue[];
    for (const [name, g] of Object.entries(a.gradient)) {
      entries.push([`AD ∂f/∂${name}`, g as AnswerValue]);
      if (!Array.isArray(numeric) && numeric[name] !== undefined) entries.push([`FD ∂f/∂${name}`, numeric[name]]);
    }
    for (const [k, d] of (a.directions ?? []).entries()) entries.push([`direction ${k + 1}: AD, FD`, [d.ad, d.numeric] as AnswerValue]);
    const lines = labelled(entries, digits);
    for (const [name, e] of Object.entries(a.errors ?? {})) lines.push(`error in ∂f/∂${name}: max abs ${formatNumber(e.maxAbsError, 4)}, max rel ${formatNumber(e.maxRelError, 4)}`);
    const rule = `|AD − FD| ≤ ${a.atol} + ${a.rtol}·|FD|, ${a.method} differences, ${a.evaluations} evaluations`;
    lines.push(a.ok ? `ok: AD and finite differences agree (${rule})` : `FAILED: AD and finite differences disagree (${rule}): max abs error ${formatNumber(a.maxAbsError, 4)}, max rel error ${formatNumber(a.maxRelError, 4)}`);
    return { text: lines.join('\n'), passed: a.ok };
  },
};

type TraceAnswer = AnswerOf<'/trace'>;
type TraceStep = TraceAnswer['steps'][number];

/**
 * The symbol of each operator primitive (`add` → `+`): the expression language's own table
 * (OPERATOR_FUNCTIONS in src/engine/ops/functions.ts) written out here, because importing the
 * engine costs a second of start-up that a command answered by a server must not pay; a test
 * (test/cli/print.test.ts) fails when the two differ.
 */
export const OPERATOR_SYMBOLS: ReadonlyMap<string, string> = new Map([
  ['add', '+'],
  ['sub', '-'],
  ['mul', '*'],
  ['div', '/'],
  ['pow', '^'],
  ['matmul', '@'],
  ['lt', '<'],
  ['le', '<='],
  ['gt', '>'],
  ['ge', '>='],
  ['eq', '=='],
  ['ne', '!='],
]);

/** A step as the lecture writes it: `x1 + x2`, `exp(x1)`, `-x`; an input is `input`. */
function operation(step: Pick<TraceStep, 'op' | 'args'>, digits: number | undefined): string {
  const args = step.args.map((a) => (typeof a === 'number' ? formatNumber(a, digits) : a));
  const symbol = OPERATOR_SYMBOLS.get(step.op);
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
  show(answer, parsed) {
    const { steps, output, seeds } = answer as TraceAnswer;
    const digits = digitsOf(parsed, 6);
    const tensors = steps.some((s) => s.shape.length > 0);
    const header = ['step', 'operation', ...(tensors ? ['shape'] : []), 'value'];
    const forward = steps.some((s) => s.tangent !== undefined);
    const reverse = steps.some((s) => s.adjoint !== undefined);
    if (forward) header.push('tangent');
    if (reverse) header.push('adjoint');
    const cell = (v: unknown) => (v === undefined ? '' : formatInline(v as AnswerValue, digits));
    const rows = steps.map((s) => [
      s.id,
      operation(s, digits),
      ...(tensors ? [`[${s.shape.join(', ')}]`] : []),
      cell(s.value),
      ...(forward ? [cell(s.tangent)] : []),
      ...(reverse ? [cell(s.adjoint)] : []),
    ]);
    const notes = [`output: ${output}`];
    if (seeds.tangents !== undefined) notes.push(`tangent seeds: ${Object.entries(seeds.tangents).map(([n, v]) => `${n} = ${cell(v)}`).join(', ')}`);
    if (seeds.cotangent !== undefined) notes.push(`cotangent seed: ${cell(seeds.cotangent)}`);
    return { text: `${formatTable(header, rows)}\n\n${notes.join('; ')}`, passed: true };
  },
};

type NativeResult = Extract<AnswerOf<'/grade'>, { format: 'native' }>['results'][number];

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

const vjp: Command = {
  summary: 'the value and a vector-Jacobian product cᵀ·J (reverse mode, one pass)',
  usage: 'adjoint vjp <expr | @file> --at NAME=VALUE ... --cotangent VALUE [--wrt NAME ...]',
  notes: "The cotangent has the output's shape; cᵀ·∂f/∂x has x's shape.",
  options: { at: AT, wrt: WRT, cotangent: { type: 'string', value: 'VALUE', help: "the output's cotangent, of its shape: 1, '[1,0]' (or @file.json)" } },
  request(parsed) {
    const cotangent = str(parsed, 'cotangent');
    if (cotangent === undefined) throw new InputError("--cotangent is required: a value of the output's shape, e.g. --cotangent 1 or --cotangent '[1,0]'");
    return functionRequest(parsed, '/vjp', { cotangent: parseValue(readArgument(cotangent), '--cotangent') });
  },
  show(answer, parsed) {
    const { value, vjp: pulled } = answer as Exclude<AnswerOf<'/vjp'>, { results: unknown }>;
    const rows: [string, AnswerValue][] = [['value', value as AnswerValue], ...Object.entries(pulled).map(([name, v]): [string, AnswerValue] => [`cᵀ·∂f/∂${name}`, v as AnswerValue])];
    return { text: labelled(rows, digitsOf(parsed)).join('\n'), passed: true };
  },
};

const hvp: Command = {
  summary: 'the value, gradient and a Hessian-vector product H·v, without forming the Hessian',
  usage: 'adjoint hvp <expr | @file> --at NAME=VALUE ... --vector NAME=VALUE ... [--wrt NAME ...]',
  notes: "Inputs without a --vector get zero; (H·v) for x has x's shape.",
  options: {
    at: AT,
    wrt: WRT,
    vector: { type: 'string', multiple: true, value: 'NAME=VALUE', help: "the vector's part for an input, of its shape (repeat per input; or a JSON object, or @file.json)" },
  },
  request(parsed) {
    const vector = parseValues(list(parsed, 'vector'), '--vector');
    if (vector === undefined) throw new InputError('--vector is required: the direction, e.g. --vector x=1');
    return functionRequest(parsed, '/hvp', { vector });
  },
  show(answer, parsed) {
    const { value, gradient, hvp: product } = answer as Exclude<AnswerOf<'/hvp'>, { results: unknown }>;
    const rows: [string, AnswerValue][] = [
      ['value', value as AnswerValue],
      ...Object.entries(gradient).map(([name, g]): [string, AnswerValue] => [`∂f/∂${name}`, g as AnswerValue]),
      ...Object.entries(product).map(([name, h]): [string, AnswerValue] => [`(H·v) for ${name}`, h as AnswerValue]),
    ];
    return { text: labelled(rows, digitsOf(parsed)).join('\n'), passed: true };
  },
};

const SHAPE: OptionSpec = { type: 'string', multiple: true, value: 'NAME=DIMS', help: "an input's shape instead of its value: 'X=[4,2]', x=[] for a scalar (repeat per input)" };

/** `--shape X=[4,2]` as the `shapes` field: a list of non-negative integers per input. */
function shapesOf(parsed: Parsed): Record<string, number[]> | undefined {
  const shapes = parseValues(list(parsed, 'shape'), '--shape');
  if (shapes === undefined) return undefined;
  for (const [name, dims] of Object.entries(shapes)) {
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && (d as number) >= 0)) throw new InputError(`--shape ${name}: a shape is a list of sizes, e.g. ${name}=[4,2] (or ${name}=[] for a scalar)`);
  }
  return shapes as Record<string, number[]>;
}

/** The request of a command that needs only shapes: `<expr> [--at ... | --shape ...]`. */
function shapeRequest(parsed: Parsed, path: string, extra: Record<string, unknown> = {}): Request {
  if (parsed.positionals.length !== 1) throw new InputError(parsed.positionals.length === 0 ? "the function is missing: an expression in quotes, e.g. 'sin(x) * x', or @file" : `expected one expression, got ${parsed.positionals.length} arguments: put the expression in quotes`);
  const source = functionSource(parsed.positionals[0]!);
  const body = defined({ ...source, at: parseValues(list(parsed, 'at'), '--at'), shapes: shapesOf(parsed), ...extra });
  return { path, body, ...('expr' in source ? { source: source.expr } : {}) };
}

const analyze: Command = {
  summary: "every step's shape and cost, each mode's cost, the Jacobian's, and which mode to use",
  usage: 'adjoint analyze <expr | @file> [--at NAME=VALUE ... | --shape NAME=DIMS ...] [--wrt NAME ...]',
  notes: 'Only shapes matter: give values (--at) or shapes (--shape); with neither every input is a scalar.',
  options: { at: { ...AT, help: "an input's value (only its shape is used)" }, shape: SHAPE, wrt: WRT },
  request: (parsed) => shapeRequest(parsed, '/analyze', { wrt: list(parsed, 'wrt') }),
  show(answer) {
    const a = answer as AnswerOf<'/analyze'>;
    const count = (n: number) => n.toLocaleString('en-US');
    const rows = a.steps.map((step) => [
      step.id,
      operation(step, undefined),
      `[${step.shape.join(', ')}]`,
      count(step.flops),
      count(step.bytes),
      count(step.jvp.flops),
      count(step.vjp.flops),
      step.sharedWith !== undefined ? `= ${step.sharedWith}` : step.kept ? 'kept' : '',
    ]);
    const { cost } = a;
    const lines = [
      formatTable(['step', 'operation', 'shape', 'flops', 'bytes', 'jvp flops', 'vjp flops', 'reverse'], rows),
      '',
      `inputs: ${a.inputs.map((i) => `${i.name} [${i.shape.join(', ')}]${i.wrt ? '' : ' (not wrt)'}`).join(', ')}; output ${a.output} [${a.outputShape.join(', ')}]`,
      `one evaluation: ${count(cost.eval.flops)} flops; forward pass (jvp): +${count(cost.jvp.flops)}; reverse pass (vjp): +${count(cost.vjp.flops)}, keeping ${count(cost.reverseMemory)} bytes`,
      `the ${cost.jacobian.m} × ${cost.jacobian.n} Jacobian: forward ${cost.jacobian.forward.passes} passes, ${count(cost.jacobian.forward.flops)} flops; reverse ${cost.jacobian.reverse.passes} passes, ${count(cost.jacobian.reverse.flops)} flops`,
      `use ${a.recommendation.mode} mode: ${a.recommendation.reason}`,
    ];
    return { text: lines.join('\n'), passed: true };
  },
};

const graph: Command = {
  summary: 'the computational graph: Graphviz DOT on standard output, or an SVG file (--svg)',
  usage: 'adjoint graph <expr | @file> [--at NAME=VALUE ... | --shape NAME=DIMS ...] [--svg FILE]',
  notes: "With shapes (--at or --shape) every node shows its shape. The DOT renders with Graphviz: adjoint graph 'sin(x) * y' | dot -Tpng > graph.png",
  exactText: true,
  options: { at: { ...AT, help: "an input's value (only its shape is used)" }, shape: SHAPE, svg: { type: 'string', value: 'FILE', help: 'write the graph as SVG, laid out by the server, to FILE' } },
  request: (parsed) => shapeRequest(parsed, '/graph', { format: str(parsed, 'svg') === undefined ? 'dot' : 'svg' }),
  async show(answer, parsed) {
    const text = answer as string;
    const svg = str(parsed, 'svg');
    if (svg === undefined) return { text: text.replace(/\n$/, ''), passed: true };
    await writeAnswerFile(svg, text);
    return { text: `wrote ${svg} (${Buffer.byteLength(text)} bytes of SVG)`, passed: true };
  },
};

type OpsAnswer = AnswerOf<'/ops', 'get'>;

const ops: Command = {
  summary: 'the functions and operators expressions may use, with their value and derivative rules',
  usage: 'adjoint ops [NAME]',
  notes: 'With a NAME (sin, matmul, +), that function in full: its arguments, attributes and rules.',
  options: {},
  request(parsed) {
    if (parsed.positionals.length > 1) throw new InputError(`expected at most one function name, got ${parsed.positionals.length} arguments`);
    return { method: 'GET', path: '/ops' };
  },
  show(answer, parsed) {
    const { ops: functions, conventions } = answer as OpsAnswer;
    const name = parsed.positionals[0];
    if (name === undefined) {
      // One line per function: a long rule is cut (adjoint ops NAME shows it whole).
      const cut = (text: string) => (text.length <= 60 ? text : `${text.slice(0, 59)}…`);
      const rows = functions.map((op) => [op.name, op.operator ?? '', String(op.arity), cut(op.value)]);
      return { text: [formatTable(['name', 'operator', 'arity', 'value'], rows), '', ...conventions].join('\n'), passed: true };
    }
    const op = functions.find((f) => f.name === name || f.operator === name);
    if (op === undefined) throw new InputError(`no function or operator ${name}: adjoint ops lists them all`);
    const lines = [
      `${op.name}${op.operator === undefined ? '' : ` (the operator ${op.operator})`}: ${op.arity === 'list' ? 'one list of tensors' : `${op.arity} tensor argument${op.arity === 1 ? '' : 's'}`}${op.composite ? '; lowered to several primitives' : ''}`,
      `value:      ${op.value}`,
      `derivative: ${op.derivative}`,
      ...op.attrs.map((attr) => `attribute ${attr.name} (${attr.kind}${attr.optional ? ', optional' : ''}): ${attr.about}`),
    ];
    return { text: lines.join('\n'), passed: true };
  },
};

export const COMMANDS: ReadonlyMap<string, Command> = new Map([
  ['eval', evaluate],
  ['grad', grad],
  ['jvp', jvp],
  ['vjp', vjp],
  ['jacobian', jacobian],
  ['hessian', hessian],
  ['hvp', hvp],
  ['check', check],
  ['trace', trace],
  ['analyze', analyze],
  ['graph', graph],
  ['ops', ops],
  ['grade', grade],
  ['probe', probe],
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

/** 4 for a request the service refused as wrong (4xx), 3 for one it could not take now or at all (5xx, 429, 408). */
export function exitCodeOf(status: number): number {
  return status >= 500 || status === 429 || status === 408 ? EXIT.unreachable : EXIT.problem;
}

