// GET /: the playground page (static HTML, JavaScript and CSS from src/explain/playground/).

import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { loadPlayground, PLAYGROUND_CSP, type Asset } from '../src/explain/playground.js';
import { TEACHING_TAG } from './explain.js';

const playground: FastifyPluginAsyncZod = async (app) => {
  const assets = loadPlayground();
  const serve = (asset: Asset) => async (_request: unknown, reply: FastifyReply) =>
    reply.type(asset.contentType).headers({ 'content-security-policy': PLAYGROUND_CSP, 'x-content-type-options': 'nosniff' }).send(asset.body);

  app.get(
    '/',
    {
      schema: {
        operationId: 'getPlayground',
        tags: [TEACHING_TAG],
        summary: 'The playground: type a function and a point, see the value, the gradient, both tables and the graph',
        response: { 200: { description: 'The playground page', content: { 'text/html': { schema: z.string() } } } },
      },
    },
    serve(assets['index.html']),
  );
  app.get('/playground/playground.js', { schema: { hide: true } }, serve(assets['playground.js']));
  app.get('/playground/probing.js', { schema: { hide: true } }, serve(assets['probing.js']));
  app.get('/playground/playground.css', { schema: { hide: true } }, serve(assets['playground.css']));
};

export default playground;
