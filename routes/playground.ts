// GET /: the playground page (static HTML, JavaScript and CSS from src/explain/playground/).

import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { loadPlayground, PLAYGROUND_CSP, type Asset } from '../src/explain/playground.js';
import type { Config } from '../src/service/config.js';
import { TEACHING_TAG } from './explain.js';

/** The demo models of `npm run demo:model` as this server is configured to find them. */
function demoModels(config: Config) {
  const host = config.DEMO_MODEL_HOST.includes(':') ? `[${config.DEMO_MODEL_HOST}]` : config.DEMO_MODEL_HOST;
  const model = (port: number, path: string, body: string, outputPath: string) => {
    const origin = `http://${host}:${port}`;
    let allowed = false;
    try {
      allowed = config.PROBE_ALLOWED_ORIGINS.includes(new URL(origin).origin);
    } catch {
      // A host no URL can hold: the button says the model is not allowed.
    }
    return { url: `${origin}${path}`, origin, body, outputPath, allowed };
  };
  return {
    mnist: model(config.DEMO_MODEL_PORT, '/predict', '{"image": "$input"}', '/logits'),
    text: model(config.DEMO_TEXT_PORT, '/sentiment', '{"tokens": "$input"}', '/logit'),
  };
}

const escapeAttribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const playground: FastifyPluginAsyncZod = async (app) => {
  const assets = loadPlayground();
  // The page reads the demo models' addresses from a meta element filled in here (never hard-coded).
  const page = assets['index.html'];
  assets['index.html'] = { ...page, body: page.body.replace('<meta name="adjoint-demos" content="">', `<meta name="adjoint-demos" content="${escapeAttribute(JSON.stringify(demoModels(app.config)))}">`) };
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
