// The lecture's tables, graded cell by cell against the /trace tables. A wrong cell that is right
// given the student's own earlier numbers (values and tangents of its arguments going forward, the
// adjoints of its consumers going backward) gets credit: one slip is charged once.

import { formatShape, shapesEqual, type Tensor } from '../engine/tensor/tensor.js';
import { readValue, type Answers } from './answers.js';
import { allClose, describeMismatch, firstMismatch, formatValue, type Tolerance } from './compare.js';
import type { Reference, Row } from './reference.js';
import type { StepRules } from './rules.js';
import type { Sheet } from './sheet.js';

export type ForwardCell = 'value' | 'tangent';
const FORWARD_CELLS: readonly ForwardCell[] = ['value', 'tangent'];

export interface TableContext {
  ref: Reference;
  rules: StepRules;
  tol: Tolerance;
}

const NO_POINT = 'the request gives no point `at`, so tables cannot be graded';

function readCell(raw: unknown, part: string, ctx: TableContext, sheet: Sheet): Tensor | undefined {
  return readValue(raw, part, ctx.ref.prepared.limits.maxTensorElements, sheet);
}

/** Rows by index, each given at most once and naming a step; the rest are format errors. */
function readRows<T extends { id: string }>(kind: string, rows: readonly T[], ctx: TableContext, sheet: Sheet): Map<number, T> {
  const byIndex = new Map<number, T>();
  for (const row of rows) {
    const index = ctx.ref.rowById.get(row.id);
    if (index === undefined) {
      sheet.error(`${kind}.${row.id}`, `there is no step '${row.id}': the steps are ${ctx.ref.stepNames()}`);
    } else if (byIndex.has(index)) {
      sheet.error(`${kind}.${row.id}`, `row '${row.id}' is given twice`);
    } else {
      byIndex.set(index, row);
    }
  }
  return byIndex;
}

/** A given cell of the right shape, else undefined. */
function fitting(given: Tensor | undefined, reference: Tensor): Tensor | undefined {
  return given !== undefined && shapesEqual(given.shape, reference.shape) ? given : undefined;
}

function sameNumbers(a: Tensor, b: Tensor): boolean {
  return a === b || (a.data.length === b.data.length && a.data.every((v, k) => Object.is(v, b.data[k]!)));
}

function shapeMessage(what: string, given: Tensor, expected: Tensor): string {
  return `expected ${what} of shape ${formatShape(expected.shape)}, given shape ${formatShape(given.shape)}`;
}

/** The student's numbers for one row: what they gave, or what their numbers imply where they gave none. */
interface Own {
  tensor: Tensor;
  given: boolean;
  /** Differs from the reference at all (then later rows are recomputed from it). */
  tainted: boolean;
}

/** "x2 tangent = 0.0707", for a student's number named in feedback. */
function ownLabel(name: string, own: Own): string {
  return `${name} = ${formatValue(own.tensor)}${own.given ? '' : ' (implied by your numbers)'}`;
}

export function gradeForwardTable(ctx: TableContext, answer: NonNullable<Answers['forwardTrace']>, required: ReadonlyMap<number, ReadonlySet<ForwardCell>>, sheet: Sheet): void {
  const tables = ctx.ref.tables;
  if (tables === undefined) return sheet.error('forwardTrace', NO_POINT);
  const rows = readRows('forwardTrace', answer, ctx, sheet);
  const given: Record<ForwardCell, Map<number, Tensor>> = { value: new Map(), tangent: new Map() };
  for (const [index, row] of rows) {
    for (const cell of FORWARD_CELLS) {
      if (row[cell] === undefined) continue;
      const t = readCell(row[cell], `forwardTrace.${row.id}.${cell}`, ctx, sheet);
      if (t !== undefined) given[cell].set(index, t);
    }
  }
  // The student's numbers, filled in row by row in evaluation order.
  const own: Record<ForwardCell, Own[]> = { value: [], tangent: [] };
  const ownTensors = (cell: ForwardCell): Tensor[] => own[cell].map((o) => o.tensor);
  let firstWrong: string | undefined;
  const carried: string[] = [];
  for (const row of ctx.ref.rows) {
    // The row as the student's earlier numbers make it (computed once, when needed).
    const tainted = isStep(row) && row.args.some((a) => 'row' in a && (own.value[a.row]!.tainted || own.tangent[a.row]!.tainted));
    let implied: { value: Tensor; tangent: Tensor } | undefined;
    const fromOwn = (cell: ForwardCell): Tensor | undefined => {
      if (!tainted) return undefined;
      implied ??= ctx.rules.forward(row, ownTensors('value'), ownTensors('tangent'));
      return implied[cell];
    };
    for (const cell of FORWARD_CELLS) {
      const part = `forwardTrace.${row.id}.${cell}`;
      const name = `forward table, row ${row.id}: ${cell}`;
      const g = given[cell].get(row.index);
      const expected = tables[cell][row.index]!;
      if (g === undefined) {
        if (required.get(row.index)?.has(cell) && !sheet.errors.some((e) => e.part === part)) {
          sheet.fail(part, name, `Row ${row.id}: the ${cell} is required but was not given.`);
          firstWrong ??= `${row.id} (${cell}): not given`;
        }
      } else if (!shapesEqual(g.shape, expected.shape)) {
        sheet.fail(part, name, `Row ${row.id}: ${shapeMessage(`a ${cell}`, g, expected)}.`);
        firstWrong ??= `${row.id} (${cell}): ${shapeMessage(`a ${cell}`, g, expected)}`;
      } else {
        const mismatch = firstMismatch(g, expected, ctx.tol);
        // Error carried forward: after a wrong number among its arguments, the row is judged by
        // what the student's own numbers give. With every argument right, the reference counts.
        const cells = cell === 'value' ? (['value'] as const) : FORWARD_CELLS;
        const wrongArgs =
          mismatch === undefined
            ? []
            : row.args.flatMap((arg) =>
                'row' in arg
                  ? cells.filter((c) => !allClose(own[c][arg.row]!.tensor, tables[c][arg.row]!, ctx.tol)).map((c) => ownLabel(`${ctx.ref.rows[arg.row]!.id} ${c}`, own[c][arg.row]!))
                  : [],
              );
        const recomputed = wrongArgs.length > 0 ? fromOwn(cell) : undefined;
        if (mismatch === undefined) {
          sheet.pass(part, name, `Right: ${formatValue(expected)}.`);
        } else if (recomputed !== undefined && allClose(g, recomputed, ctx.tol)) {
          sheet.pass(
            part,
            name,
            `Right given your own earlier numbers (${unique(wrongArgs).join(', ')}): from them the ${cell} is ${formatValue(recomputed)} ` +
              `(the reference has ${formatValue(expected)}). Error carried forward: no point lost.`,
          );
          carried.push(`${row.id} ${cell}`);
        } else {
          const would = recomputed === undefined ? '' : ` From your own earlier numbers it would be ${formatValue(recomputed)}.`;
          sheet.fail(part, name, `Row ${row.id}, ${cell}: ${describeMismatch(mismatch, expected.shape)}.${would}`);
          firstWrong ??= `${row.id} (${cell}): ${describeMismatch(mismatch, expected.shape)}`;
        }
      }
      const mine = fitting(g, expected);
      const tensor = mine ?? fromOwn(cell) ?? expected;
      own[cell].push({ tensor, given: mine !== undefined, tainted: !sameNumbers(tensor, expected) });
    }
  }
  summarize(sheet, 'Forward table', firstWrong, carried, 'earlier values');
}

export function gradeReverseTable(ctx: TableContext, answer: NonNullable<Answers['reverseTrace']>, required: ReadonlySet<number>, sheet: Sheet): void {
  const tables = ctx.ref.tables;
  if (tables === undefined) return sheet.error('reverseTrace', NO_POINT);
  const rows = readRows('reverseTrace', answer, ctx, sheet);
  const given = new Map<number, Tensor>();
  for (const [index, row] of rows) {
    const t = readCell(row.adjoint, `reverseTrace.${row.id}.adjoint`, ctx, sheet);
    if (t !== undefined) given.set(index, t);
  }
  const consumers = consumersOf(ctx.ref.rows);
  const active = activeRows(ctx.ref.rows);
  // The student's adjoints, filled in row by row in the reverse pass's order.
  const own = new Array<Own>(ctx.ref.rows.length);
  let firstWrong: string | undefined;
  const carried: string[] = [];
  for (const row of [...ctx.ref.rows].reverse()) {
    const part = `reverseTrace.${row.id}.adjoint`;
    const name = `reverse table, row ${row.id}: adjoint`;
    const g = given.get(row.index);
    const expected = tables.adjoint[row.index]!;
    const users = consumers[row.index]!;
    // The adjoint as the student's later numbers make it (computed once, when needed).
    const tainted = active[row.index] && users.some((j) => own[j]!.tainted);
    let implied: Tensor | undefined;
    const fromOwn = (): Tensor | undefined => {
      if (!tainted) return undefined;
      if (implied === undefined) {
        implied = row.index === tables.output ? tables.cotangent : zerosLike(expected);
        for (const j of users) implied = add(implied, ctx.rules.reverse(ctx.ref.rows[j]!, tables.value, own[j]!.tensor).get(row.index)!);
      }
      return implied;
    };
    if (g === undefined) {
      if (required.has(row.index) && !sheet.errors.some((e) => e.part === part || e.part === `reverseTrace.${row.id}`)) {
        sheet.fail(part, name, `Row ${row.id}: the adjoint is required but was not given.`);
        firstWrong ??= `${row.id}: not given`;
      }
    } else if (!shapesEqual(g.shape, expected.shape)) {
      sheet.fail(part, name, `Row ${row.id}: ${shapeMessage('an adjoint', g, expected)}.`);
      firstWrong ??= `${row.id}: ${shapeMessage('an adjoint', g, expected)}`;
    } else {
      const mismatch = firstMismatch(g, expected, ctx.tol);
      // Error carried forward: after a wrong adjoint of a step that uses the row, the row is judged
      // by the sum of the student's own adjoints of those steps pulled back.
      const wrongUsers = mismatch === undefined ? [] : users.filter((j) => !allClose(own[j]!.tensor, tables.adjoint[j]!, ctx.tol));
      const recomputed = wrongUsers.length > 0 ? fromOwn() : undefined;
      if (mismatch === undefined) {
        sheet.pass(part, name, `Right: ${formatValue(expected)}.`);
      } else if (recomputed !== undefined && allClose(g, recomputed, ctx.tol)) {
        const named = wrongUsers.map((j) => ownLabel(ctx.ref.rows[j]!.id, own[j]!));
        sheet.pass(
          part,
          name,
          `Right given your own adjoints of the steps that use ${row.id} (${named.join(', ')}): from them the adjoint is ` +
            `${formatValue(recomputed)} (the reference has ${formatValue(expected)}). Error carried forward: no point lost.`,
        );
        carried.push(row.id);
      } else {
        const would = recomputed === undefined ? '' : ` From your own adjoints of the steps that use it, it would be ${formatValue(recomputed)}.`;
        const hint =
          row.index !== tables.output && users.length > 1
            ? ` ${row.id} is used by ${users.length} steps (${users.map((j) => ctx.ref.rows[j]!.id).join(', ')}): its adjoint sums a term from each.`
            : '';
        sheet.fail(part, name, `Row ${row.id}, adjoint: ${describeMismatch(mismatch, expected.shape)}.${would}${hint}`);
        firstWrong ??= `${row.id}: ${describeMismatch(mismatch, expected.shape)}`;
      }
    }
    const mine = fitting(g, expected);
    const tensor = mine ?? fromOwn() ?? expected;
    own[row.index] = { tensor, given: mine !== undefined, tainted: !sameNumbers(tensor, expected) };
  }
  summarize(sheet, 'Reverse table', firstWrong, carried, 'adjoints of later steps');
}

export function gradeShapes(ctx: TableContext, answer: NonNullable<Answers['shapes']>, required: ReadonlySet<number>, sheet: Sheet): void {
  const given = new Map<number, number[]>();
  for (const [id, shape] of Object.entries(answer)) {
    const index = ctx.ref.rowById.get(id);
    if (index === undefined) sheet.error(`shapes.${id}`, `there is no step '${id}': the steps are ${ctx.ref.stepNames()}`);
    else given.set(index, shape);
  }
  let firstWrong: string | undefined;
  for (const row of ctx.ref.rows) {
    const part = `shapes.${row.id}`;
    const name = `shape of ${row.id}`;
    const shape = given.get(row.index);
    if (shape === undefined) {
      if (required.has(row.index)) {
        sheet.fail(part, name, `The shape of ${row.id} is required but was not given.`);
        firstWrong ??= `${row.id}: not given`;
      }
      continue;
    }
    if (shapesEqual(shape, row.shape)) {
      sheet.pass(part, name, `Right: ${formatShape(row.shape)}.`);
    } else {
      const message = `expected ${formatShape(row.shape)}, given ${formatShape(shape)}`;
      sheet.fail(part, name, `${row.id}: ${message}.`);
      firstWrong ??= `${row.id}: ${message}`;
    }
  }
  if (firstWrong !== undefined) sheet.note(`Shapes: the first wrong one is ${firstWrong}.`);
}

function summarize(sheet: Sheet, table: string, firstWrong: string | undefined, carried: readonly string[], from: string): void {
  const parts: string[] = [];
  if (firstWrong !== undefined) parts.push(`the first wrong row is ${firstWrong}`);
  if (carried.length > 0) parts.push(`${carried.join(', ')} ${carried.length === 1 ? 'is' : 'are'} right given your own ${from} (error carried forward)`);
  if (parts.length > 0) sheet.note(`${table}: ${parts.join('; ')}.`);
}

/** A step computed from others (not an input or a constant): it can be recomputed from a student's numbers. */
function isStep(row: Row): boolean {
  return row.node.op !== 'input' && row.node.op !== 'const';
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

/** For each row, the rows that use it, in evaluation order. */
function consumersOf(rows: readonly Row[]): number[][] {
  const consumers: number[][] = rows.map(() => []);
  for (const row of rows) {
    for (const arg of row.args) {
      if ('row' in arg && !consumers[arg.row]!.includes(row.index)) consumers[arg.row]!.push(row.index);
    }
  }
  return consumers;
}

/** Rows that depend on an input: the others (constants) have zero adjoint. */
function activeRows(rows: readonly Row[]): boolean[] {
  const active: boolean[] = [];
  for (const row of rows) active.push(row.node.op === 'input' || row.args.some((a) => 'row' in a && active[a.row]));
  return active;
}

function zerosLike(t: Tensor): Tensor {
  return { shape: t.shape, data: new Float64Array(t.data.length) };
}

function add(a: Tensor, b: Tensor): Tensor {
  return { shape: a.shape, data: a.data.map((v, k) => v + b.data[k]!) };
}

