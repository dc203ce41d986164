// A submission's answers, read kind by kind: a malformed kind becomes a format error of that
// submission (not gradable) instead of failing the whole batch at the schema.

import { z } from 'zod';
import { isEngineError } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor/tensor.js';
import { toTensor } from '../engine/values.js';
import type { Sheet } from './sheet.js';
import type { FormatError } from './types.js';

const value = z.unknown().describe('A Value: a number, or a rectangular nested array of numbers');

/**
 * An answer keyed by the names of inputs or steps (client text): read entry by entry into a
 * null-prototype object, so a key like `__proto__` is kept as an entry (Zod's record drops it) and a
 * lookup of a name like `toString` finds only what the student gave.
 */
interface PerName<V extends z.ZodType> {
  schema: z.ZodRecord<z.ZodString, V>;
  entry: V;
  error: string;
}

function perName<V extends z.ZodType>(entry: V, error: string, about: string): PerName<V> {
  return { schema: z.record(z.string(), entry, { error }).describe(about), entry, error };
}

const gradient = perName(value, 'the gradient must be an object with a Value per input', 'The gradient at `at`: a Value per input');
const derivative = perName(
  z.union([z.string(), z.number()], { error: 'a derivative must be a formula (a string)' }).transform(String),
  'the derivative must be an object with a formula per input',
  'A formula per input for the partial derivative, in the expression language, over the inputs',
);
const shapes = perName(z.array(z.int().min(0)), 'shapes must be an object with a shape (an array of sizes) per step', 'The shape of each named step');

const ANSWER_KINDS = {
  value: value.describe("The function's value at `at`"),
  gradient: gradient.schema,
  derivative: derivative.schema,
  forwardTrace: z
    .array(z.object({ id: z.string(), value: value.optional(), tangent: value.optional() }), { error: 'the forward table must be an array of rows { id, value, tangent }' })
    .describe('Rows of the forward-mode table (ids as /trace gives them)'),
  reverseTrace: z
    .array(z.object({ id: z.string(), adjoint: value }), { error: 'the reverse table must be an array of rows { id, adjoint }' })
    .describe('Rows of the reverse-mode table'),
  shapes: shapes.schema,
};

export const AnswersSchema = z.object({
  value: ANSWER_KINDS.value.optional(),
  gradient: ANSWER_KINDS.gradient.optional(),
  derivative: ANSWER_KINDS.derivative.optional(),
  forwardTrace: ANSWER_KINDS.forwardTrace.optional(),
  reverseTrace: ANSWER_KINDS.reverseTrace.optional(),
  shapes: ANSWER_KINDS.shapes.optional(),
});

/**
 * What a submission may send, for the documentation: the kinds above, and with a one-input
 * reference the shorthands `derivative: "2*x"` and `gradient: 0.5`, that input's answer alone
 * (grade.ts reads them so).
 */
export const AnswersDocSchema = AnswersSchema.extend({
  gradient: z.union([ANSWER_KINDS.gradient, z.union([z.number(), z.array(z.unknown())]).describe("With one input: that input's gradient alone")]).optional(),
  derivative: z.union([ANSWER_KINDS.derivative, z.string().describe("With one input: that input's derivative alone")]).optional(),
});

export type Answers = z.output<typeof AnswersSchema>;
export type AnswerKind = keyof typeof ANSWER_KINDS;
export const ANSWER_KIND_NAMES = Object.keys(ANSWER_KINDS) as AnswerKind[];

type Issue = { path: PropertyKey[]; message: string };
type Read = { ok: true; data: unknown } | { ok: false; issues: Issue[] };

function readWith(schema: z.ZodType, given: unknown): Read {
  const parsed = schema.safeParse(given);
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, issues: parsed.error.issues };
}

function readPerName<V extends z.ZodType>(kind: PerName<V>, given: unknown): Read {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) return { ok: false, issues: [{ path: [], message: kind.error }] };
  const data = Object.create(null) as Record<string, unknown>;
  const issues: Issue[] = [];
  for (const key of Object.keys(given)) {
    const parsed = kind.entry.safeParse((given as Record<string, unknown>)[key]);
    if (parsed.success) data[key] = parsed.data;
    else issues.push(...parsed.error.issues.map((issue) => ({ path: [key, ...issue.path], message: issue.message })));
  }
  return issues.length === 0 ? { ok: true, data } : { ok: false, issues };
}

/** How each kind of answer is read, by its name (a Map: a student's key never finds Object.prototype). */
const READERS: ReadonlyMap<string, (given: unknown) => Read> = new Map<AnswerKind, (given: unknown) => Read>([
  ['value', (given) => readWith(ANSWER_KINDS.value, given)],
  ['gradient', (given) => readPerName(gradient, given)],
  ['derivative', (given) => readPerName(derivative, given)],
  ['forwardTrace', (given) => readWith(ANSWER_KINDS.forwardTrace, given)],
  ['reverseTrace', (given) => readWith(ANSWER_KINDS.reverseTrace, given)],
  ['shapes', (given) => readPerName(shapes, given)],
]);

/** The answers that can be read, and a format error for each kind that cannot. */
export function readAnswers(raw: unknown): { answers: Answers; errors: FormatError[] } {
  const answers: Answers = {};
  const errors: FormatError[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    const none = raw === undefined || raw === null ? 'no answer was given: ' : '';
    errors.push({ part: 'answers', message: `${none}answers must be an object holding any of ${ANSWER_KIND_NAMES.join(', ')}` });
    return { answers, errors };
  }
  const entries = Object.entries(raw);
  // Nothing to grade is not a wrong answer: the submission is not gradable (PrairieLearn then keeps the attempt).
  if (entries.every(([, given]) => isEmpty(given))) {
    errors.push({ part: 'answers', message: `no answer was given: answers must hold any of ${ANSWER_KIND_NAMES.join(', ')}` });
    return { answers, errors };
  }
  for (const [kind, given] of entries) {
    const reader = READERS.get(kind);
    if (reader === undefined) {
      errors.push({ part: kind, message: `'${kind}' is not a kind of answer: the kinds are ${ANSWER_KIND_NAMES.join(', ')}` });
      continue;
    }
    const read = reader(given);
    if (read.ok) {
      (answers as Record<string, unknown>)[kind] = read.data;
    } else {
      for (const issue of read.issues) {
        errors.push({ part: [kind, ...issue.path.map(String)].join('.'), message: issue.message });
      }
    }
  }
  return { answers, errors };
}

/** An answer left blank: absent, null, an empty string, or an empty table or object. */
function isEmpty(given: unknown): boolean {
  if (given === undefined || given === null || given === '') return true;
  if (Array.isArray(given)) return given.length === 0;
  return typeof given === 'object' && Object.keys(given).length === 0;
}

/** A student's number (or array of numbers) at `part`; one that cannot be read is a format error of the sheet. */
export function readValue(raw: unknown, part: string, maxElements: number, sheet: Sheet): Tensor | undefined {
  try {
    return toTensor(raw, part.split('.'), maxElements);
  } catch (e) {
    if (!isEngineError(e)) throw e;
    sheet.error(part, e.message);
    return undefined;
  }
}
