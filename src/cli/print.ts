// How the command line shows numbers, tensors, tables and problems to a person. Answers arrive
// as the service's JSON: numbers, "NaN"/"Infinity"/"-Infinity" strings, and nested arrays.

/** A JSON value of an answer: a number, a non-finite number as a string, or nested arrays of them. */
export type AnswerValue = number | string | AnswerValue[];

/** `digits` significant digits, or the shortest text that reads back as the same float64 (`undefined`). */
export function formatNumber(x: number | string, digits?: number): string {
  // Non-finite numbers arrive as the strings "NaN", "Infinity", "-Infinity", already as printed.
  if (typeof x === 'string') return x;
  if (digits === undefined || !Number.isFinite(x)) return String(x);
  return String(Number(x.toPrecision(digits)));
}

/** A value on one line: `0.7`, `[[1, 2], [3, 4]]`. */
export function formatInline(value: AnswerValue, digits?: number): string {
  if (!Array.isArray(value)) return formatNumber(value, digits);
  return `[${value.map((v) => formatInline(v, digits)).join(', ')}]`;
}

/** The leaves of a nested array, in row-major order. */
function leavesOf(value: AnswerValue): (number | string)[] {
  const leaves: (number | string)[] = [];
  const pending: AnswerValue[] = [value];
  // Iterative, depth first, left to right: a stack popped from the end, children pushed reversed.
  while (pending.length > 0) {
    const next = pending.pop()!;
    if (Array.isArray(next)) for (let i = next.length - 1; i >= 0; i--) pending.push(next[i]!);
    else leaves.push(next);
  }
  return leaves;
}

/**
 * A tensor as NumPy prints it: one row per line, columns aligned, a blank line between the
 * matrices of a rank-3 tensor; a scalar or a vector on one line.
 */
export function formatTensor(value: AnswerValue, digits?: number): string {
  if (!Array.isArray(value) || !value.some(Array.isArray)) return formatInline(value, digits);
  // A loop, not Math.max(...leaves): a spread of a million leaves overflows the stack. An empty
  // tensor has no leaves (width 0) and prints as its nested empty rows, as many as the answer holds.
  let width = 0;
  for (const x of leavesOf(value)) width = Math.max(width, formatNumber(x, digits).length);
  const render = (v: AnswerValue, depth: number): string => {
    if (!Array.isArray(v)) return formatNumber(v, digits).padStart(width);
    if (!v.some(Array.isArray)) return `[${v.map((x) => render(x, depth + 1)).join(', ')}]`;
    const separator = `,${'\n'.repeat(rankOf(v) - 1)}${' '.repeat(depth + 1)}`;
    return `[${v.map((x) => render(x, depth + 1)).join(separator)}]`;
  };
  return render(value, 0);
}

function rankOf(value: AnswerValue): number {
  let rank = 0;
  for (let v = value; Array.isArray(v); v = v[0]!) rank++;
  return rank;
}

/** `label  value` lines, labels padded alike; a multi-line tensor starts on the next line, indented. */
export function labelled(entries: [label: string, value: AnswerValue][], digits?: number): string[] {
  const width = Math.max(...entries.map(([label]) => label.length));
  return entries.map(([label, value]) => {
    const text = formatTensor(value, digits);
    if (!text.includes('\n')) return `${label.padEnd(width)}  ${text}`;
    return `${label}\n${text.replace(/^(?=.)/gm, '  ')}`;
  });
}

/** A plain-text table: columns padded to their widest cell, a rule under the header. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Where a problem points in the expression: the line, and a caret under the column. */
export function caretUnder(source: string, position: { line: number; column: number }): string | undefined {
  const text = source.split(/\r?\n/)[position.line - 1];
  if (text === undefined) return undefined;
  const gutter = `${position.line} | `;
  // Tabs stay tabs so that the caret lines up however the terminal sets its tab stops.
  const pad = text.slice(0, Math.max(0, position.column - 1)).replace(/[^\t]/g, ' ');
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
