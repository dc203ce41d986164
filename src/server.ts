// The process: configuration from the environment, the app, and a graceful shutdown on
// SIGTERM/SIGINT (stop taking requests, answer the in-flight ones, exit 0).

import { buildApp } from './service/app.js';
import { type Config, ConfigError, loadConfig } from './service/config.js';

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

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutting down');
    // Requests still running after the grace period are cut off.
    setTimeout(() => {
      app.log.error({ graceMs: config.SHUTDOWN_GRACE_MS }, 'grace period over, requests still in flight');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS).unref();
    // app.close() marks the app draining (readyz and new requests get 503) and waits for
    // the in-flight requests to be answered.
    app.close().then(
      () => {
        app.log.info('closed');
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
}

main().catch((error: unknown) => {
  const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`adjoint: failed to start: ${reason}\n`);
  process.exit(1);
});
