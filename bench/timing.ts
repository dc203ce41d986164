// `npx tsx bench/timing.ts`: the speed claims the tests used to make with a clock. A busy 2-core
// machine stretches every duration, so the tests check what happened (orders, counters, bounds
// relative to the same run) and this script times it, on a quiet machine, against the figures the
// tests once asserted. It prints one line per claim and exits 1 if one is missed.
//   - parsing a 100,000-character chain (test/engine/lang/parser.test.ts): under 2 s;
//   - a JSON body nested 100,000 deep refused (test/service/bodies.test.ts): under 1 s, linear;
//   - a gzip bomb refused at BODY_LIMIT (test/service/compression.test.ts): under 2 s;
//   - grading a class of 300 (test/grade/lecture.test.ts): under 5 s;
//   - a 20,000-query probe job's events at least once a second, and /healthz's p99 under 100 ms
//     with 10,000 queued jobs (test/jobs/must-hold.test.ts, the jobs issue's must-hold figures).

import { gzipSync } from 'node:zlib';
import { buildApp, type App } from '../src/app.js';
import { parseProgram, printProgram } from '../src/engine/lang/index.js';
import { parseJsonBody } from '../src/service/body.js';
import { defaultConfig, type Config } from '../src/service/config.js';
import { serveModel } from '../test/probe/fake-model.js';

const results: { claim: string; ms: number; limit: number }[] = [];

function app(overrides: Partial<Config> = {}): App {
  return buildApp(defaultConfig({ WORKERS: 0, LOG_LEVEL: 'silent', RATE_LIMIT_MAX: 0, ...overrides }), { logger: false });
}

async function timed(claim: string, limit: number, run: () => unknown): Promise<void> {
  const started = performance.now();
  await run();
  results.push({ claim, ms: performance.now() - started, limit });
}

async function main(): Promise<void> {
  const chain = Array.from({ length: 50_000 }, (_, i) => (i % 2 === 0 ? 'x' : 'y')).join('+');
  await timed('parse and print a 100,000-character chain', 2000, () => printProgram(parseProgram(chain)));

  for (const depth of [10_000, 100_000]) {
    const deep = `${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}`;
    await timed(`refuse a JSON body nested ${depth} deep`, depth / 100, () => {
      try {
        parseJsonBody(deep);
      } catch {
        return;
      }
      throw new Error('the nested body was accepted');
    });
  }

  const compressed = app({ BODY_LIMIT: 1_048_576 });
  await compressed.ready();
  const member = gzipSync(Buffer.alloc(10 * 1024 * 1024));
  const bomb = Buffer.concat(Array.from({ length: 50 }, () => member));
  await timed('refuse a 500 MB gzip bomb at BODY_LIMIT', 2000, async () => {
    const res = await compressed.inject({ method: 'POST', url: '/grad', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: bomb });
    if (res.statusCode !== 413) throw new Error(`the bomb answered ${res.statusCode}`);
  });
  await compressed.close();

  const grading = app();
  await grading.ready();
  const f = 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))';
  const forms = ['(2*x + 2*x*exp(x^2)) * (1/(2*sqrt(x^2 + exp(x^2))) - sin(x^2 + exp(x^2)))', '1/(2*sqrt(x^2 + exp(x^2))) - sin(x^2 + exp(x^2))', 'cos(x +'];
  const submissions = Array.from({ length: 300 }, (_, k) => ({ id: `student-${k}`, answers: { derivative: { x: `${forms[k % forms.length]}${' '.repeat(k % 5)}` } } }));
  await timed('grade a class of 300', 5000, async () => {
    const res = await grading.inject({ method: 'POST', url: '/grade', payload: { reference: { expr: f }, at: { x: 0.7 }, submissions } });
    if (res.statusCode !== 200) throw new Error(`/grade answered ${res.statusCode}`);
  });
  await grading.close();

  await jobFigures();

  let missed = 0;
  for (const { claim, ms, limit } of results) {
    const ok = ms < limit;
    if (!ok) missed++;
    console.log(`${ok ? 'ok    ' : 'MISSED'} ${claim}: ${ms.toFixed(1)} ms (claim: under ${limit} ms)`);
  }
  process.exitCode = missed > 0 ? 1 : 0;
}

/** The jobs issue's must-hold figures, on the in-process backend over real HTTP. */
async function jobFigures(): Promise<void> {
  const model = await serveModel((input) => ({ json: { logit: (input as number[]).reduce((sum, x) => sum + Math.sin(x), 0) }, delayMs: 5 }));
  const probing = app({ PROBE_ALLOWED_ORIGINS: [model.origin], PROBE_MAX_BUDGET: 20_000, PROBE_MAX_CONCURRENCY: 16, PROBE_CLIENT_QUERIES_PER_MINUTE: 0, MAX_EVENT_LOOP_DELAY_MS: 0 });
  const base = await probing.listen({ port: 0, host: '127.0.0.1' });
  const request = { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: [0.3, -1.1, 0.8, 2.0], method: 'spsa', budget: 20_000, directions: 9999, concurrency: 16, seed: 5 };
  const submitted = await fetch(`${base}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'probe', request }) });
  if (submitted.status !== 202) throw new Error(`POST /jobs answered ${submitted.status}`);
  const arrivals: number[] = [];
  const response = await fetch(`${base}${submitted.headers.get('location')}/events`);
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of response.body!) {
    buffered += decoder.decode(chunk as Uint8Array, { stream: true });
    for (let end: number; (end = buffered.indexOf('\n\n')) >= 0; buffered = buffered.slice(end + 2)) arrivals.push(performance.now());
  }
  const longest = Math.max(...arrivals.slice(1).map((at, i) => at - arrivals[i]!));
  results.push({ claim: `longest gap between the events of a 20,000-query probe job (${arrivals.length} events)`, ms: longest, limit: 1000 });
  await probing.close();
  await model.close();

  const never = await serveModel(() => ({ json: { logit: 0 }, delayMs: 115_000 }));
  const queued = app({ PROBE_ALLOWED_ORIGINS: [never.origin], JOBS_MAX_QUEUED: 10_000, JOBS_CONCURRENCY_PROBE: 1, MAX_EVENT_LOOP_DELAY_MS: 0 });
  const queuedBase = await queued.listen({ port: 0, host: '127.0.0.1' });
  const body = { kind: 'probe', request: { target: { url: never.url, body: { input: '$input' }, outputPath: '/logit' }, at: [1, 2], method: 'central', timeoutMs: 110_000 } };
  for (let i = 0; i < 10_001; i++) {
    const res = await queued.inject({ method: 'POST', url: '/jobs', payload: body });
    if (res.statusCode !== 202) throw new Error(`submission ${i}: ${res.statusCode} ${res.body}`);
  }
  const times: number[] = [];
  for (let i = 0; i < 1100; i++) {
    const started = performance.now();
    const res = await fetch(`${queuedBase}/healthz`);
    await res.arrayBuffer();
    if (i >= 100) times.push(performance.now() - started); // the first 100 warm up
  }
  times.sort((a, b) => a - b);
  results.push({ claim: 'p99 of GET /healthz with 10,000 queued jobs', ms: times[Math.ceil(0.99 * times.length) - 1]!, limit: 100 });
  await queued.close();
  await never.close();
}

await main();
// The never-answering model's timers would hold the process for two minutes.
process.exit();
