// A class's answers for `adjoint grade`, from a CSV (a row per student, a column per answer) or
// a JSON file, into the `submissions` of POST /grade. What a cell says is the grader's to judge:
// a cell that is not a number goes through as text, so that student's submission is reported as
// not gradable instead of the whole run failing.

import { extname } from 'node:path';
import { InputError, parseJson, readText } from './inputs.js';

export interface Submission {
  id?: string | number;
  answers: Record<string, unknown>;
}

/** The submissions in `path` (`-`: standard input): CSV by its `.csv` name or its content, else JSON. */
export function readSubmissions(path: string): Submission[] {
  const text = readText(path).replace(/^\uFEFF/, '');
  const looksJson = /^\s*[[{]/.test(text);
  if (extname(path).toLowerCase() === '.csv' || !looksJson) return submissionsFromCsv(parseCsv(text), path);
  return submissionsFromJson(parseJson(text, path), path);
}

/** `[{ id?, answers }]` or `{ "submissions": [...] }`, as POST /grade takes them. */
function submissionsFromJson(json: unknown, path: string): Submission[] {
  const list = Array.isArray(json) ? json : (json as { submissions?: unknown } | null)?.submissions;
  if (!Array.isArray(list)) throw new InputError(`${path}: expected an array of submissions [{ "id": ..., "answers": {...} }] or { "submissions": [...] }`);
  return list as Submission[];
}

/** RFC 4180: fields separated by commas, quoted with `"` when they hold commas, quotes or line breaks. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c !== '"') field += c;
      else if (text[i + 1] === '"') field += text[++i];
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  // Blank lines are no submissions.
  return rows.filter((r) => r.some((cell) => cell.trim() !== ''));
}

/** Where one column's cell goes in a submission's answers. */
type Column = (answers: Record<string, unknown>, cell: string) => void;

/**
 * The header names each column's answer as README "Grading" names parts: `id`, `value`,
 * `gradient.x`, `derivative.x` (or `derivative` for the only input), `forwardTrace.x2.value`,
 * `forwardTrace.x2.tangent`, `reverseTrace.x2` (its adjoint), `shapes.K1`.
 */
function columnFor(name: string, path: string): Column | 'id' {
  const [kind, step, field, ...rest] = name.trim().split('.');
  const known = (): never => {
    throw new InputError(
      `${path}: column "${name}" names no answer: use id, value, gradient.<input>, derivative.<input> (or derivative), ` +
        'forwardTrace.<step>.value, forwardTrace.<step>.tangent, reverseTrace.<step>, shapes.<step>',
    );
  };
  if (rest.length > 0) return known();
  if (kind === 'id' && step === undefined) return 'id';
  if (kind === 'value' && step === undefined) return (answers, cell) => (answers.value = numberOrText(cell));
  if (kind === 'derivative' && step === undefined) return (answers, cell) => (answers.derivative = cell);
  if (step === undefined || step === '') return known();
  const entry = (object: string, value: (cell: string) => unknown): Column => (answers, cell) => {
    const entries = (answers[object] ??= Object.create(null)) as Record<string, unknown>;
    entries[step] = value(cell);
  };
  const row = (table: string, key: string): Column => (answers, cell) => {
    const rows = (answers[table] ??= []) as Record<string, unknown>[];
    let found = rows.find((r) => r.id === step);
    if (found === undefined) rows.push((found = { id: step }));
    found[key] = numberOrText(cell);
  };
  if (field === undefined && kind === 'gradient') return entry('gradient', numberOrText);
  if (field === undefined && kind === 'derivative') return entry('derivative', (cell) => cell);
  if (field === undefined && kind === 'shapes') return entry('shapes', numberOrText);
  if (kind === 'forwardTrace' && (field === 'value' || field === 'tangent')) return row('forwardTrace', field);
  if (kind === 'reverseTrace' && (field === undefined || field === 'adjoint')) return row('reverseTrace', 'adjoint');
  return known();
}

/** A number or JSON array when the cell is one, else the text itself (for the grader to report). */
function numberOrText(cell: string): unknown {
  try {
    return parseJson(cell, 'cell');
  } catch {
    return cell;
  }
}

/** One submission per row after the header; an empty cell is an answer not given. */
function submissionsFromCsv(rows: string[][], path: string): Submission[] {
  const [header, ...body] = rows;
  if (header === undefined) throw new InputError(`${path}: no header row (e.g. id,derivative.x)`);
  const columns = header.map((name) => columnFor(name, path));
  return body.map((cells) => {
    const submission: Submission = { answers: {} };
    cells.forEach((raw, c) => {
      const column = columns[c];
      const cell = raw.trim();
      if (column === undefined) throw new InputError(`${path}: a row has more cells than the header has columns`);
      if (cell === '') return;
      if (column === 'id') submission.id = cell;
      else column(submission.answers, cell);
    });
    return submission;
  });
}
