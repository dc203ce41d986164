// `npm run load`: autocannon against a compiled server in its own process, default configuration.
//  1. Small POST /grad (the lecture's f) alone: requests/s and latency.
//  2. The same with heavy requests in the mix (distinct 5 KB Hessians, 1M-number answers, many-input
//     bodies, a Gaussian-process gradient), sent by a second load generator at the same time.
//  Meanwhile /healthz is timed 20 times a second from a thread of its own (p99 must stay under
//  100 ms), and the server's own event-loop delay is read from /metrics.
// Figures are ratios to the run alone, measured in the same run (the machine is shared and noisy).
//
//   npm run build && npm run load            # LOAD_SECONDS=20 by default

import autocannon from 'autocannon';
import { percentile, startServer, timeHealth, verdict } from './server-process.js';

const SECONDS = Number(process.env.LOAD_SECONDS ?? 20);
const LECTURE = JSON.stringify({ expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } });
const JSON_HEADERS = { 'content-type': 'application/json' };

function chain(k: number): string {
  return `a=x*${k};` + 'a=prod(a)*a;'.repeat(414) + 'sum(a)';
}
const scalars: Record<string, number> = {};
for (let i = 0; i < 20_000; i++) scalars[`k${i}`] = 1;
const n = 200;
const gp = {
  expr: 'y @ inv(K1 + K2 + 0.01 * eye(200)) @ y',
  at: {
    y: Array.from({ length: n }, (_, i) => Math.sin(i)),
    K1: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Math.exp(-((i - j) ** 2) / 50))),
    K2: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))),
  },
};

let k = 0;
const HEAVY: { method: 'POST'; path: string; headers: Record<string, string>; setupRequest?: (r: autocannon.Request) => autocannon.Request; body?: string }[] = [
  { method: 'POST', path: '/hessian', headers: JSON_HEADERS, setupRequest: (r) => ({ ...r, body: JSON.stringify({ expr: chain(++k), at: { x: [1, 2, 3] } }) }) },
  { method: 'POST', path: '/eval', headers: JSON_HEADERS, setupRequest: (r) => ({ ...r, body: JSON.stringify({ expr: 'sin(eye(1000)+x)', at: { x: ++k } }) }) },
  { method: 'POST', path: '/jacobian', headers: JSON_HEADERS, body: JSON.stringify({ expr: 'x', mode: 'forward', at: { ...scalars, x: 1 } }) },
  { method: 'POST', path: '/grad', headers: JSON_HEADERS, body: JSON.stringify(gp) },
];

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function figures(result: autocannon.Result): Figures {
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors };
}

async function main(): Promise<void> {
  const server = await startServer({});
  const run = (options: autocannon.Options) => autocannon({ duration: SECONDS, ...options });
  try {
    // Warm-up: JIT, the prepared-function cache, the workers.
    await run({ url: `${server.base}/grad`, method: 'POST', headers: JSON_HEADERS, body: LECTURE, connections: 10, duration: 2 });

    const lag = async (): Promise<number> => {
      const res = await fetch(`${server.base}/metrics`);
      const max = /^nodejs_eventloop_lag_max_seconds ([\d.e+-]+)/m.exec(await res.text());
      return max ? 1000 * Number(max[1]) : NaN;
    };
    await lag();
    const alone = run({ url: `${server.base}/grad`, method: 'POST', headers: JSON_HEADERS, body: LECTURE, connections: 32 });
    const [gradAlone, health1] = await Promise.all([alone, timeHealth(server.base, SECONDS * 1000, 50)]);
    const lag1 = await lag();

    const mixed = run({ url: `${server.base}/grad`, method: 'POST', headers: JSON_HEADERS, body: LECTURE, connections: 32 });
    const heavy = run({ url: server.base, connections: 4, requests: HEAVY, timeout: 120 });
    const [gradMixed, heavyResult, health2] = await Promise.all([mixed, heavy, timeHealth(server.base, SECONDS * 1000, 50)]);
    const lag2 = await lag();

    const a = figures(gradAlone);
    const m = figures(gradMixed);
    const summary = (times: number[]) => ({ p50: percentile(times, 50).toFixed(1), p99: percentile(times, 99), failed: times.filter((t) => t < 0).length });
    const h1 = summary(health1);
    const h2 = summary(health2);
    const hv = figures(heavyResult);
    const stop = await server.stop();
    console.log(`# Load: autocannon, ${SECONDS} s per phase, default configuration, server in its own process (${new Date().toISOString()})\n`);
    console.log('| phase | POST /grad req/s | ratio to alone | /grad p50 / p99 ms | /healthz p50 / p99 ms | server event-loop delay max ms | heavy answered (non-2xx) |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    console.log(`| /grad alone (32 connections) | ${a.rps.toFixed(0)} | 1.00 | ${a.p50} / ${a.p99} | ${h1.p50} / ${h1.p99.toFixed(1)} | ${lag1.toFixed(0)} | — |`);
    console.log(
      `| /grad with heavy requests (4 connections) | ${m.rps.toFixed(0)} | ${(m.rps / a.rps).toFixed(2)} | ${m.p50} / ${m.p99} | ${h2.p50} / ${h2.p99.toFixed(1)} | ${lag2.toFixed(0)} | ${heavyResult.requests.total} (${hv.non2xx}) |`,
    );
    console.log(`\nSIGTERM: exit ${stop.code} after ${stop.ms.toFixed(0)} ms`);
    const failures: string[] = [];
    if (a.non2xx + a.errors + m.non2xx + m.errors > 0) failures.push(`/grad: ${a.non2xx + m.non2xx} non-2xx, ${a.errors + m.errors} errors`);
    if (h1.p99 >= 100 || h2.p99 >= 100) failures.push(`/healthz p99 ${Math.max(h1.p99, h2.p99)} ms (limit 100)`);
    if (h1.failed + h2.failed > 0) failures.push('/healthz failed');
    verdict(failures, '/healthz p99 under 100 ms in both phases, every /grad answered 200.');
  } catch (e) {
    await server.stop();
    throw e;
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
