// `npm run bench:http`: the small-request path. POST /grad of the lecture's f against GET /healthz
// on the same compiled server (its own process, default configuration), autocannon with 32
// connections, alternating short rounds of each (healthz, grad, grad, healthz, ...) so that both see
// the same machine (it is shared and noisy); medians over the rounds. Must hold (issue 11): grad's
// requests per second ≥ 0.5 of healthz's.
//
//   npm run build && npm run bench:http      # HTTP_ROUNDS=8, HTTP_SECONDS=3 by default
//   SERVER_NODE_FLAGS=--cpu-prof npm run bench:http   # and a .cpuprofile of the server

import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { percentile, startServer, verdict } from './server-process.js';

const ROUNDS = Number(process.env.HTTP_ROUNDS ?? 8);
const SECONDS = Number(process.env.HTTP_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.HTTP_CONNECTIONS ?? 32);
const LECTURE = JSON.stringify({ expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } });
const EXPECTED_GRAD_PREFIX = '{"value":';

type Target = 'healthz' | 'grad';

interface Round {
  rps: number;
  /** Server CPU (user + system, all its threads) per request, in microseconds. */
  cpuUs: number;
  /** Server CPU over the round's wall time: near 1, the server (not the load generator) is the bottleneck. */
  busy: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function options(base: string, target: Target, duration: number): autocannon.Options {
  return target === 'healthz'
    ? { url: `${base}/healthz`, connections: CONNECTIONS, duration }
    : { url: `${base}/grad`, method: 'POST', headers: { 'content-type': 'application/json' }, body: LECTURE, connections: CONNECTIONS, duration };
}

/** CPU seconds (user + system) the process `pid` has used so far (Linux /proc; clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function round(server: { base: string; pid: number }, target: Target, duration = SECONDS): Promise<Round> {
  const cpu0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const r = await autocannon(options(server.base, target, duration));
  const cpu = cpuSeconds(server.pid) - cpu0;
  const wall = (performance.now() - t0) / 1000;
  return {
    rps: r.requests.average,
    cpuUs: (1e6 * cpu) / Math.max(1, r.requests.total),
    busy: cpu / wall,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

const median = (xs: number[]) => percentile(xs, 50);

async function main(): Promise<void> {
  const server = await startServer({});
  try {
    // The answer is the one expected (a 200 with the value and gradient), before anything is timed.
    const check = await fetch(`${server.base}/grad`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: LECTURE });
    const text = await check.text();
    if (check.status !== 200 || !text.startsWith(EXPECTED_GRAD_PREFIX)) throw new Error(`POST /grad answered ${check.status}: ${text}`);

    // Warm-up: JIT, the prepared-function cache.
    await round(server, 'healthz', 2);
    await round(server, 'grad', 2);

    const rounds: Record<Target, Round[]> = { healthz: [], grad: [] };
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // ABBA order: neither target always runs first in a pair.
      const order: Target[] = i % 2 === 0 ? ['healthz', 'grad'] : ['grad', 'healthz'];
      const pair = {} as Record<Target, Round>;
      for (const target of order) pair[target] = await round(server, target);
      rounds.healthz.push(pair.healthz);
      rounds.grad.push(pair.grad);
      ratios.push(pair.grad.rps / pair.healthz.rps);
      cpuRatios.push(pair.healthz.cpuUs / pair.grad.cpuUs);
      const show = (r: Round) => `${r.rps.toFixed(0)}/s (${r.cpuUs.toFixed(0)} µs CPU each, server busy ${(100 * r.busy).toFixed(0)}%)`;
      process.stderr.write(
        `round ${i + 1}/${ROUNDS}: healthz ${show(pair.healthz)}, grad ${show(pair.grad)}, ratio ${ratios.at(-1)!.toFixed(3)}, CPU ratio ${cpuRatios.at(-1)!.toFixed(3)}\n`,
      );
    }
    const stop = await server.stop();

    const summary = (rs: Round[]) => ({
      rps: median(rs.map((r) => r.rps)),
      cpuUs: median(rs.map((r) => r.cpuUs)),
      busy: median(rs.map((r) => r.busy)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      bad: rs.reduce((n, r) => n + r.non2xx + r.errors, 0),
    });
    const h = summary(rounds.healthz);
    const g = summary(rounds.grad);
    const ratio = median(ratios);
    const cpuRatio = median(cpuRatios);
    console.log(
      `# HTTP ratio: autocannon, ${CONNECTIONS} connections, ${ROUNDS} alternating rounds of ${SECONDS} s each, default configuration (LOG_LEVEL=warn), server in its own process (${new Date().toISOString()})\n`,
    );
    console.log('| endpoint | req/s (median) | server CPU µs / request | server busy | p50 ms | p99 ms | non-2xx + errors |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    const row = (name: string, s: typeof h) =>
      `| ${name} | ${s.rps.toFixed(0)} | ${s.cpuUs.toFixed(0)} | ${(100 * s.busy).toFixed(0)}% | ${s.p50} | ${s.p99} | ${s.bad} |`;
    console.log(row('GET /healthz', h));
    console.log(row("POST /grad (lecture's f)", g));
    console.log(`\nratio grad / healthz, req/s: median ${ratio.toFixed(3)} (rounds: ${ratios.map((x) => x.toFixed(3)).join(', ')})`);
    console.log(`ratio healthz / grad, server CPU per request: median ${cpuRatio.toFixed(3)} (rounds: ${cpuRatios.map((x) => x.toFixed(3)).join(', ')})`);
    // Rounds where other work on the machine held the server back (it was not busy all the time)
    // measure the machine more than the server: the ratio over the rounds where it was, both halves.
    const bound = ratios.filter((_, i) => rounds.healthz[i]!.busy >= 0.95 && rounds.grad[i]!.busy >= 0.95);
    console.log(
      bound.length > 0
        ? `ratio grad / healthz, req/s, rounds with the server busy ≥ 95% in both halves: median ${median(bound).toFixed(3)} (${bound.length} of ${ROUNDS})`
        : `no round had the server busy ≥ 95% in both halves (the machine is busy with other work)`,
    );
    console.log(`SIGTERM: exit ${stop.code} after ${stop.ms.toFixed(0)} ms`);
    const failures: string[] = [];
    if (h.bad + g.bad > 0) failures.push(`${h.bad + g.bad} non-2xx answers or errors`);
    if (ratio < 0.5) failures.push(`ratio ${ratio.toFixed(3)} < 0.5`);
    verdict(failures, 'POST /grad at ≥ 0.5 of GET /healthz, every request answered 2xx.');
  } catch (e) {
    await server.stop();
    throw e;
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
