// `npm run soak`: tens of thousands of varied requests against a compiled server in its own
// process, on the default configuration, the hostile shapes of issue 9 among them: distinct large
// Hessians, many scalar inputs, huge answers, prototype names, probes that would amplify, slow
// bodies, compressed bodies, floods of cheap requests; issue 20's zero-size tensors of a billion
// rows, probe headers undici refuses and a 1,048,576 × 1 picture; and issue 20's job shapes (one client's large
// answers against its share, connections that never read a job's answer). Meanwhile the server's RSS is sampled and
// /healthz timed. It passes when the process stays up under 2.5 GB, /healthz stays under 500 ms,
// every answer is a 2xx, a 4xx problem with a code, or a 503 with Retry-After, and SIGTERM
// exits 0 promptly. Not part of `npm test` (minutes of load).
//
//   npm run build && npm run soak            # SOAK_SECONDS=60 by default
//   SOAK_SECONDS=300 SOAK_CONCURRENCY=24 npm run soak
//   SOAK_ONLY=bodies npm run soak            # only the large-body phases (SOAK_BODY_ROUNDS=5)
//
// After the mix, the large-body phases (issue 20): four 42.7 MB base64 bodies at once, and 64 gzip
// bombs at once, each in rounds, with /healthz timed, RSS sampled, and RSS read after idling.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { percentile, startServer, timeHealth, type ServerProcess } from './server-process.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 16);
const RSS_LIMIT = 2.5e9;
const HEALTH_LIMIT_MS = 500;

type Body = string | Buffer;
interface Shape {
  name: string;
  /** Relative frequency. */
  weight: number;
  /** At most this many of the shape in flight at once (heavy shapes). */
  inFlight?: number;
  make(i: number): { method?: 'GET' | 'POST'; path: string; body?: Body; headers?: Record<string, string> };
}

const json = (value: unknown): string => JSON.stringify(value);
const chain = (k: number, steps: number): string => `a=x*${k};` + 'a=prod(a)*a;'.repeat(steps) + 'sum(a)';
const scalars = (n: number): Record<string, number> => {
  const at: Record<string, number> = {};
  for (let i = 0; i < n; i++) at[`k${i}`] = 1;
  at.x = 1;
  return at;
};
const MANY_KEYS_JACOBIAN = json({ expr: 'x', mode: 'forward', at: scalars(20_000) });
const MANY_KEYS_CHECK = json({ expr: 'x', at: scalars(10_000) });
const MANY_KEYS_TRACE = json({ expr: 'x', at: scalars(60_000) });

/** A loopback model for the probe shapes: answers logits for any body. */
function fakeModel(): Promise<{ server: Server; origin: string; received: () => number }> {
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end('{"logits":[0.5,0.25]}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({ server, origin: `http://127.0.0.1:${port}`, received: () => bytes });
    }),
  );
}

function shapes(modelOrigin: string): Shape[] {
  const template = { pad: 'p'.repeat(900_000), input: '$input' };
  return [
    { name: 'grad: lecture f', weight: 40, make: (i) => ({ path: '/grad', body: json({ expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: (i % 97) / 10 } }) }) },
    { name: 'eval: small network', weight: 15, make: (i) => ({ path: '/eval', body: json({ expr: 'tanh(W @ x)', at: { W: [[1, 2], [3, 4]], x: [i % 5, 0.2] } }) }) },
    { name: 'GET /ops', weight: 20, make: () => ({ method: 'GET', path: '/ops' }) },
    { name: 'hessian: distinct 5 KB chains', weight: 1, inFlight: 8, make: (i) => ({ path: '/hessian', body: json({ expr: chain(i + 7, 414), at: { x: [1, 2, 3] } }) }) },
    { name: 'hessian: distinct 99 KB chains', weight: 0.2, inFlight: 2, make: (i) => ({ path: '/hessian', body: json({ expr: chain(i + 7, 8200), at: { x: [1, 2, 3] } }) }) },
    { name: 'jacobian: 20,001 scalar inputs', weight: 0.5, inFlight: 2, make: () => ({ path: '/jacobian', body: MANY_KEYS_JACOBIAN }) },
    { name: 'check: 10,001 scalar inputs', weight: 0.5, inFlight: 2, make: () => ({ path: '/check', body: MANY_KEYS_CHECK }) },
    { name: 'trace: 60,001 scalar inputs', weight: 0.3, inFlight: 1, make: () => ({ path: '/trace', body: MANY_KEYS_TRACE }) },
    { name: 'eval: 1M-number answers', weight: 1, inFlight: 8, make: (i) => ({ path: '/eval', body: json({ expr: 'sin(eye(1000)+x)', at: { x: 0.1234567 + i * 1e-9 } }) }) },
    { name: 'grade: answers key constructor', weight: 2, make: () => ({ path: '/grade', body: json({ reference: { expr: 'x^2' }, submissions: [{ id: 's', answers: { constructor: 1, derivative: { x: '2*x' } } }] }) }) },
    { name: 'eval: prototype names', weight: 2, make: (i) => ({ path: '/eval', body: json({ expr: ['toString', 'constructor', 'valueOf', '__proto__'][i % 4], at: { x: 1 } }) }) },
    { name: 'body: __proto__ key', weight: 1, make: () => ({ path: '/eval', body: '{"expr":"x","at":{"x":1},"__proto__":{"polluted":1}}' }) },
    { name: 'body: gzip', weight: 1, make: () => ({ path: '/eval', body: gzipSync(json({ expr: 'x', at: { x: 1 } })), headers: { 'content-encoding': 'gzip' } }) },
    { name: 'body: at and points', weight: 1, make: () => ({ path: '/eval', body: json({ expr: 'x', at: { x: 1 }, points: [{ x: 2 }] }) }) },
    // Issue 20: zero-size tensors with a billion rows, dimensions of 2³² and more, as an expression and as base64.
    { name: 'eval: reshape to [1e5, 1e5, 0]', weight: 1, make: () => ({ path: '/eval', body: json({ expr: 'reshape(x, shape=[100000, 100000, 0])', at: { x: [] } }) }) },
    { name: 'trace: base64 [1e5, 1e5, 0]', weight: 0.5, make: () => ({ path: '/trace', body: json({ expr: 'x', at: { x: { dtype: 'float64', shape: [100000, 100000, 0], data: '' } } }) }) },
    { name: 'grad: sum over [2^32, 0]', weight: 0.5, make: () => ({ path: '/grad', body: json({ expr: 'sum(reshape(x, shape=[4294967296, 0]))', at: { x: [] } }) }) },
    // Issue 20: probe target headers that undici refuses (they leaked a connection slot each) and a picture strip.
    {
      name: 'probe: header with U+0001 or U+2028',
      weight: 0.5,
      make: (i) => ({ path: '/probe', body: json({ target: { url: `${modelOrigin}/predict`, outputPath: '/logits/0', headers: { 'x-token': i % 2 === 0 ? 'a\u0001b' : 'a\u2028b' } }, at: [1, 2, 3], method: 'central' }) }),
    },
    {
      name: 'probe: 1,048,576 × 1 picture',
      weight: 0.2,
      inFlight: 1,
      make: () => ({ path: '/probe', body: json({ target: { expr: 'sum(x)' }, at: { dtype: 'float64', shape: [1048576], data: Buffer.alloc(8 * 1048576).toString('base64') }, method: 'occlusion', image: { shape: [1048576, 1], patch: [1, 1] }, format: 'png' }) }),
    },
    {
      name: 'probe: eye(2000) products',
      weight: 0.3,
      inFlight: 1,
      make: () => ({ path: '/probe', body: json({ target: { expr: 'sum(eye(2000) @ eye(2000)) + sum(x)' }, at: [1, 2, 3, 4, 5, 6, 7, 8], method: 'central', concurrency: 8 }) }),
    },
    {
      name: 'probe: 900 KB body template, SPSA',
      weight: 0.3,
      inFlight: 1,
      make: () => ({ path: '/probe', body: json({ target: { url: `${modelOrigin}/predict`, body: template, outputPath: '/logits/0' }, at: [1, 2, 3], method: 'spsa', budget: 1001 }) }),
    },
  ];
}

/** Connections that send headers and then drip the body a byte every 2 s: they must be cut off. */
function dripBodies(port: number, count: number, untilMs: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<number>((resolve) => {
        const start = performance.now();
        const socket = connect(port, '127.0.0.1', () => {
          socket.write('POST /eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
        });
        const drip = setInterval(() => socket.write(' '), 2000);
        const stop = setTimeout(() => socket.destroy(), untilMs);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearInterval(drip);
          clearTimeout(stop);
          resolve(performance.now() - start);
        });
      });
    }),
  );
}

/** What one burst phase (large bodies, gzip bombs) saw: answers, /healthz, the server's RSS. */
interface BurstReport {
  name: string;
  answers: Map<string, number>;
  health: number[];
  /** The server's largest event-loop delay meanwhile. */
  lagMs: number;
  rssBefore: number;
  rssMax: number;
  /** RSS once the phase's answers are all in and the server has been idle `settleMs`. */
  rssAfter: number;
  settleMs: number;
  bad: string[];
}

/** Sends `count` requests at once, `rounds` times, while /healthz is timed and RSS sampled; then waits `settleMs` idle and reads RSS again. */
async function burst(
  server: ServerProcess,
  name: string,
  rounds: number,
  count: number,
  make: () => { path: string; body: Buffer; headers?: Record<string, string> },
  settleMs: number,
): Promise<BurstReport> {
  const agent = new Agent({ connections: count + 2, bodyTimeout: 300_000, headersTimeout: 300_000 });
  const answers = new Map<string, number>();
  const bad: string[] = [];
  const rssBefore = server.rss();
  let rssMax = rssBefore;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, server.rss())), 50);
  let sending = true;
  const health = (async () => {
    const all: number[] = [];
    while (sending) all.push(...(await timeHealth(server.base, 1000)));
    return all;
  })();
  // The server's own event-loop delay (prom-client's monitor, reset at every scrape).
  let lagMs = 0;
  const lagSampler = setInterval(() => {
    void request(`${server.base}/metrics`)
      .then((res) => res.body.text())
      .then((text) => {
        const max = /^nodejs_eventloop_lag_max_seconds ([\d.e+-]+)/m.exec(text);
        if (max) lagMs = Math.max(lagMs, 1000 * Number(max[1]));
      })
      .catch(() => undefined);
  }, 1000);
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      Array.from({ length: count }, async () => {
        const { path, body, headers = {} } = make();
        let outcome: string;
        try {
          const res = await request(`${server.base}${path}`, { method: 'POST', dispatcher: agent, body, headers: { 'content-type': 'application/json', ...headers } });
          const text = await res.body.text();
          const code = res.statusCode >= 400 ? ((JSON.parse(text) as { code?: string }).code ?? '') : '';
          if (res.statusCode >= 400 && (code === '' || (res.statusCode >= 500 && !(res.statusCode === 503 && res.headers['retry-after'] !== undefined)))) {
            bad.push(`${name}: ${res.statusCode} ${text.slice(0, 200)}`);
          }
          outcome = `${res.statusCode}${code ? ` ${code}` : ''}`;
        } catch (e) {
          outcome = `error ${(e as Error).message}`;
          bad.push(`${name}: ${outcome}`);
        }
        answers.set(outcome, (answers.get(outcome) ?? 0) + 1);
      }),
    );
  }
  sending = false;
  clearInterval(lagSampler);
  const times = await health;
  await agent.close();
  await new Promise((r) => setTimeout(r, settleMs));
  clearInterval(sampler);
  return { name, answers, health: times, lagMs, rssBefore, rssMax, rssAfter: server.rss(), settleMs, bad };
}

/** A POST /eval of one 4,000,000-element float64 tensor as base64: 42.7 MB of JSON, the largest body the defaults accept. */
function largeBase64Body(): Buffer {
  const x = new Float64Array(4_000_000);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
  const data = Buffer.from(x.buffer).toString('base64');
  return Buffer.from(JSON.stringify({ expr: 'sum(x * x)', at: { x: { dtype: 'float64', shape: [x.length], data } } }));
}

/** A gzip body of 10 members of 10 MB of spaces: 100 MB once decompressed (past BODY_LIMIT), about 100 KB sent. */
function gzipBomb(): Buffer {
  const member = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
  return Buffer.concat(Array.from({ length: 10 }, () => member));
}

/**
 * Issue 20, item 7: four 42.7 MB base64 bodies at once (in rounds), then 64 gzip bombs at once
 * (in rounds): /healthz timed, RSS sampled, and RSS read again after the server has been idle.
 */
async function largeBodyPhases(server: ServerProcess): Promise<BurstReport[]> {
  const body = largeBase64Body();
  const bomb = gzipBomb();
  const rounds = Number(process.env.SOAK_BODY_ROUNDS ?? 5);
  return [
    await burst(server, 'four 42.7 MB base64 bodies at once', rounds, 4, () => ({ path: '/eval', body }), 10_000),
    await burst(server, '64 gzip bombs at once', rounds, 64, () => ({ path: '/eval', body: bomb, headers: { 'content-encoding': 'gzip' } }), 10_000),
  ];
}

/** Prints a burst phase's figures; its failures are added to `failures`. */
function printBurst(report: BurstReport, failures: string[]): void {
  const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
  const answers = [...report.answers].map(([o, n]) => `${n} × ${o}`).join(', ');
  console.log(
    `${report.name}: ${answers}; /healthz p50 ${percentile(report.health, 50).toFixed(1)} ms, p99 ${percentile(report.health, 99).toFixed(1)} ms, max ${Math.max(...report.health).toFixed(1)} ms (${report.health.length} checks), server event-loop delay max ${report.lagMs.toFixed(0)} ms; RSS ${gb(report.rssBefore)} GB before, max ${gb(report.rssMax)} GB, ${gb(report.rssAfter)} GB after ${report.settleMs / 1000} s idle`,
  );
  failures.push(...report.bad);
  if (report.health.some((ms) => ms < 0)) failures.push(`${report.name}: a /healthz check failed`);
  if (percentile(report.health, 99) > HEALTH_LIMIT_MS) failures.push(`${report.name}: /healthz p99 ${percentile(report.health, 99).toFixed(0)} ms`);
  if (report.rssMax > RSS_LIMIT) failures.push(`${report.name}: RSS ${report.rssMax} over ${RSS_LIMIT}`);
}

// The floor: a bare node:http server that only collects each body's bytes and answers {} (and
// /healthz): what receiving four 42.7 MB bodies costs its event loop on this machine, now.
const BARE_SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    Buffer.concat(chunks);
    res.setHeader('content-type', 'application/json');
    res.end(req.url === '/healthz' ? '{"status":"ok"}' : '{}');
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

/** The bare server in a child process, shaped as a ServerProcess for `burst`. */
async function startBareServer(): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['-e', BARE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const pid = child.pid!;
  return {
    base: `http://127.0.0.1:${line.toString().trim()}`,
    pid,
    child,
    rss: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', (code) => resolve({ code, ms: 0 }));
        child.kill('SIGTERM');
      }),
    log: () => [],
  };
}

/** `SOAK_ONLY=bodies`: only the large-body phases, on a server of their own, and the bare server's floor. */
async function bodiesOnly(): Promise<void> {
  const server = await startServer();
  const reports = await largeBodyPhases(server);
  const stop = await server.stop();
  const bare = await startBareServer();
  const body = largeBase64Body();
  const floor = await burst(bare, 'the floor: a bare node:http server collecting four 42.7 MB bodies at once', Number(process.env.SOAK_BODY_ROUNDS ?? 5), 4, () => ({ path: '/', body }), 0);
  await bare.stop();
  console.log(`# Large bodies, default configuration (${new Date().toISOString()})\n`);
  const failures: string[] = [];
  for (const report of reports) printBurst(report, failures);
  printBurst(floor, []);
  if (stop.code !== 0) failures.push(`SIGTERM exit code ${stop.code}`);
  console.log(failures.length > 0 ? `\nFAILED (${failures.length}):\n${failures.slice(0, 30).map((f) => `- ${f}`).join('\n')}` : '\nPASSED');
  if (failures.length > 0) process.exitCode = 1;
}

/** Submits a job as the client at `localAddress` (each loopback address is a client of its own) and waits for its end. */
async function jobFrom(base: string, agent: Agent, body: unknown): Promise<{ status: number; state?: string; code?: string; id?: string }> {
  const submitted = await request(`${base}/jobs`, { method: 'POST', dispatcher: agent, body: json(body), headers: { 'content-type': 'application/json' } });
  const job = (await submitted.body.json()) as { id?: string; code?: string };
  if (submitted.statusCode !== 202) return { status: submitted.statusCode, code: job.code };
  for (;;) {
    const res = await request(`${base}/jobs/${job.id}`, { dispatcher: agent });
    const text = await res.body.text();
    const state = /"state":"(\w+)"/.exec(text)?.[1];
    if (res.statusCode === 200 && state !== 'queued' && state !== 'running') {
      const problemAt = text.indexOf('"problem":');
      return { status: 202, state, id: job.id, code: problemAt < 0 ? undefined : /"code":"(\w+)"/.exec(text.slice(problemAt))?.[1] };
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A raw request whose answer is not read (the socket paused at once) until `resume`; `closed` resolves when it ends. */
function neverReading(port: number, localAddress: string, path: string): { closed: Promise<number>; resume(): void } {
  const opened = performance.now();
  const socket = connect({ port, host: '127.0.0.1', localAddress }, () => {
    socket.pause();
    // Connection: close, so that a refused one (429) is closed once answered rather than kept alive idle.
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
  socket.on('error', () => undefined);
  return { closed: new Promise((resolve) => socket.once('close', () => resolve(performance.now() - opened))), resume: () => socket.resume() };
}

/**
 * Issue 20's job shapes, beside the main load: one client (127.0.0.2) submits 20 jobs whose answers
 * are 19 MB each (more than its JOBS_MAX_BYTES_PER_CLIENT keeps) while another (127.0.0.4) submits
 * 4; then 260 connections from a third (127.0.0.3) never read a finished job's answer (130 event
 * streams, 130 GETs). The second client must get every answer, the never-read connections must be
 * closed, and the process must stay within its memory.
 */
async function jobShapes(base: string, port: number, bad: string[]): Promise<string[]> {
  const agents = ['127.0.0.2', '127.0.0.4'].map((localAddress) => new Agent({ connections: 8, localAddress, bodyTimeout: 120_000, headersTimeout: 120_000 }));
  const big = (i: number) => ({ kind: 'compute', endpoint: 'eval', request: { expr: 'sin(eye(1000) + x)', at: { x: 0.5 + i * 1e-9 } } });
  const [greedy, other] = await Promise.all([
    Promise.all(Array.from({ length: 20 }, (_, i) => jobFrom(base, agents[0]!, big(i)))),
    Promise.all(Array.from({ length: 4 }, (_, i) => jobFrom(base, agents[1]!, big(100 + i)))),
  ]);
  const tally = (outcomes: { status: number; state?: string; code?: string }[]) => {
    const byOutcome = new Map<string, number>();
    for (const o of outcomes) {
      const key = o.status === 202 ? `${o.state}${o.code ? ` ${o.code}` : ''}` : `${o.status} ${o.code ?? ''}`;
      byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
    }
    return [...byOutcome].map(([o, n]) => `${n} × ${o}`).join(', ');
  };
  if (other.some((o) => o.state !== 'succeeded')) bad.push(`jobs: the second client's 19 MB answers: ${tally(other)}`);
  if (!greedy.some((o) => o.code === 'rate_limited')) bad.push(`jobs: the greedy client kept every answer: ${tally(greedy)}`);
  const lines = [`jobs, 19 MB answers: client A (20 submitted) ${tally(greedy)}; client B (4) ${tally(other)}`];
  const id = greedy.find((o) => o.state === 'succeeded')?.id ?? other.find((o) => o.state === 'succeeded')?.id;
  if (id !== undefined) {
    const stalled = Array.from({ length: 260 }, (_, i) => neverReading(port, '127.0.0.3', i % 2 === 0 ? `/jobs/${id}/events` : `/jobs/${id}`));
    // Past the write timeout (30 s), read what the kernel held: each connection then ends.
    await new Promise((resolve) => setTimeout(resolve, 40_000));
    for (const s of stalled) s.resume();
    const bound = new Promise<number>((resolve) => setTimeout(() => resolve(-1), 20_000));
    const closedMs = await Promise.all(stalled.map((s) => Promise.race([s.closed, bound])));
    const open = closedMs.filter((ms) => ms < 0).length;
    if (open > 0) bad.push(`jobs: ${open} of 260 never-reading connections to a finished job were still open after 60 s`);
    lines.push(`jobs, 260 connections never reading a 19 MB answer (130 event streams, 130 GETs, one client): ${260 - open} closed by the server (write timeout, or 429 past 16 streams), ${open} still open after 60 s`);
  }
  await Promise.all(agents.map((agent) => agent.close()));
  return lines;
}

async function main(): Promise<void> {
  const model = await fakeModel();
  const server = await startServer({ PROBE_ALLOWED_ORIGINS: model.origin });
  const port = Number(new URL(server.base).port);
  const agent = new Agent({ connections: CONCURRENCY + 4, bodyTimeout: 120_000, headersTimeout: 120_000 });
  const all = shapes(model.origin);
  const totalWeight = all.reduce((s, x) => s + x.weight, 0);
  const inFlight = new Map<string, number>();
  const counts = new Map<string, Map<string, number>>();
  const bad: string[] = [];
  let sent = 0;
  const deadline = performance.now() + SECONDS * 1000;

  const pick = (r: number): Shape => {
    for (const s of all) {
      if ((r -= s.weight / totalWeight) <= 0 && (s.inFlight === undefined || (inFlight.get(s.name) ?? 0) < s.inFlight)) return s;
    }
    return all[0]!;
  };

  async function one(i: number): Promise<void> {
    const shape = pick(Math.random());
    const { method = 'POST', path, body, headers = {} } = shape.make(i);
    inFlight.set(shape.name, (inFlight.get(shape.name) ?? 0) + 1);
    let outcome: string;
    try {
      const res = await request(`${server.base}${path}`, {
        method,
        dispatcher: agent,
        body,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      });
      const text = await res.body.text();
      let code = '';
      if (res.statusCode >= 400) {
        try {
          code = (JSON.parse(text) as { code?: string }).code ?? '';
        } catch {
          code = '';
        }
        const retry = res.headers['retry-after'] !== undefined;
        if (code === '' || (res.statusCode >= 500 && !(res.statusCode === 503 && retry) && res.statusCode !== 504 && res.statusCode !== 502)) {
          bad.push(`${shape.name}: ${res.statusCode} ${text.slice(0, 200)}`);
        }
      }
      outcome = `${res.statusCode}${code ? ` ${code}` : ''}`;
    } catch (e) {
      outcome = `error ${(e as Error).message}`;
      bad.push(`${shape.name}: ${outcome}`);
    } finally {
      inFlight.set(shape.name, (inFlight.get(shape.name) ?? 1) - 1);
    }
    const byOutcome = counts.get(shape.name) ?? new Map<string, number>();
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
    counts.set(shape.name, byOutcome);
  }

  let maxRss = server.rss();
  let serverLagMs = 0;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, server.rss())), 250);
  // The server's own event-loop delay (prom-client's monitor, reset at every scrape).
  const lagSampler = setInterval(() => {
    void request(`${server.base}/metrics`)
      .then((res) => res.body.text())
      .then((text) => {
        const max = /^nodejs_eventloop_lag_max_seconds ([\d.e+-]+)/m.exec(text);
        if (max) serverLagMs = Math.max(serverLagMs, 1000 * Number(max[1]));
      })
      .catch(() => undefined);
  }, 2000);
  const healthProbe = timeHealth(server.base, SECONDS * 1000);
  const drips = dripBodies(port, 50, Math.min(SECONDS * 1000, 60_000));
  const jobLines = jobShapes(server.base, port, bad);

  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) await one(sent++);
    }),
  );
  const health = await healthProbe;
  if (health.some((ms) => ms < 0)) bad.push('healthz: a check failed');
  const dripMs = await drips;
  const jobReport = await jobLines;
  clearInterval(sampler);
  clearInterval(lagSampler);
  const bursts = await largeBodyPhases(server);
  // SIGTERM while the keep-alive connections are still open (they must not hold the exit).
  const stop = await server.stop();
  await agent.close();
  model.server.close();

  console.log(`# Soak: ${SECONDS} s, ${CONCURRENCY} concurrent clients, default configuration (${new Date().toISOString()})\n`);
  console.log(`${sent} requests; server RSS max ${(maxRss / 1e9).toFixed(2)} GB; /healthz p50 ${percentile(health, 50).toFixed(1)} ms, p99 ${percentile(health, 99).toFixed(1)} ms, max ${Math.max(...health).toFixed(1)} ms (${health.length} samples, timed from a thread of their own); server event-loop delay max ${serverLagMs.toFixed(0)} ms`);
  console.log(`slow bodies: 50 connections dripping a byte every 2 s were closed after ${(percentile(dripMs, 50) / 1000).toFixed(1)} s (median), ${(Math.max(...dripMs) / 1000).toFixed(1)} s (max)`);
  console.log(`probe target received ${(model.received() / 1e6).toFixed(1)} MB in all`);
  for (const line of jobReport) console.log(line);
  console.log(`SIGTERM: exit ${stop.code} after ${stop.ms.toFixed(0)} ms\n`);
  console.log('| request shape | answers |');
  console.log('| --- | --- |');
  for (const s of all) {
    const byOutcome = counts.get(s.name);
    const text = byOutcome ? [...byOutcome].map(([o, n]) => `${n} × ${o}`).join(', ') : '—';
    console.log(`| ${s.name} | ${text} |`);
  }
  console.log('');
  const failures = [...bad];
  for (const report of bursts) printBurst(report, failures);
  if (maxRss > RSS_LIMIT) failures.push(`RSS ${maxRss} over ${RSS_LIMIT}`);
  if (Math.max(...health) > HEALTH_LIMIT_MS) failures.push(`/healthz took ${Math.max(...health).toFixed(0)} ms`);
  if (stop.code !== 0) failures.push(`SIGTERM exit code ${stop.code}`);
  if (failures.length > 0) {
    console.log(`\nFAILED (${failures.length}):`);
    for (const f of failures.slice(0, 30)) console.log(`- ${f}`);
    process.exitCode = 1;
  } else {
    console.log('\nPASSED: the process stayed up within its memory, /healthz answered promptly, every answer was a 2xx or a problem with a code (5xx only 503 with Retry-After, or a probe target’s 502/504), and SIGTERM exited 0.');
  }
}

(process.env.SOAK_ONLY === 'bodies' ? bodiesOnly() : main()).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
