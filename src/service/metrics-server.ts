// GET /metrics on a port of its own (METRICS_PORT), for a deployment that keeps the scrape off
// the public port: a bare http server that answers GET /metrics from the app's registry and
// nothing else. The app does not serve /metrics on its main port then (routes/metrics.ts).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { bearerToken, KeyRing, type ApiKeyEntry } from './access.js';

export interface MetricsServer {
  /** Where it listens, e.g. `http://127.0.0.1:9464`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts serving `registry` at GET /metrics on `host:port` (port 0: any free one). */
export async function listenMetrics(
  registry: Registry,
  options: { port: number; host: string; keys?: readonly ApiKeyEntry[] },
): Promise<MetricsServer> {
  // METRICS_API_KEYS, when set, hold here too.
  const keys = new KeyRing(options.keys ?? []);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?', 1)[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('GET /metrics only\n');
      return;
    }
    const token = bearerToken(request.headers.authorization);
    if (keys.enabled && (token === undefined || keys.identify(token) === undefined)) {
      response.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="adjoint"' }).end('A metrics key is needed\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(request.method === 'HEAD' ? undefined : text),
      () => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics failed\n'),
    );
  });
  // A scraper has no business holding a connection open for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
