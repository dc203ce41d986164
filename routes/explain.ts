// Seeing the computation (README "Seeing the computation"): the lecture's tables (/trace), shapes and costs
// (/analyze) and the graph picture (/graph). Schema in, one call into src/explain, answer out.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Trace } from '../src/explain/trace.js';
import { problemResponses, SourcePositionSchema } from '../src/service/problem.js';
import { sendAnswer } from './answer.js';
import { EncodingSchema, FunctionRequestSchema, ValueSchema, ValuesSchema, WarningSchema } from './schemas.js';

export const TEACHING_TAG = 'teaching';
const errors = problemResponses(400, 413, 415, 422, 429, 503);

/** One function at one point: no `points` batches here. */
const OneFunctionSchema = FunctionRequestSchema.omit({ points: true });

const ShapesSchema = z
  .record(z.string(), z.array(z.int().min(0)).max(32))
  .describe('The input shapes instead of values: `{ "X": [4, 2], "l": [2] }` (a scalar is `[]`); the inputs are its keys, in order');

const TraceRequest = OneFunctionSchema.extend({
  at: ValuesSchema.optional().describe('The point: a value per input; the inputs are its keys, in order. Required but for a symbolic table (then the inputs are the names the program reads, in order)'),
  mode: z.enum(['forward', 'reverse', 'both']).default('both').describe('Which table: tangents (forward), adjoints (reverse) or both (default)'),
  tangents: ValuesSchema.optional().describe('Forward mode: a tangent per input (others zero). Default: ones on the first wrt input, zeros elsewhere'),
  cotangent: ValueSchema.optional().describe('Reverse mode: the cotangent of the output. Default: ones'),
  encoding: EncodingSchema,
  symbolic: z
    .boolean()
    .default(false)
    .describe('Formulas: every step\'s value, tangent and adjoint as `{ text, latex }` (docs/symbolic.md); scalar programs only. With `at`, the numbers stand beside them'),
  simplify: z.boolean().default(true).describe('Symbolic tables: simplify the formulas with mathjs (false shows each adjoint as the sum over its parents, term by term)'),
});

const FormulaSchema = z.object({
  text: z.string().describe("In the service's expression syntax (it parses): tangents `dot_<id>`, adjoints `bar_<id>`, derivatives of an unspecified function `d_a(x)`, `d1_a(x, y)`"),
  latex: z.string().describe('For typesetting: `\\dot{x}_{1}`, `\\bar{x}_{1}`, `a\'(x)`, `\\partial_{1} a(x, y)`'),
});
const FormulasSchema = z.object({ value: FormulaSchema.optional(), tangent: FormulaSchema.optional(), adjoint: FormulaSchema.optional() });

const TraceResponse = z.object({
  steps: z
    .array(
      z.object({
        id: z.string().describe('The step: an input name, an assigned name, a graph node id, or a generated v<k>'),
        op: z.string().describe('The primitive (`input` for an input)'),
        args: z.array(z.union([z.string(), z.number()])).describe('Argument ids, or the number itself for a scalar constant'),
        shape: z.array(z.int()),
        value: ValueSchema.optional().describe('Absent only in a symbolic table without `at`'),
        tangent: ValueSchema.optional().describe('Forward mode: the tangent of this step'),
        adjoint: ValueSchema.optional().describe('Reverse mode: the adjoint ∂(cotangent · output)/∂(this step)'),
        position: SourcePositionSchema.optional().describe('Where the step is written in `expr`'),
        symbolic: FormulasSchema.extend({
          expanded: FormulasSchema.optional().describe('The same with every earlier step substituted: functions of the inputs (and the seeds) alone; a formula too big to show is left out (see `symbolic.notes`)'),
        })
          .optional()
          .describe("Symbolic tables: the step's value from its arguments, its tangent from theirs (forward), its adjoint as the sum over the steps that use it of their adjoint × the local partial (reverse)"),
      }),
    )
    .describe('One row per primitive of the function as written, in evaluation order'),
  output: z.string().describe('The id of the output step'),
  seeds: z.object({ tangents: ValuesSchema.optional(), cotangent: ValueSchema.optional() }).describe('The tangents and cotangent used'),
  warnings: z.array(WarningSchema).optional(),
  symbolic: z
    .object({
      simplified: z.boolean(),
      functions: z
        .array(z.object({ name: z.string(), arity: z.int(), derivatives: z.array(z.string()).describe('How its partials are written in `text`') }))
        .describe('The unspecified functions the program calls'),
      notes: z.array(z.string()).optional(),
    })
    .optional()
    .describe('Symbolic tables: how the formulas were made'),
});

const CostSchema = z.object({ flops: z.number(), bytes: z.number().describe('8 × (elements read + elements written)') });
const JacobianCostSchema = z.object({ passes: z.int(), flops: z.number() });

const AnalyzeRequest = OneFunctionSchema.extend({
  at: ValuesSchema.optional().describe('The point (only its shapes are used); or give `shapes`'),
  shapes: ShapesSchema.optional(),
});

const AnalyzeResponse = z.object({
  steps: z.array(
    z.object({
      id: z.string(),
      op: z.string(),
      args: z.array(z.union([z.string(), z.number()])),
      shape: z.array(z.int()).describe('The shape of this intermediate'),
      flops: z.number().describe('Evaluating this step'),
      bytes: z.number(),
      jvp: CostSchema.describe('Its forward-mode (tangent) rule, for one tangent'),
      vjp: CostSchema.describe('Its reverse-mode (adjoint) rule, for one cotangent'),
      kept: z.boolean().describe('Reverse mode keeps this value from the evaluation for its backward sweep'),
      sharedWith: z.string().optional().describe('An earlier step with the same value: evaluated once, so this one costs nothing'),
      position: SourcePositionSchema.optional(),
    }),
  ),
  output: z.string(),
  outputShape: z.array(z.int()),
  inputs: z.array(z.object({ name: z.string(), shape: z.array(z.int()), wrt: z.boolean() })),
  cost: z.object({
    eval: CostSchema.describe('One evaluation'),
    jvp: CostSchema.describe('One forward-mode pass: the tangent rules, on top of the evaluation'),
    vjp: CostSchema.describe('One reverse-mode pass: the adjoint rules, after the evaluation'),
    reverseMemory: z.number().describe('Bytes reverse mode keeps from the evaluation: the values its rules read (inputs included)'),
    jacobian: z
      .object({
        n: z.int().describe('Total size of the wrt inputs'),
        m: z.int().describe('Size of the output'),
        forward: JacobianCostSchema.describe('n forward passes: eval + n × jvp flops'),
        reverse: JacobianCostSchema.describe('m reverse passes: eval + m × vjp flops'),
      })
      .describe('The full m × n Jacobian by either mode'),
  }),
  recommendation: z.object({
    mode: z.enum(['forward', 'reverse']).describe('forward when n < m, else reverse'),
    reason: z.string(),
  }),
});

const GraphRequest = OneFunctionSchema.omit({ wrt: true }).extend({
  format: z.enum(['dot', 'svg']).describe('Graphviz DOT text, or SVG laid out by Graphviz on the server'),
  at: ValuesSchema.optional().describe('The point (only its shapes are used)'),
  shapes: ShapesSchema.optional().describe('The input shapes (nodes then show every shape); with neither `at` nor `shapes` the inputs are taken as scalars and no shapes are shown'),
});

const explain: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/trace',
    {
      schema: {
        operationId: 'trace',
        tags: [TEACHING_TAG],
        summary: "The lecture's tables: every step's value, tangent (forward) and adjoint (reverse)",
        body: TraceRequest.meta({
          examples: [{ expr: 'x1 = W0 * x\nx2 = tanh(x1)\nx3 = W1 * x2\nx4 = x3 - y\nx5 = x4^2\nx5', at: { x: 1, W0: 2, W1: 1.2, y: 2 }, mode: 'both', tangents: { x: 1 } }],
        }),
        response: { 200: TraceResponse, ...errors },
      },
    },
    async (request, reply) => sendAnswer(reply, await app.compute.trace(request.body)) as Trace,
  );

  app.post(
    '/analyze',
    {
      schema: {
        operationId: 'analyze',
        tags: [TEACHING_TAG],
        summary: 'Shapes and costs of every step, of each mode and of the Jacobian; which mode to use',
        body: AnalyzeRequest.meta({
          examples: [
            {
              expr: 'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\nK1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\ny.T @ inv(K1 + K2) @ y',
              shapes: { X: [4, 2], l: [2], y: [4] },
            },
          ],
        }),
        response: { 200: AnalyzeResponse, ...errors },
      },
    },
    async (request) => app.compute.analyze(request.body),
  );

  app.post(
    '/graph',
    {
      schema: {
        operationId: 'graph',
        tags: [TEACHING_TAG],
        summary: 'The computational graph as Graphviz DOT or SVG',
        body: GraphRequest.meta({ examples: [{ expr: 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; sqrt(x3) + cos(x3)', format: 'svg' }] }),
        response: {
          200: {
            description: 'The graph: inputs (blue boxes), intermediates, the output (orange, double border); edges in the direction data flows',
            content: { 'text/vnd.graphviz': { schema: z.string() }, 'image/svg+xml': { schema: z.string() } },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const picture = await app.compute.graph(request.body, app.config.GRAPH_MAX_NODES);
      // The SVG is data, never a document that runs anything, even when opened on its own.
      return reply.type(picture.contentType).headers({ 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'", 'x-content-type-options': 'nosniff' }).send(picture.body);
    },
  );
};

export default explain;
