// How the command line shows numbers, tensors, tables and problems to a person. Answers arrive
// as the service's JSON: numbers, "NaN"/"Infinity"/"-Infinity" strings, and nested arrays.

import { visible } from './terminal.js';

/** A JSON value of an answer: a number, a non-finite number as a string, or nested arrays of them. */
export type AnswerValue = number | string | AnswerValue[];

/** `digits` significant digits, or the shortest text that reads back as the same float64 (`undefined`). */
export function formatNumber(x: number | string, digits?: number): string {
  // Non-finite numbers arrive as the strings "NaN", "Infinity", "-Infinity", already as printed.
  if (typeof x === 'string') return x;
  if (digits === undefined || !Number.isFinite(x)) return String(x);
  return String(Number(x.toPrecision(digits)));
}

/** Tensors of more elements than this are summarised, as NumPy's `threshold` print option (1000) does. */
export const SUMMARY_THRESHOLD = 1000;
/** A summarised axis shows this many entries at each end, as NumPy's `edgeitems` (3). */
const EDGE_ITEMS = 3;

/** A tensor's shape, read down its first elements (the service's arrays are rectangular); a number's is []. */
export function shapeOf(value: AnswerValue): number[] {
  const shape: number[] = [];
  for (let v: AnswerValue | undefined = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  return shape;
}

function countOf(shape: readonly number[]): number {
  let count = 1;
  for (const n of shape) count *= n;
  return count;
}

/** `[800, 800]` */
function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * How a tensor of `shape` is shown when it is summarised (NumPy's rule: more than 1000
 * elements): its shape first, then the corners. Undefined when it is shown whole.
 */
export function summaryOf(value: AnswerValue): string | undefined {
  if (!Array.isArray(value)) return undefined;
  const shape = shapeOf(value);
  const count = countOf(shape);
  if (count <= SUMMARY_THRESHOLD) return undefined;
  return `shape ${shapeText(shape)}, ${count} elements (summarised: --json or --out FILE for all of them)`;
}

/** A value on one line: `0.7`, `[[1, 2], [3, 4]]`; a large tensor summarised, its shape first. */
export function formatInline(value: AnswerValue, digits?: number): string {
  return render(value, digits, true);
}

/**
 * A tensor as NumPy prints it: one row per line, columns aligned, a blank line between the
 * matrices of a rank-3 tensor; a scalar or a vector on one line. Above SUMMARY_THRESHOLD
 * elements only the first and last EDGE_ITEMS entries of each long axis are shown, `...` between.
 */
export function formatTensor(value: AnswerValue, digits?: number): string {
  return render(value, digits, false);
}

/** One level of the nested array being written: the array, its depth, how many of its entries are shown, and the next. */
interface Frame {
  array: AnswerValue[];
  depth: number;
  shown: number;
  next: number;
  summarised: boolean;
}

/**
 * The text of `value`. Count first: the shape is read down the first elements, so a tensor of no
 * elements is described by its shape without a look at its (perhaps 10^10) empty rows, and a
 * large one is summarised before anything is built. Then one walk over an explicit stack (no
 * recursion over the rank, no spread of a large array) writes the parts; the numbers are padded
 * to the widest shown, as NumPy aligns columns.
 */
function render(value: AnswerValue, digits: number | undefined, inline: boolean): string {
  if (!Array.isArray(value)) return leafText(value, digits);
  const shape = shapeOf(value);
  const count = countOf(shape);
  if (count === 0) return shape.length === 1 ? '[]' : `[] (shape ${shapeText(shape)})`;
  const summarise = count > SUMMARY_THRESHOLD;
  const rank = shape.length;
  const align = !inline && rank > 1;
  const parts: string[] = [];
  const leaves: number[] = [];
  let width = 0;
  const frame = (array: AnswerValue[], depth: number): Frame => {
    const summarised = summarise && array.length > 2 * EDGE_ITEMS;
    return { array, depth, shown: summarised ? 2 * EDGE_ITEMS + 1 : array.length, next: 0, summarised };
  };
  const stack: Frame[] = [frame(value, 0)];
  parts.push('[');
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next === top.shown) {
      parts.push(']');
      stack.pop();
      continue;
    }
    const k = top.next++;
    if (k > 0) parts.push(inline || top.depth >= rank - 1 ? ', ' : `,${'\n'.repeat(rank - top.depth - 1)}${' '.repeat(top.depth + 1)}`);
    // A summarised axis: entries 0..2, then `...`, then the last three.
    if (top.summarised && k === EDGE_ITEMS) {
      parts.push('...');
      continue;
    }
    const index = top.summarised && k > EDGE_ITEMS ? top.array.length - (2 * EDGE_ITEMS + 1 - k) : k;
    const element = top.array[index]!;
    if (Array.isArray(element)) {
      parts.push('[');
      stack.push(frame(element, top.depth + 1));
      continue;
    }
    const text = leafText(element, digits);
    if (text.length > width) width = text.length;
    leaves.push(parts.length);
    parts.push(text);
  }
  if (align) for (const at of leaves) parts[at] = parts[at]!.padStart(width);
  const text = parts.join('');
  return inline && summarise ? `shape ${shapeText(shape)} ${text}` : text;
}

/** A number, or the name of a non-finite one; anything else an answer should not hold, as JSON. */
function leafText(value: unknown, digits: number | undefined): string {
  return typeof value === 'number' || typeof value === 'string' ? formatNumber(value, digits) : JSON.stringify(value) ?? String(value);
}

/**
 * `label  value` lines, labels padded alike; a multi-line tensor starts on the next line,
 * indented; a summarised one says its shape on the label's line.
 */
export function labelled(entries: [label: string, value: AnswerValue][], digits?: number): string[] {
  let width = 0;
  for (const [label] of entries) width = Math.max(width, label.length);
  return entries.map(([label, value]) => {
    const text = formatTensor(value, digits);
    const summary = summaryOf(value);
    if (summary !== undefined) return `${label}  ${summary}\n${text.replace(/^(?=.)/gm, '  ')}`;
    if (!text.includes('\n')) return `${label.padEnd(width)}  ${text}`;
    return `${label}\n${text.replace(/^(?=.)/gm, '  ')}`;
  });
}

/** A plain-text table: columns padded to their widest cell, a rule under the header. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h) => h.length);
  for (const row of rows) row.forEach((cell, c) => (widths[c] = Math.max(widths[c] ?? 0, cell.length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Where a problem points in the expression: the line, and a caret under the column. */
export function caretUnder(source: string, position: { line: number; column: number }): string | undefined {
  const line = source.split(/\r?\n/)[position.line - 1];
  if (line === undefined) return undefined;
  const gutter = `${position.line} | `;
  // Shown as the terminal will show it (control characters as escapes), so the caret stays under its character.
  const text = visible(line);
  // Tabs stay tabs so that the caret lines up however the terminal sets its tab stops.
  const pad = visible(line.slice(0, Math.max(0, position.column - 1))).replace(/[^\t]/g, ' ');
  return `${gutter}${text}\n${' '.repeat(gutter.length - 2)}| ${pad}^`;
}

/** An RFC 9457 problem as the service answers it (README "Errors"). */
export interface Problem {
  status?: number;
  code?: string;
  title?: string;
  detail?: string;
  position?: { line: number; column: number };
  node?: string;
  errors?: { path: string; message: string }[];
}

/** A problem for a person: its code and message, each listed issue, and a caret under the position in `source`. */
export function formatProblem(problem: Problem, source: string | undefined): string {
  const lines = [`error: ${problem.code ?? 'error'}${problem.status === undefined ? '' : ` (${problem.status})`}: ${problem.detail ?? problem.title ?? ''}`];
  // The detail repeats a single issue; several are listed one per line.
  if (problem.errors !== undefined && problem.errors.length > 1) for (const issue of problem.errors) lines.push(`  ${issue.path === '' ? '(body)' : issue.path}: ${issue.message}`);
  if (problem.node !== undefined) lines.push(`  at node ${problem.node}`);
  return withPosition(lines, problem.position, source);
}

/** A warning of an answer (a NaN or infinity, and where it arose), with a caret under its position. */
export function formatWarning(warning: { message: string; position?: { line: number; column: number } }, source: string | undefined): string {
  return withPosition([`warning: ${warning.message}`], warning.position, source);
}

function withPosition(lines: string[], position: { line: number; column: number } | undefined, source: string | undefined): string {
  if (position !== undefined) {
    lines.push(`  at line ${position.line}, column ${position.column}:`);
    const caret = source === undefined ? undefined : caretUnder(source, position);
    if (caret !== undefined) lines.push(caret.replace(/^/gm, '  '));
  }
  return lines.join('\n');
}
