// Shared test helpers: build an app the way the server does, with the log off (or captured).

import { buildApp, type App, type BuildAppOptions } from '../src/app.js';
import { defaultConfig, type Config } from '../src/service/config.js';

/**
 * An app with the default configuration (but no worker threads, and no shedding of load when the
 * event loop lags: a busy test machine must not turn answers into 503s) plus `overrides`, silent
 * unless `options` says otherwise. Tests of load shedding set MAX_EVENT_LOOP_DELAY_MS themselves.
 */
export function buildTestApp(overrides: Partial<Config> = {}, options: BuildAppOptions = {}): App {
  return buildApp(defaultConfig({ WORKERS: 0, MAX_EVENT_LOOP_DELAY_MS: 0, ...overrides }), { logger: false, ...options });
}

export interface LogCapture {
  stream: { write(line: string): void };
  /** Every line written so far, as text. */
  text(): string;
  /** Every line written so far, parsed. */
  entries(): Record<string, unknown>[];
}

/** A log destination that keeps the lines, for `buildTestApp(..., { logger: true, logStream })`. */
export function captureLog(): LogCapture {
  const lines: string[] = [];
  return {
    stream: { write: (line) => void lines.push(line) },
    text: () => lines.join(''),
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/**
 * A running server for tests that talk HTTP like a user (the clients' tests): the one at
 * ADJOINT_TEST_URL when set (`.ci/run` starts the compiled service in its own process), else an
 * app built here with `overrides`, listening on a free loopback port.
 */
export async function runningServer(overrides: Partial<Config> = {}): Promise<{ url: string; external: boolean; close: () => Promise<void> }> {
  const given = process.env.ADJOINT_TEST_URL;
  if (given) return { url: given.replace(/\/+$/, ''), external: true, close: async () => undefined };
  const app = buildTestApp(overrides);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, external: false, close: () => app.close() };
}
