// The process: configuration from the environment, the app, and a graceful shutdown on
// SIGTERM/SIGINT (stop taking requests, close idle connections, answer the in-flight requests,
// exit 0; exit 1 if they are not answered within SHUTDOWN_GRACE_MS).

import { buildApp } from './app.js';
import { kernelBackend } from './engine/tensor/backend/index.js';
import { type Config, ConfigError, loadConfig } from './service/config.js';
import { listenMetrics, type MetricsServer } from './service/metrics-server.js';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`adjoint: ${error.message}\n`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  const app = buildApp(config);
  let metricsServer: MetricsServer | undefined;

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const inFlight = app.lifecycle.inFlight;
    app.log.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS, inFlight }, 'shutting down');
    // Requests still running after the grace period are cut off.
    setTimeout(() => {
      const left = app.lifecycle.inFlight;
      app.log.error(
        { graceMs: config.SHUTDOWN_GRACE_MS, inFlight: left, exitCode: 1 },
        `shutdown grace period (SHUTDOWN_GRACE_MS=${config.SHUTDOWN_GRACE_MS}) over with ${left} request(s) still in flight: exiting with code 1 without answering them`,
      );
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS).unref();
    // app.close() marks the app draining (readyz and new requests get 503), closes idle
    // keep-alive connections, and waits for the in-flight requests to be answered (each
    // connection closing after its answer).
    Promise.all([app.close(), metricsServer?.close()]).then(
      () => {
        app.log.info({ exitCode: 0 }, 'closed');
        process.exit(0);
      },
      (error: unknown) => {
        app.log.error({ err: error }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);

  await app.listen({ port: config.PORT, host: config.HOST });
  const kernels = kernelBackend();
  app.log.info({ backend: kernels.name, threads: kernels.threads, detail: kernels.detail }, `tensor kernels: ${kernels.name === 'openblas' ? `OpenBLAS (${kernels.detail})` : 'JavaScript'}`);
  if (config.METRICS_PORT > 0) {
    metricsServer = await listenMetrics(app.metrics, { port: config.METRICS_PORT, host: config.HOST, keys: config.METRICS_API_KEYS });
    app.log.info({ url: `${metricsServer.url}/metrics` }, 'metrics listening on their own port');
  }
}

main().catch((error: unknown) => {
  const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`adjoint: failed to start: ${reason}\n`);
  process.exit(1);
});
