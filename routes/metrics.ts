// Prometheus metrics: process metrics and requests by method, route and status. Never
// rate-limited; behind a key when METRICS_API_KEYS is set (src/service/access.ts).

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { OPERATIONS_TAG } from '../src/service/openapi.js';

const metrics: FastifyPluginAsyncZod = async (app) => {
  // With METRICS_PORT, /metrics is served on that port only (src/service/metrics-server.ts).
  if (app.config.METRICS_PORT > 0) return;
  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        tags: [OPERATIONS_TAG],
        summary: 'Prometheus metrics',
        response: {
          200: {
            description: 'The Prometheus text exposition format',
            content: { 'text/plain': { schema: z.string() } },
          },
        },
      },
    },
    async (_request, reply) => reply.type(app.metrics.contentType).send(await app.metrics.metrics()),
  );
};

export default metrics;
