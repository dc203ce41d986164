// Every route plugin, registered in one place. A new route file exports a default
// `FastifyPluginAsyncZod` and gets one line here.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import differentiate from './differentiate.js';
import explain from './explain.js';
import grade from './grade.js';
import health from './health.js';
import jobs from './jobs.js';
import metrics from './metrics.js';
import openapi from './openapi.js';
import ops from './ops.js';
import playground from './playground.js';
import probe from './probe.js';

const routes: FastifyPluginAsyncZod = async (app) => {
  await app.register(health);
  await app.register(metrics);
  await app.register(openapi);
  await app.register(differentiate);
  await app.register(ops);
  await app.register(explain);
  await app.register(playground);
  await app.register(grade);
  await app.register(probe);
  await app.register(jobs);
};

export default routes;
