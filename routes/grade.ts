// POST /grade (README "Grading"): a reference and a class's answers in, a result per submission out.

import type { FastifyTypeProviderDefault } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AnswersDocSchema } from '../src/grade/answers.js';
import { GRADE_DEFAULTS, GRADESCOPE_OUTPUT_FORMATS, GRADESCOPE_VISIBILITIES, type GradeRequest } from '../src/grade/types.js';
import { problemResponses, SourcePositionSchema } from '../src/service/problem.js';
import { sendAnswer } from './answer.js';
import { GraphSchema, ValueSchema, ValuesSchema } from './schemas.js';

export const GRADING_TAG = 'grading';
const errors = problemResponses(400, 413, 415, 422, 429, 503);
const D = GRADE_DEFAULTS;

// Each submission's answers are read by the grader, so one malformed submission is reported as
// not gradable instead of failing the batch here: the schema below documents the answers it reads,
// and says that anything else is taken too (and answered as a format error, not refused).
const { $schema: _, ...answersJsonSchema } = z.toJSONSchema(AnswersDocSchema, { io: 'input', unrepresentable: 'any' });
const AnswersDoc = z.unknown().meta({
  description:
    'Any of the kinds of answer; only what is given is graded (and what `required` names). Answers that cannot be read are not refused: the submission is answered not gradable, with a format error for each',
  anyOf: [
    { ...answersJsonSchema, title: 'GradeAnswers' },
    { title: 'Unreadable', description: 'Anything else: graded as not gradable, with its format errors' },
  ],
});

const tolerance = (what: string, dflt: number) => z.number().nonnegative().optional().describe(`${what} (default ${dflt})`);

export const GradeRequestSchema = z.object({
  reference: z
    .object({
      expr: z.string().optional().describe('The reference function as an expression'),
      graph: GraphSchema.optional(),
      feedback: z
        .array(
          z.object({
            expr: z.string().describe('A wrong formula students are expected to give'),
            message: z.string().describe('What a student whose formula matches it reads'),
            wrt: z.string().optional().describe('The input whose derivative it is about (default: any)'),
          }),
        )
        .optional()
        .describe('Known mistakes'),
    })
    .describe('The function students work on: exactly one of `expr` and `graph`'),
  at: ValuesSchema.optional().describe('The point of `value`, `gradient` and the tables; its keys are the inputs. Without it the inputs are the names the reference reads, scalars'),
  tangents: ValuesSchema.optional().describe('Seeds of the forward table, as in /trace (default: ones on the first input)'),
  cotangent: ValueSchema.optional().describe('Seed of the reverse table, as in /trace (default: ones)'),
  required: z
    .array(z.string())
    .optional()
    .describe(
      'Answers every submission must give; missing ones are failed tests: `value`, `gradient.x`, `derivative.x`, `forwardTrace.x2` (value and tangent), ' +
        '`forwardTrace.x2.tangent`, `reverseTrace.x2`, `shapes.K1`, a kind alone (every part of it), or a step id alone (that row in each table given)',
    ),
  points: z
    .union([z.int().min(1).max(D.maxPoints), z.array(ValuesSchema).min(1).max(D.maxPoints)])
    .optional()
    .describe(`How many random points a formula is checked at (default ${D.points}), or the points themselves`),
  seed: z.int().optional().describe(`Seed of the random points (default ${D.seed})`),
  ranges: z
    .record(z.string(), z.tuple([z.number(), z.number()]).refine(([lo, hi]) => lo <= hi, { error: 'a range is [lo, hi] with lo ≤ hi' }))
    .optional()
    .describe(`The range [lo, hi] of each input's random elements (default [${D.range.join(', ')}])`),
  rtol: tolerance('Relative tolerance for numbers and table cells', D.rtol),
  atol: tolerance('Absolute tolerance for numbers and table cells', D.atol),
  formulaRtol: tolerance('Relative tolerance for formulas', D.formulaRtol),
  formulaAtol: tolerance('Absolute tolerance for formulas', D.formulaAtol),
  format: z.enum(['native', 'gradescope', 'prairielearn']).optional().describe("The results' shape (default native)"),
  gradescope: z
    .object({
      visibility: z.enum(GRADESCOPE_VISIBILITIES).optional().describe('Who sees the result and its tests, and when (default visible)'),
      outputFormat: z.enum(GRADESCOPE_OUTPUT_FORMATS).optional().describe('How Gradescope shows `output` and the tests\' output: text (default) or md (Markdown)'),
    })
    .optional()
    .describe('With format gradescope: its results\' settings'),
  submissions: z
    .array(
      z.object({
        id: z.union([z.string(), z.number()]).optional().describe('Echoed in the result (default: the index in `submissions`)'),
        answers: AnswersDoc.optional(),
      }),
    )
    .describe('One result each, in order (at most GRADE_MAX_SUBMISSIONS)'),
}).refine((request) => request.gradescope === undefined || request.format === 'gradescope', {
  error: '`gradescope` settings need "format": "gradescope"',
  path: ['gradescope'],
});

const id = z.union([z.string(), z.number()]);
const status = z.enum(['passed', 'failed']);

const FormatErrorSchema = z
  .object({ part: z.string().describe('The answer: `derivative.x`, `forwardTrace.x2.value`'), message: z.string(), position: SourcePositionSchema.optional() })
  .meta({ id: 'GradeFormatError', description: 'An answer that could not be read (or that the request cannot grade): not marked wrong' });

const NativeResult = z.object({
  id,
  score: z.number(),
  max_score: z.number(),
  gradable: z.boolean().describe('False when part of the submission could not be read: do not record the score'),
  output: z.string().describe('A summary: the first wrong row, expected and given'),
  tests: z.array(
    z.object({ name: z.string(), part: z.string(), score: z.number(), max_score: z.number(), status, output: z.string().describe('What was expected, what was given') }),
  ),
  format_errors: z.array(FormatErrorSchema),
});

const visibility = z.enum(GRADESCOPE_VISIBILITIES);
const outputFormat = z.enum(GRADESCOPE_OUTPUT_FORMATS);

const GradescopeResult = z.object({
  score: z.number(),
  output: z.string(),
  output_format: outputFormat,
  test_output_format: outputFormat,
  visibility,
  tests: z.array(z.object({ name: z.string(), score: z.number(), max_score: z.number(), status, output: z.string(), visibility })),
  extra_data: z
    .object({ id, max_score: z.number(), gradable: z.boolean(), format_errors: z.array(FormatErrorSchema) })
    .describe('Stored by Gradescope, shown to no one: the submission, the maximum, and why it was not gradable'),
});

const PrairieLearnResult = z.object({
  id,
  gradable: z.boolean().describe('False: nothing to grade, or an answer that cannot be read; PrairieLearn then keeps the attempt'),
  score: z.number().min(0).max(1),
  message: z.string(),
  format_errors: z.array(z.string()).describe('What could not be read, a line each'),
  tests: z.array(z.object({ name: z.string(), points: z.number(), max_points: z.number(), message: z.string() })),
});

const common = {
  points: z.record(z.string(), z.array(ValuesSchema)).describe('The points each derivative formula was checked at, by input'),
  settings: z
    .object({
      points: z.int(),
      seed: z.int(),
      ranges: z.record(z.string(), z.tuple([z.number(), z.number()])),
      rtol: z.number(),
      atol: z.number(),
      formulaRtol: z.number(),
      formulaAtol: z.number(),
    })
    .describe('The settings used, defaults filled in'),
};

export const GradeResponseSchema = z.discriminatedUnion('format', [
  z.object({ format: z.literal('native'), results: z.array(NativeResult), ...common }),
  z.object({ format: z.literal('gradescope'), results: z.array(GradescopeResult).describe("Gradescope's results.json per submission"), ...common }),
  z.object({ format: z.literal('prairielearn'), results: z.array(PrairieLearnResult).describe("PrairieLearn's external-grader results per submission"), ...common }),
]);

const grade: FastifyPluginAsyncZod = async (app) => {
  // Without the Zod type provider's handler typing (its schemas still validate and serialise),
  // like the differentiation routes: the grader's answer is plain JSON data, or JSON a worker
  // already serialised, and the response schema documents and checks it.
  app.withTypeProvider<FastifyTypeProviderDefault>().post(
    '/grade',
    {
      schema: {
        operationId: 'grade',
        tags: [GRADING_TAG],
        summary: "Grade a class's answers against a reference: derivatives, tables and shapes, with feedback",
        body: GradeRequestSchema.meta({
          examples: [
            {
              reference: { expr: 'a = x; b = x; a * b', feedback: [{ expr: 'x', message: 'Only one factor was differentiated: the product rule has two terms.' }] },
              submissions: [
                { id: 's1', answers: { derivative: { x: 'x + x' } } },
                { id: 's2', answers: { derivative: { x: 'x' } } },
                { id: 's3', answers: { derivative: { x: '2*x +' } } },
              ],
            },
          ],
        }),
        response: { 200: GradeResponseSchema, ...errors },
      },
    },
    async (request, reply) =>
      sendAnswer(
        reply,
        await app.compute.grade(request.body as GradeRequest, {
          maxSubmissions: app.config.GRADE_MAX_SUBMISSIONS,
          maxFlops: app.config.GRADE_MAX_FLOPS,
        }),
      ),
  );
};

export default grade;
