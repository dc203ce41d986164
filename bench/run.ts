// `npm run bench`: figures as ratios against baselines measured in the same run, because the
// machine is shared and noisy.
//  1. The cheap-gradient principle: value+gradient time over value time, for the lecture's f, a
//     two-layer network and the Gaussian-process function (bench/engine.ts).
//  2. Requests per second of POST /grad on the lecture's f against a bare GET /healthz of the
//     same server, with autocannon on loopback.
//  3. Large tensors over HTTP: a whole POST /grad with base64 arrays, and with nested JSON arrays,
//     over the engine's own time for the same gradient (bench/large-http.ts), against the compiled
//     server in a child process (`npm run bench` builds it first), and the same bytes through a bare
//     node:http server: the floor moving them sets.

import type autocannon from 'autocannon';
import { measureEngine } from './engine.js';
import { measureLargeHttp, printLargeHttp } from './large-http.js';
import { startServer } from './server-process.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);

function fmt(ms: number): string {
  return ms < 0.1 ? `${(ms * 1000).toFixed(2)} µs` : `${ms.toFixed(3)} ms`;
}

async function load(url: string, options: Partial<autocannon.Options>): Promise<number> {
  const { default: autocannon } = await import('autocannon');
  const result = await autocannon({ url, connections: 50, duration: seconds, ...options });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return result.requests.average;
}

async function main(): Promise<void> {
  // Measured first, printed last: this process is the client there, and it should be one, not
  // also a server. Loaded (the app's modules) and run (autocannon's rounds), the server part makes
  // this client's own work about 1.5 times slower and its engine baseline noisier, so the app and
  // autocannon are imported only after this.
  const server = await startServer();
  let figures: Awaited<ReturnType<typeof measureLargeHttp>>;
  try {
    figures = await measureLargeHttp(server.base);
  } finally {
    await server.stop();
  }

  console.log(`# Adjoint benchmarks (${new Date().toISOString()}, Node ${process.version})\n`);
  console.log('## Cheap gradient: value+gradient time / value time (median of repeats)\n');
  console.log('| function | value | value+gradient | ratio |');
  console.log('| --- | --- | --- | --- |');
  for (const f of measureEngine()) {
    console.log(`| ${f.name} | ${fmt(f.valueMs)} | ${fmt(f.gradMs)} | ${f.ratio.toFixed(2)} |`);
  }

  // No rate limit: the load generator is one client.
  const { buildApp } = await import('../src/app.js');
  const { defaultConfig } = await import('../src/service/config.js');
  const app = buildApp(defaultConfig({ LOG_LEVEL: 'silent', RATE_LIMIT_MAX: 0 }), { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  try {
    const body = JSON.stringify({ expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } });
    // Warm up both routes (JIT, prepared-function cache).
    await load(`${base}/healthz`, { duration: 1 });
    await load(`${base}/grad`, { duration: 1, method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const bare = await load(`${base}/healthz`, {});
    const grad = await load(`${base}/grad`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    console.log(`\n## HTTP: autocannon, 50 connections, ${seconds} s each, loopback (load generator on the same cores)\n`);
    console.log('| route | requests/s | ratio to bare |');
    console.log('| --- | --- | --- |');
    console.log(`| GET /healthz (bare) | ${bare.toFixed(0)} | 1.00 |`);
    console.log(`| POST /grad, lecture f | ${grad.toFixed(0)} | ${(grad / bare).toFixed(2)} |`);
  } finally {
    await app.close();
  }

  printLargeHttp(figures);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
