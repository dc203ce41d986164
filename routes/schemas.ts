// Request and response schemas of the differentiation endpoints (README "Differentiation endpoints"). Values are
// checked by the engine's own fast converter (rectangular, numeric, within limits), so here a
// Value is documented in full but accepted as any JSON, and a million-element array costs no
// per-element schema work.

import { z } from 'zod';

/**
 * A tensor as base64 of its float64 elements (documentation only: values are read by the engine's
 * converter, and answers are written by the service, so no schema work is done per value).
 */
export const EncodedArraySchema = z
  .object({
    dtype: z.literal('float64').describe('The element type: only "float64"'),
    shape: z.array(z.int().nonnegative()).describe('The dimensions ([] for a scalar); their product is the number of elements'),
    data: z
      .string()
      .describe('Base64 (standard alphabet, padded) of the elements as little-endian float64, row-major: 8 bytes per element. NaN and ±Infinity are allowed'),
  })
  .meta({
    id: 'EncodedArray',
    description:
      'A tensor as base64 of its float64 elements, as Tesseract Core\'s json+base64 writes arrays. Accepted wherever a Value is; answers use it for every tensor of rank ≥ 1 when the request says `"encoding": "base64"`.',
    examples: [{ dtype: 'float64', shape: [2], data: 'AAAAAAAA8D8AAAAAAAAAQA==' }],
  });

export const ValueSchema = z.unknown().meta({
  id: 'Value',
  description:
    'A number, a rectangular nested array of numbers (any rank), or an EncodedArray (base64 of the float64 elements). Non-finite numbers travel as the strings "NaN", "Infinity", "-Infinity" (or as their bits in an EncodedArray).',
  anyOf: [
    { type: 'number' },
    { type: 'string', enum: ['NaN', 'Infinity', '-Infinity'] },
    { type: 'array', items: { $ref: '#/components/schemas/Value' } },
    { $ref: '#/components/schemas/EncodedArray' },
  ],
  examples: [0.7, [1, -2, 3], [[1, 0], [0, 1]], { dtype: 'float64', shape: [2], data: 'AAAAAAAA8D8AAAAAAAAAQA==' }],
});

/**
 * A value per input name. Checked here only for being an object: a record schema would visit every
 * key (tens of thousands in a hostile body) before the engine's MAX_INPUTS check could refuse it;
 * the engine checks the count first and then each value, with its path.
 */
export const ValuesSchema = z
  .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
    error: 'must be an object with a value per input name',
  })
  .meta({ type: 'object', additionalProperties: { $ref: '#/components/schemas/Value' } });

/** A number, or "NaN", "Infinity", "-Infinity" where it is not finite. */
export const NumberSchema = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);

export const GraphSchema = z
  .object({
    nodes: z
      .array(
        z.object({
          id: z.string().min(1).describe('The node id; arguments refer to it'),
          op: z.string().min(1).describe('A function name from GET /ops, or `const` (with attrs.value)'),
          args: z
            .array(z.union([z.string(), z.number()]))
            .optional()
            .describe('Node ids, input names (keys of `at`) or numeric literals'),
          attrs: z.record(z.string(), z.unknown()).optional().describe('Op options: axis, keepdims, shape, index, n, value, ...'),
        }),
      )
      .min(1),
    output: z.string().min(1).describe('The id of the output node (or an input name)'),
  })
  .meta({ id: 'Graph', description: 'A JSON computational graph of primitives' });

export const WarningSchema = z
  .object({
    code: z.string(),
    message: z.string(),
    node: z.string().optional(),
    position: z.object({ line: z.int(), column: z.int() }).optional(),
  })
  .meta({ id: 'Warning', description: 'Where a NaN or infinity first arose, and similar notes' });

const warnings = z.array(WarningSchema).optional();

/** The function and the point(s): each pair is a choice, and the service reads exactly one of each. */
const functionFields = {
  expr: z.string().optional().describe('The function as a program of the expression language'),
  graph: GraphSchema.optional(),
  at: ValuesSchema.optional().describe('The point: a value per input; the inputs are its keys, in order'),
  points: z.array(ValuesSchema).min(1).optional().describe('Several points (instead of `at`); the answer is `{ results: [...] }`'),
};

/** The function and the point(s): every differentiation endpoint takes these. */
export const FunctionRequestSchema = z.object({
  ...functionFields,
  wrt: z.array(z.string()).optional().describe('The inputs to differentiate with respect to (default: all, in the order of `at`)'),
});

type FunctionField = keyof typeof functionFields;
const CHOICES: readonly (readonly [FunctionField, FunctionField])[] = [
  ['expr', 'graph'],
  ['at', 'points'],
];

/**
 * The choices (`expr` or `graph`, `at` or `points`) a request body built from
 * FunctionRequestSchema still offers: those whose two fields it kept as they are. The service
 * refuses neither and both with its own messages; the OpenAPI document states them as `oneOf`
 * (src/service/openapi.ts), so a generated client's request type is a union.
 */
export function choicesOf(body: unknown): (readonly [string, string])[] {
  if (!(body instanceof z.ZodObject)) return [];
  const shape: Record<string, unknown> = body.shape;
  return CHOICES.filter((pair) => pair.every((name) => shape[name] === functionFields[name]));
}

/** How an answer writes its tensors: the differentiation endpoints, /trace and /probe take it. */
export const EncodingSchema = z
  .enum(['json', 'base64'])
  .optional()
  .describe(
    'How the answer writes tensors. json (default): nested arrays, non-finite numbers as "NaN", "Infinity", "-Infinity". base64: every tensor of rank ≥ 1 as an EncodedArray {dtype, shape, data}, with its exact float64 bits; scalars (rank 0) stay plain numbers, and so do the other numbers of an answer (shape, passes, errors, tolerances)',
  );

/** The function, the point(s) and the answer's encoding: the differentiation endpoints' request. */
export const DifferentiationRequestSchema = FunctionRequestSchema.extend({ encoding: EncodingSchema });

/** A single answer, or `{ results }` for a `points` request. */
export function answer<T extends z.ZodRawShape>(shape: T, description: string) {
  const one = z.object({ ...shape, warnings });
  return z.union([one, z.object({ results: z.array(one) })]).describe(description);
}

export const EvalResponse = answer({ value: ValueSchema, shape: z.array(z.int()) }, 'The value and its shape');
export const GradResponse = answer({ value: ValueSchema, gradient: ValuesSchema }, 'The value and the gradient per `wrt` input');
export const JvpResponse = answer({ value: ValueSchema, tangent: ValueSchema }, 'The value and its tangent (forward mode)');
export const VjpResponse = answer({ value: ValueSchema, vjp: ValuesSchema }, 'The value and the cotangent pulled back to each `wrt` input (reverse mode)');
export const JacobianResponse = answer(
  {
    value: ValueSchema,
    jacobian: ValuesSchema.describe('jacobian[a] has shape shape(output) ++ shape(a)'),
    mode: z.enum(['forward', 'reverse']),
    passes: z.int().describe('Forward passes (one per input coordinate) or reverse passes (one per output element), computed as one batched pass'),
  },
  'The Jacobian per `wrt` input',
);
export const HessianResponse = answer(
  { value: ValueSchema, gradient: ValuesSchema, hessian: z.record(z.string(), ValuesSchema).describe('hessian[a][b] has shape shape(a) ++ shape(b)') },
  'The value, gradient and Hessian blocks',
);
export const HvpResponse = answer({ value: ValueSchema, gradient: ValuesSchema, hvp: ValuesSchema }, 'The Hessian-vector product per `wrt` input');
export const CheckResponse = answer(
  {
    value: ValueSchema,
    ok: z.boolean().describe('Every |AD − FD| ≤ atol + rtol·|FD|'),
    gradient: ValuesSchema,
    numeric: z.union([ValuesSchema, z.array(NumberSchema)]).describe('Finite-difference gradient per input, or per random direction'),
    errors: z.record(z.string(), z.object({ maxAbsError: NumberSchema, maxRelError: NumberSchema })).optional(),
    directions: z.array(z.object({ ad: NumberSchema, numeric: NumberSchema })).optional(),
    maxAbsError: NumberSchema,
    maxRelError: NumberSchema.describe('Largest relative error among the elements whose absolute error exceeds atol'),
    evaluations: z.int(),
    rtol: z.number(),
    atol: z.number(),
    method: z.enum(['central', 'forward']),
  },
  'AD against finite differences',
);
