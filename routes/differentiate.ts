// The differentiation endpoints (README "Differentiation endpoints"): schema in, one call into the engine, answer out.

import type { FastifyTypeProviderDefault } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Answer } from '../src/service/compute.js';
import { problemResponses } from '../src/service/problem.js';
import { sendAnswer } from './answer.js';
import {
  CheckResponse,
  DifferentiationRequestSchema,
  EvalResponse,
  GradResponse,
  HessianResponse,
  HvpResponse,
  JacobianResponse,
  JvpResponse,
  ValueSchema,
  ValuesSchema,
  VjpResponse,
} from './schemas.js';

export const DIFFERENTIATION_TAG = 'differentiation';

/** The lecture's f at 0.7, and its section 5.1 network: request examples for Swagger UI's "Try it out". */
const LECTURE_F = { expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } };
const NETWORK = { expr: 'tanh(W @ x)', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] } };
const example = <T extends z.ZodType>(schema: T, ...examples: Record<string, unknown>[]): T => schema.meta({ examples }) as T;
const errors = problemResponses(400, 413, 415, 422, 429, 503);

const differentiate: FastifyPluginAsyncZod = async (app) => {
  const post = <B extends z.ZodType, R extends z.ZodType>(
    url: string,
    summary: string,
    body: B,
    response: R,
    handler: (body: z.output<B>) => Answer | Promise<Answer>,
  ): void => {
    // Without the Zod type provider's handler typing (its schemas still validate and serialise):
    // an answer is plain JSON data, or JSON a worker already serialised (sent as bytes), and the
    // response schema documents and checks it. A small request is answered in the same turn (a
    // synchronous handler); one computed on a worker, when its promise settles.
    app.withTypeProvider<FastifyTypeProviderDefault>().post(
      url,
      { schema: { tags: [DIFFERENTIATION_TAG], summary, body, response: { 200: response, ...errors } } },
      (request, reply) => {
        const answer = handler(request.body as z.output<B>);
        if (answer instanceof Promise) return answer.then((a) => sendAnswer(reply, a));
        const sent = sendAnswer(reply, answer);
        // An object is returned for Fastify to send; bytes were sent already.
        return sent === reply ? undefined : sent;
      },
    );
  };

  post('/eval', 'The value of the function', example(DifferentiationRequestSchema.extend({}), NETWORK), EvalResponse, (body) => app.compute.respondNow('eval', body));
  post('/grad', 'The gradient of a scalar function (reverse mode)', example(DifferentiationRequestSchema.extend({}), LECTURE_F), GradResponse, (body) => app.compute.respondNow('grad', body));
  post(
    '/jvp',
    'A Jacobian-vector product (forward mode)',
    example(DifferentiationRequestSchema.extend({ tangents: ValuesSchema.describe('A tangent per input (inputs not named get zero)') }), {
      ...NETWORK,
      tangents: { x: [1, 0] },
    }),
    JvpResponse,
    (body) => app.compute.respondNow('jvp', body),
  );
  post(
    '/vjp',
    'A vector-Jacobian product (reverse mode)',
    example(DifferentiationRequestSchema.extend({ cotangent: ValueSchema.describe('A cotangent of the shape of the output') }), { ...NETWORK, cotangent: [1, 1] }),
    VjpResponse,
    (body) => app.compute.respondNow('vjp', body),
  );
  post(
    '/jacobian',
    'The full Jacobian, by forward or reverse mode',
    example(
      DifferentiationRequestSchema.extend({
        mode: z
          .enum(['auto', 'forward', 'reverse'])
          .optional()
          .describe('auto (default): forward when the total size of the wrt inputs is smaller than the output size, else reverse'),
      }),
      { ...NETWORK, wrt: ['x'] },
    ),
    JacobianResponse,
    (body) => app.compute.respondNow('jacobian', body),
  );
  post('/hessian', 'The Hessian of a scalar function (forward over reverse)', example(DifferentiationRequestSchema.extend({}), LECTURE_F), HessianResponse, (body) =>
    app.compute.respondNow('hessian', body),
  );
  post(
    '/hvp',
    'A Hessian-vector product, without forming the Hessian',
    example(DifferentiationRequestSchema.extend({ vector: ValuesSchema.describe('A vector per wrt input (inputs not named get zero)') }), {
      expr: 'x @ M @ x',
      at: { x: [1, 2], M: [[1, 2], [3, 4]] },
      wrt: ['x'],
      vector: { x: [1, 0] },
    }),
    HvpResponse,
    (body) => app.compute.respondNow('hvp', body),
  );
  post(
    '/check',
    'Check the AD gradient against finite differences',
    example(DifferentiationRequestSchema.extend({
      rtol: z.number().nonnegative().optional().describe('Relative tolerance (default 1e-3, as PyTorch gradcheck)'),
      atol: z.number().nonnegative().optional().describe('Absolute tolerance (default 1e-5, as PyTorch gradcheck)'),
      method: z.enum(['central', 'forward']).optional().describe('central (default): step eps^(1/3)·max(1, |x|); forward: step eps^(1/2)·max(1, |x|)'),
      directions: z.int().min(1).max(1000).optional().describe('Check this many random directions (two evaluations each) instead of every coordinate'),
      seed: z.int().optional().describe('Seed of the random directions (default 0)'),
    }), LECTURE_F),
    CheckResponse,
    (body) => app.compute.respondNow('check', body),
  );
};

export default differentiate;
