// The OpenAPI 3.1 description of this running app, generated from the route schemas.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { OPERATIONS_TAG } from '../src/service/openapi.js';

const YAML_CONTENT_TYPE = 'application/yaml; charset=utf-8';

const openapi: FastifyPluginAsyncZod = async (app) => {
  // Written once, at the first request: the document does not change while the app runs, and
  // writing it holds the event loop for a second or more.
  let document: string | undefined;
  app.get(
    '/openapi.yaml',
    {
      schema: {
        operationId: 'getOpenApi',
        tags: [OPERATIONS_TAG],
        summary: 'This OpenAPI 3.1 description (Swagger UI at /docs)',
        response: {
          200: {
            description: 'The OpenAPI document in YAML',
            content: { 'application/yaml': { schema: z.string() } },
          },
        },
      },
    },
    async (_request, reply) => reply.type(YAML_CONTENT_TYPE).send((document ??= app.swagger({ yaml: true }))),
  );
};

export default openapi;
