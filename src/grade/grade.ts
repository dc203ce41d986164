// POST /grade (README "Grading"): a reference function and a class's answers in, a result per
// submission out. The reference and the check points are the request's; each submission is
// graded on its own, so one that cannot be read is reported as such and the batch goes on.

import { EngineError } from '../engine/errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor/tensor.js';
import { formatShape, shapesEqual } from '../engine/tensor/tensor.js';
import { readAnswers, readValue } from './answers.js';
import { allClose, comparableShape, describeMismatch, factorHint, firstMismatch, formatNumber, formatValue, type Tolerance } from './compare.js';
import { toFormat } from './formats.js';
import { Budget, evaluate, Formulas } from './formula.js';
import { isUnavailable, Reference } from './reference.js';
import { StepRules } from './rules.js';
import { Sheet } from './sheet.js';
import { gradeForwardTable, gradeReverseTable, gradeShapes, type ForwardCell, type TableContext } from './tables.js';
import { GRADE_DEFAULTS, type FormatError, type GradeAnswer, type GradeLimits, type GradeRequest, type GradeResult, type GradeTest } from './types.js';

/** What `required` asks of every submission. */
interface Requirements {
  value: boolean;
  gradient: Set<string>;
  derivative: Set<string>;
  forwardTrace: Map<number, Set<ForwardCell>>;
  reverseTrace: Set<number>;
  shapes: Set<number>;
  /** Row ids named alone: required in each table a submission gives. */
  rows: number[];
}

interface Context extends TableContext {
  formulas: Formulas;
  formulaTol: Tolerance;
  required: Requirements;
  /** The question's parts, a point each (undefined: every answer given is one). */
  requiredParts: ReadonlySet<string> | undefined;
  budget: Budget;
}

export function grade(engine: Engine, request: GradeRequest, limits: GradeLimits): GradeAnswer {
  if (request.submissions.length > limits.maxSubmissions) {
    throw new EngineError(
      'limit_exceeded',
      `${request.submissions.length} submissions, more than the limit of ${limits.maxSubmissions} per request (GRADE_MAX_SUBMISSIONS): send them in batches`,
      { path: ['submissions'] },
    );
  }
  const budget = new Budget(limits.maxFlops);
  const ref = new Reference(engine, request, budget);
  const tol = { rtol: request.rtol ?? GRADE_DEFAULTS.rtol, atol: request.atol ?? GRADE_DEFAULTS.atol };
  const formulaTol = { rtol: request.formulaRtol ?? GRADE_DEFAULTS.formulaRtol, atol: request.formulaAtol ?? GRADE_DEFAULTS.formulaAtol };
  const required = readRequired(request.required ?? [], ref);
  const ctx: Context = {
    ref,
    tol,
    formulaTol,
    budget,
    rules: new StepRules(ref.rows, budget),
    required,
    requiredParts: requiredPartsOf(required, ref),
    formulas: new Formulas({
      inputs: ref.inputs,
      limits: ref.prepared.limits,
      maxLength: GRADE_DEFAULTS.formulaMaxLength,
      maxCost: Math.max(GRADE_DEFAULTS.formulaMaxFlops, 20 * ref.gradientCost()),
      budget,
    }),
  };
  const results = request.submissions.map((submission, i) => gradeSubmission(ctx, submission, i));
  const format = request.format ?? 'native';
  return {
    format,
    results: results.map((r) => toFormat(r, format, request.gradescope)),
    points: ref.echoPoints(),
    settings: { points: ref.pointCount, seed: request.seed ?? GRADE_DEFAULTS.seed, ranges: ref.ranges, ...tol, formulaRtol: formulaTol.rtol, formulaAtol: formulaTol.atol },
  };
}

function readRequired(entries: readonly string[], ref: Reference): Requirements {
  const required: Requirements = { value: false, gradient: new Set(), derivative: new Set(), forwardTrace: new Map(), reverseTrace: new Set(), shapes: new Set(), rows: [] };
  const allRows = ref.rows.map((r) => r.index);
  entries.forEach((entry, i) => {
    const fail = (message: string): never => {
      throw new EngineError('unknown_input', `required[${i}] ('${entry}'): ${message}`, { path: ['required', i] });
    };
    const [kind, id, cell, ...rest] = entry.split('.');
    const row = (): number[] => {
      if (id === undefined) return allRows;
      const index = ref.rowById.get(id);
      return index === undefined ? fail(`there is no step '${id}' (the steps are ${ref.stepNames()})`) : [index];
    };
    const inputs = (): string[] => {
      if (id === undefined) return ref.inputs.map((x) => x.name);
      return ref.isInput(id) ? [id] : fail(`'${id}' is not an input (${ref.inputNames()})`);
    };
    const needsTables = (): void => {
      if (ref.tables === undefined) fail('tables need the point `at`, and the request gives none');
    };
    if (rest.length > 0) fail('expected kind.id or kind.id.cell');
    switch (kind) {
      case 'value':
        if (id !== undefined) fail('value has no parts');
        required.value = true;
        return;
      case 'gradient':
      case 'derivative':
        if (cell !== undefined) fail(`${kind} has one part per input`);
        for (const name of inputs()) required[kind].add(name);
        return;
      case 'forwardTrace': {
        needsTables();
        if (cell !== undefined && cell !== 'value' && cell !== 'tangent') fail("a forward table's cells are value and tangent");
        for (const index of row()) {
          const cells = required.forwardTrace.get(index) ?? new Set<ForwardCell>();
          if (cell === undefined || cell === 'value') cells.add('value');
          if (cell === undefined || cell === 'tangent') cells.add('tangent');
          required.forwardTrace.set(index, cells);
        }
        return;
      }
      case 'reverseTrace':
        needsTables();
        if (cell !== undefined && cell !== 'adjoint') fail("a reverse table's cell is adjoint");
        for (const index of row()) required.reverseTrace.add(index);
        return;
      case 'shapes':
        if (cell !== undefined) fail('a shape has no parts');
        for (const index of row()) required.shapes.add(index);
        return;
      default: {
        const index = ref.rowById.get(entry);
        if (index === undefined) fail('it names neither a kind of answer nor a step (qualify a step as forwardTrace.<id>, reverseTrace.<id> or shapes.<id>)');
        required.rows.push(index!);
      }
    }
  });
  return required;
}

function gradeSubmission(ctx: Context, submission: GradeRequest['submissions'][number], index: number): GradeResult {
  const sheet = new Sheet();
  const { answers, errors } = readAnswers(withShorthand(submission.answers, ctx.ref));
  for (const e of errors) sheet.error(e.part, e.message);
  const { required, ref } = ctx;

  if (answers.value !== undefined) gradeValue(ctx, answers.value, sheet);
  else if (required.value && !sheet.errors.some((e) => e.part.startsWith('value'))) sheet.fail('value', 'value', 'The value is required but was not given.');

  gradePerInput(ctx, 'gradient', answers.gradient, sheet, (name, raw) => gradeGradient(ctx, name, raw, sheet));
  gradePerInput(ctx, 'derivative', answers.derivative, sheet, (name, source) => gradeDerivative(ctx, name, source, sheet));

  // A row required by id alone is required in each table given; when no table is given, it is missing.
  const tablesGiven = answers.forwardTrace !== undefined || answers.reverseTrace !== undefined || answers.shapes !== undefined;
  const forwardRequired = new Map(required.forwardTrace);
  const reverseRequired = new Set(required.reverseTrace);
  const shapesRequired = new Set(required.shapes);
  for (const index of required.rows) {
    if (answers.forwardTrace !== undefined) forwardRequired.set(index, new Set(['value', 'tangent']));
    if (answers.reverseTrace !== undefined) reverseRequired.add(index);
    if (answers.shapes !== undefined) shapesRequired.add(index);
    if (!tablesGiven) {
      const id = ref.rows[index]!.id;
      sheet.fail(id, `row ${id}`, `Row ${id} is required but was not answered.`);
    }
  }
  if (answers.forwardTrace !== undefined || forwardRequired.size > 0) gradeForwardTable(ctx, answers.forwardTrace ?? [], forwardRequired, sheet);
  if (answers.reverseTrace !== undefined || reverseRequired.size > 0) gradeReverseTable(ctx, answers.reverseTrace ?? [], reverseRequired, sheet);
  if (answers.shapes !== undefined || shapesRequired.size > 0) gradeShapes(ctx, answers.shapes ?? {}, shapesRequired, sheet);
  // A row required by id alone is one part: right when it is right in every table given.
  if (tablesGiven) {
    for (const index of required.rows) {
      const id = ref.rows[index]!.id;
      const cells = sheet.tests.filter((t) => t.part === `shapes.${id}` || t.part.startsWith(`forwardTrace.${id}.`) || t.part.startsWith(`reverseTrace.${id}.`));
      const wrong = cells.filter((t) => t.status === 'failed').length;
      if (cells.length > 0 && wrong === 0) sheet.pass(id, `row ${id}`, `Row ${id}: right in every table given.`);
      else sheet.fail(id, `row ${id}`, `Row ${id}: ${wrong} of ${cells.length} cells wrong or not given.`);
    }
  }

  return resultOf(submission.id ?? index, sheet, ctx.requiredParts);
}

/**
 * The parts `required` asks of every submission, as tests name them (`derivative.x`,
 * `forwardTrace.x2.value`, a step id alone for its row): the question's maximum, one point each.
 * Undefined when the request requires nothing: then every answer given is a part.
 */
function requiredPartsOf(required: Requirements, ref: Reference): ReadonlySet<string> | undefined {
  const parts = new Set<string>();
  const id = (index: number) => ref.rows[index]!.id;
  if (required.value) parts.add('value');
  for (const name of required.gradient) parts.add(`gradient.${name}`);
  for (const name of required.derivative) parts.add(`derivative.${name}`);
  for (const [index, cells] of required.forwardTrace) for (const cell of cells) parts.add(`forwardTrace.${id(index)}.${cell}`);
  for (const index of required.reverseTrace) parts.add(`reverseTrace.${id(index)}.adjoint`);
  for (const index of required.shapes) parts.add(`shapes.${id(index)}`);
  for (const index of required.rows) parts.add(id(index));
  return parts.size === 0 ? undefined : parts;
}

/** With one input, `derivative: "2*x"` and `gradient: 0.5` mean that input's answer. */
function withShorthand(raw: unknown, ref: Reference): unknown {
  if (typeof raw !== 'object' || raw === null || ref.inputs.length !== 1) return raw;
  const name = ref.inputs[0]!.name;
  const answers = { ...(raw as Record<string, unknown>) };
  if (typeof answers.derivative === 'string') answers.derivative = { [name]: answers.derivative };
  if (typeof answers.gradient === 'number' || Array.isArray(answers.gradient)) answers.gradient = { [name]: answers.gradient };
  return answers;
}

/** Each input's answer in the inputs' order, then the required ones not given; a key that is not an input is a format error. */
function gradePerInput<T>(ctx: Context, kind: 'gradient' | 'derivative', given: Record<string, T> | undefined, sheet: Sheet, gradeOne: (name: string, answer: T) => void): void {
  for (const name of Object.keys(given ?? {})) {
    if (!ctx.ref.isInput(name)) sheet.error(`${kind}.${name}`, `'${name}' is not an input: the inputs are ${ctx.ref.inputNames()}`);
  }
  for (const { name } of ctx.ref.inputs) {
    const answer = given !== undefined && Object.hasOwn(given, name) ? given[name] : undefined;
    if (answer !== undefined) gradeOne(name, answer);
    else if (ctx.required[kind].has(name) && !sheet.errors.some((e) => e.part === kind)) {
      sheet.fail(`${kind}.${name}`, `${kind} with respect to ${name}`, `The ${kind} with respect to ${name} is required but was not given.`);
    }
  }
}

function readNumber(ctx: Context, raw: unknown, part: string, sheet: Sheet): Tensor | undefined {
  return readValue(raw, part, ctx.ref.prepared.limits.maxTensorElements, sheet);
}

function gradeValue(ctx: Context, raw: unknown, sheet: Sheet): void {
  const expected = ctx.ref.valueAt();
  if (isUnavailable(expected)) return sheet.error('value', `the value cannot be graded: ${expected.unavailable}`);
  const given = readNumber(ctx, raw, 'value', sheet);
  if (given === undefined) return;
  const verdict = compareNumbers(given, expected, ctx.tol);
  if (verdict === undefined) return sheet.pass('value', 'value', `Right: ${formatValue(expected)}.`);
  sheet.fail('value', 'value', `Value: ${verdict}.`);
  sheet.note(`Value: ${verdict}.`);
}

function gradeGradient(ctx: Context, name: string, raw: unknown, sheet: Sheet): void {
  const part = `gradient.${name}`;
  const testName = `gradient with respect to ${name}`;
  const gradient = ctx.ref.gradientAt();
  if (isUnavailable(gradient)) return sheet.error(part, `the gradient cannot be graded: ${gradient.unavailable}`);
  const given = readNumber(ctx, raw, part, sheet);
  if (given === undefined) return;
  const expected = gradient.get(name)!;
  const verdict = compareNumbers(given, expected, ctx.tol);
  if (verdict === undefined) return sheet.pass(part, testName, `Right: ${formatValue(expected)}.`);
  const known = ctx.ref
    .mistakesAtPoint(name)
    .filter(({ value }) => allClose(given, value, ctx.tol, true))
    .map(({ mistake }) => mistake.message);
  const sign = allClose(given, negate(expected), ctx.tol) ? ['It is the negative of the right answer: check the sign.'] : [];
  const output = [`∂f/∂${name}: ${verdict}.`, ...known, ...sign].join(' ');
  sheet.fail(part, testName, output);
  sheet.note(output);
}

/** Undefined when `given` is right, else what differs. */
function compareNumbers(given: Tensor, expected: Tensor, tol: Tolerance): string | undefined {
  if (!shapesEqual(given.shape, expected.shape)) return `expected shape ${formatShape(expected.shape)}, given shape ${formatShape(given.shape)}`;
  const mismatch = firstMismatch(given, expected, tol);
  return mismatch === undefined ? undefined : describeMismatch(mismatch, expected.shape);
}

function negate(t: Tensor): Tensor {
  return { shape: t.shape, data: t.data.map((v) => -v) };
}

function gradeDerivative(ctx: Context, name: string, source: string, sheet: Sheet): void {
  const part = `derivative.${name}`;
  const testName = `derivative with respect to ${name}`;
  const formula = ctx.formulas.read(source);
  if (!formula.ok) return sheet.error(part, `the formula for ∂f/∂${name} cannot be read: ${formula.error.message}`, formula.error.position);
  const points = ctx.ref.partPoints(name);
  if (isUnavailable(points)) return sheet.error(part, `∂f/∂${name} cannot be checked: ${points.unavailable}`);
  const expectedShape = ctx.ref.inputs.find((i) => i.name === name)!.shape;
  const samples: { given: Tensor; expected: Tensor; point: Map<string, Tensor> }[] = [];
  for (const [k, point] of points.points.entries()) {
    const given = evaluate(formula, point, ctx.budget);
    if (!comparableShape(given.shape, expectedShape, true)) {
      const output = `∂f/∂${name} has the shape of ${name}, ${formatShape(expectedShape)}, but your formula gives shape ${formatShape(given.shape)}.`;
      sheet.fail(part, testName, output);
      sheet.note(output);
      return;
    }
    samples.push({ given, expected: points.gradients[k]!.get(name)!, point });
  }
  const wrong = samples.findIndex((s) => firstMismatch(s.given, s.expected, ctx.formulaTol, true) !== undefined);
  if (wrong < 0) return sheet.pass(part, testName, `Right: equal to ∂f/∂${name} at all ${samples.length} points checked.`);
  const { given, expected, point } = samples[wrong]!;
  const m = firstMismatch(given, expected, ctx.formulaTol, true)!;
  const element = expected.shape.length === 0 ? '' : `, element ${formatShape(m.index)}`;
  const where = samples.length === 1 ? formatPoint(point) : `point ${wrong + 1} of ${samples.length} (${formatPoint(point)})`;
  const known = ctx.ref
    .mistakesAt(name, points)
    .filter(({ values }) => samples.every((s, k) => allClose(s.given, values[k]!, ctx.formulaTol, true)))
    .map(({ mistake }) => mistake.message);
  const hint = known.length === 0 ? factorHint(samples, ctx.formulaTol) : undefined;
  const output = [
    `∂f/∂${name} at ${where}${element}: expected ${formatNumber(m.expected)}, your formula gives ${formatNumber(m.given)}.`,
    ...known,
    ...(hint === undefined ? [] : [hint]),
  ].join(' ');
  sheet.fail(part, testName, output);
  sheet.note(output);
}

function formatPoint(point: ReadonlyMap<string, Tensor>): string {
  return [...point].map(([name, t]) => `${name} = ${formatValue(t)}`).join(', ');
}

/**
 * The submission's result. With `required`, the maximum is its parts, a point each whatever was
 * answered: a required part not graded (missing, or unreadable) is a failed test, and an answer
 * not required is graded for feedback at no points. Without it, every answer given is a point,
 * and one that cannot be read a failed test saying why. So the maximum is the same in every format.
 */
function resultOf(id: string | number, sheet: Sheet, parts: ReadonlySet<string> | undefined): GradeResult {
  const tests: GradeTest[] = [];
  const counted = new Set<string>();
  for (const test of sheet.tests) {
    const counts = parts === undefined || (parts.has(test.part) && !counted.has(test.part));
    if (counts) counted.add(test.part);
    tests.push(counts ? test : { ...test, score: 0, max_score: 0, output: `${test.output} (Not asked for: no points.)` });
  }
  // An error is about a part when either names the other or a part of it (`forwardTrace` and
  // `forwardTrace.x2.value`); `answers` is about every part. Looked up by the parts' prefixes:
  // a submission may bring thousands of errors.
  const errorAbout = new Map<string, FormatError>();
  for (const e of sheet.errors) if (!errorAbout.has(e.part)) errorAbout.set(e.part, e);
  const errorFor = (part: string): FormatError | undefined => errorAbout.get('answers') ?? prefixesOf(part).map((p) => errorAbout.get(p)).find((e) => e !== undefined);
  for (const part of parts ?? []) {
    if (counted.has(part)) continue;
    const error = errorFor(part);
    const output = error === undefined ? `${part} is required but was not given.` : `Not graded: ${error.message}.`;
    tests.push({ name: `${part}: ${error === undefined ? 'not given' : 'not graded'}`, part, score: 0, max_score: 1, status: 'failed', output });
  }
  const tested = new Set(tests.map((t) => t.part));
  const testedWithin = new Set(tests.flatMap((t) => prefixesOf(t.part)));
  for (const e of sheet.errors) {
    // Already a test (the part's, or one within it), or a test of a whole it is part of.
    if (testedWithin.has(e.part) || (e.part === 'answers' && tests.length > 0) || prefixesOf(e.part).some((p) => tested.has(p))) continue;
    tests.push({ name: `${e.part}: not graded`, part: e.part, score: 0, max_score: parts === undefined ? 1 : 0, status: 'failed', output: `Not graded: ${e.message}.` });
    tested.add(e.part);
    for (const p of prefixesOf(e.part)) testedWithin.add(p);
  }
  const score = tests.reduce((s, t) => s + t.score, 0);
  const maxScore = tests.reduce((s, t) => s + t.max_score, 0);
  const lines: string[] = [];
  // An engine error's message already says where (line and column).
  for (const e of sheet.errors) lines.push(`Not graded: ${e.part}: ${e.message}.`);
  lines.push(...sheet.notes);
  if (lines.length === 0) {
    const n = tests.length;
    // Failed tests without a note (required answers not given) are said as they are, never "all right".
    const failed = tests.filter((t) => t.status === 'failed');
    if (failed.length > 0) lines.push(`${n - failed.length} of ${n} answers are right.`, ...failed.map((t) => t.output));
    else lines.push(n === 0 ? 'Nothing to grade: the submission gives no answers.' : n === 1 ? 'The answer is right.' : `All ${n} answers are right.`);
  }
  return { id, score, max_score: maxScore, gradable: sheet.errors.length === 0, output: lines.join('\n'), tests, format_errors: sheet.errors };
}

/** `a`, `a.b`, `a.b.c` for the part `a.b.c`. */
function prefixesOf(part: string): string[] {
  const names = part.split('.');
  return names.map((_, i) => names.slice(0, i + 1).join('.'));
}
