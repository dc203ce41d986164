// GET /ops: every function expressions and graphs accept, with its value and derivative rules in
// words — the lecture's "Operation / Value update / Derivative update" table, read off the op table.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { describeFunctions } from '../src/engine/ops/catalog.js';
import { DIFFERENTIATION_TAG } from './differentiate.js';

const OpSchema = z.object({
  name: z.string(),
  arity: z.union([z.int(), z.literal('list')]).describe('Tensor arguments, or `list` for one list of tensors (stack, concat)'),
  attrs: z.array(z.object({ name: z.string(), kind: z.string(), optional: z.boolean(), about: z.string() })),
  value: z.string().describe('The value rule'),
  derivative: z.string().describe('The derivative rule'),
  operator: z.string().optional().describe('The operator of the expression language that calls it'),
  composite: z.boolean().describe('Lowered to several primitives; its derivative follows from theirs'),
});

const catalog = describeFunctions();

const ops: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/ops',
    {
      schema: {
        operationId: 'getOps',
        tags: [DIFFERENTIATION_TAG],
        summary: 'The functions and operators, with their value and derivative rules',
        response: { 200: z.object({ ops: z.array(OpSchema), conventions: z.array(z.string()) }) },
      },
    },
    async () => catalog,
  );
};

export default ops;
