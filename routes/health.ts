// Liveness and readiness probes: always open (no API key, src/service/access.ts), never
// rate-limited nor refused for pressure (src/service/app.ts). Once shutdown begins every new
// request, these included, is answered 503 `shutting_down` by the app's onRequest hook.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { OPERATIONS_TAG } from '../src/service/openapi.js';
import { problemResponses } from '../src/service/problem.js';

const health: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'getHealthz',
        tags: [OPERATIONS_TAG],
        summary: 'Liveness: the process is up and answering',
        response: {
          200: z.object({ status: z.literal('ok') }).describe('The process is alive'),
          ...problemResponses(503),
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadyz',
        tags: [OPERATIONS_TAG],
        summary: 'Readiness: the server takes new work (503 `shutting_down` once shutdown begins)',
        response: {
          200: z.object({ status: z.literal('ready') }).describe('Ready to take work'),
          ...problemResponses(503),
        },
      },
    },
    async () => ({ status: 'ready' as const }),
  );
};

export default health;
