// The composition root: the service (src/service, which knows nothing of routes) with the route
// plugins of routes/ registered on it. The server, the OpenAPI generator, the tests and the
// benchmarks build the app here.

import routes from '../routes/index.js';
import { buildService, type App, type BuildAppOptions } from './service/app.js';
import type { Config } from './service/config.js';

export type { App, BuildAppOptions };

export function buildApp(config: Config, options: BuildAppOptions = {}): App {
  const app = buildService(config, options);
  app.register(routes);
  return app;
}
