// A submission's answers, read kind by kind: a malformed kind becomes a format error of that
// submission (not gradable) instead of failing the whole batch at the schema.

import { z } from 'zod';
import { isEngineError } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor/tensor.js';
import { toTensor } from '../engine/values.js';
import type { Sheet } from './sheet.js';
import type { FormatError } from './types.js';

const value = z.unknown().describe('A Value: a number, or a rectangular nested array of numbers');

const ANSWER_KINDS = {
  value: value.describe("The function's value at `at`"),
  gradient: z.record(z.string(), value, { error: 'the gradient must be an object with a Value per input' }).describe('The gradient at `at`: a Value per input'),
  derivative: z
    .record(z.string(), z.union([z.string(), z.number()], { error: 'a derivative must be a formula (a string)' }).transform(String), {
      error: 'the derivative must be an object with a formula per input',
    })
    .describe('A formula per input for the partial derivative, in the expression language, over the inputs'),
  forwardTrace: z
    .array(z.object({ id: z.string(), value: value.optional(), tangent: value.optional() }), { error: 'the forward table must be an array of rows { id, value, tangent }' })
    .describe('Rows of the forward-mode table (ids as /trace gives them)'),
  reverseTrace: z
    .array(z.object({ id: z.string(), adjoint: value }), { error: 'the reverse table must be an array of rows { id, adjoint }' })
    .describe('Rows of the reverse-mode table'),
  shapes: z
    .record(z.string(), z.array(z.int().min(0)), { error: 'shapes must be an object with a shape (an array of sizes) per step' })
    .describe('The shape of each named step'),
};

export const AnswersSchema = z.object({
  value: ANSWER_KINDS.value.optional(),
  gradient: ANSWER_KINDS.gradient.optional(),
  derivative: ANSWER_KINDS.derivative.optional(),
  forwardTrace: ANSWER_KINDS.forwardTrace.optional(),
  reverseTrace: ANSWER_KINDS.reverseTrace.optional(),
  shapes: ANSWER_KINDS.shapes.optional(),
});

export type Answers = z.output<typeof AnswersSchema>;
export type AnswerKind = keyof typeof ANSWER_KINDS;
export const ANSWER_KIND_NAMES = Object.keys(ANSWER_KINDS) as AnswerKind[];

/** The answers that can be read, and a format error for each kind that cannot. */
export function readAnswers(raw: unknown): { answers: Answers; errors: FormatError[] } {
  const answers: Answers = {};
  const errors: FormatError[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    errors.push({ part: 'answers', message: `answers must be an object holding any of ${ANSWER_KIND_NAMES.join(', ')}` });
    return { answers, errors };
  }
  for (const [kind, given] of Object.entries(raw)) {
    if (!(kind in ANSWER_KINDS)) {
      errors.push({ part: kind, message: `'${kind}' is not a kind of answer: the kinds are ${ANSWER_KIND_NAMES.join(', ')}` });
      continue;
    }
    const parsed = ANSWER_KINDS[kind as AnswerKind].safeParse(given);
    if (parsed.success) {
      (answers as Record<string, unknown>)[kind] = parsed.data;
    } else {
      for (const issue of parsed.error.issues) {
        errors.push({ part: [kind, ...issue.path.map(String)].join('.'), message: issue.message });
      }
    }
  }
  return { answers, errors };
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
