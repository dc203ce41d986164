// openapi.yaml against the running server, as a third-party tool reads it: Stoplight Prism's
// validating proxy (`prism proxy openapi.yaml <server>`) stands between this test and the app and
// checks every request and every answer against the document, reporting what disagrees in the
// `sl-violations` header. A battery of requests covers every operation, its successes and its 4xx
// answers: no answer may break the spec, and no request the server accepts may break it either
// (a request the server refuses may: the spec refusing it too is right).
//
// Skipped, with a warning, only when Prism cannot start (it is a devDependency).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { sha256Hex } from '../../src/service/access.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from '../probe/fake-model.js';

const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));
const spec = parse(readFileSync(SPEC_PATH, 'utf8')) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

interface Violation {
  location: (string | number)[];
  severity: string;
  code: string | number;
  message: string;
}

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** The path as sent (with its query). */
  path: string;
  /** The operation's path in the spec (default: `path` without its query). */
  operation?: string;
  body?: unknown;
  /** A body sent as it is (instead of `body` as JSON). */
  raw?: string;
  headers?: Record<string, string>;
  status: number;
}

interface Sent {
  status: number;
  violations: Violation[];
  text: string;
  headers: Headers;
}

// ---------------------------------------------------------------- Prism and the servers

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Prism's CLI script, from its package (undefined when it is not installed). */
function prismBin(): string | undefined {
  try {
    const manifest = fileURLToPath(import.meta.resolve('@stoplight/prism-cli/package.json'));
    const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin: string | Record<string, string> };
    return join(dirname(manifest), typeof bin === 'string' ? bin : bin.prism!);
  } catch {
    return undefined;
  }
}

interface Prism {
  url: string;
  stop(): Promise<void>;
}

/** `prism proxy openapi.yaml <upstream>` on a free port; undefined (and why) when it does not start within a minute. */
async function startPrism(upstream: string): Promise<Prism | string> {
  const bin = prismBin();
  if (bin === undefined) return '@stoplight/prism-cli is not installed (npm ci installs it)';
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [bin, 'proxy', SPEC_PATH, upstream, '--host', '127.0.0.1', '--port', String(port), '--errors', 'false'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const started = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 60_000);
    const read = (chunk: Buffer) => {
      // Kept short: Prism logs every request, and its pipes must be drained all along.
      if (output.length < 20_000) output += chunk.toString('utf8');
      if (output.includes('Prism is listening')) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  if (!started) {
    await stop();
    return `Prism did not start: ${output.slice(-2000)}`;
  }
  return { url: `http://127.0.0.1:${port}`, stop };
}

async function send(prism: Prism, c: Case): Promise<Sent> {
  const headers: Record<string, string> = { ...c.headers };
  let body: string | undefined;
  if (c.raw !== undefined) body = c.raw;
  else if (c.body !== undefined) {
    body = JSON.stringify(c.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${prism.url}${c.path}`, { method: c.method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  const header = res.headers.get('sl-violations');
  return { status: res.status, violations: header ? (JSON.parse(header) as Violation[]) : [], text, headers: res.headers };
}

/** What the case found wrong: its status, an answer that breaks the spec, or an accepted request the spec refuses. */
function problemsOf(c: Case, sent: Sent): string[] {
  const problems: string[] = [];
  if (sent.status !== c.status) problems.push(`${c.name}: HTTP ${sent.status}, expected ${c.status}: ${sent.text.slice(0, 300)}`);
  const accepted = sent.status < 400;
  for (const v of sent.violations) {
    const where = v.location.join('.');
    if (v.location[0] === 'request' && !accepted) continue;
    problems.push(`${c.name} (HTTP ${sent.status}): ${where}: ${v.message}`);
  }
  return problems;
}

// ---------------------------------------------------------------- the battery

const F = 'x1 = W0 * x; x2 = tanh(x1); x3 = W1 * x2; x4 = x3 - y; x5 = x4^2; x5';
const AT = { x: 1, W0: 2, W1: 1.2, y: 2 };
const GRAPH = { nodes: [{ id: 'y', op: 'sin', args: ['x'] }], output: 'y' };
const DIFFERENTIATION = ['/eval', '/grad', '/jvp', '/vjp', '/jacobian', '/hessian', '/hvp', '/check'] as const;
/** The extra fields an endpoint needs beyond the function and the point. */
const EXTRA: Record<string, Record<string, unknown>> = { '/jvp': { tangents: { x: 1 } }, '/vjp': { cotangent: 1 }, '/hvp': { vector: { x: 1, W0: 0, W1: 0, y: 0 } } };

function differentiationCases(): Case[] {
  return DIFFERENTIATION.flatMap((url): Case[] => {
    const extra = EXTRA[url] ?? {};
    const post = (name: string, body: unknown, status: number, more: Partial<Case> = {}): Case => ({ name: `${url} ${name}`, method: 'POST', path: url, body, status, ...more });
    return [
      post('an expression', { expr: F, at: AT, ...extra }, 200),
      post('several points', { expr: 'sin(x) * y', points: [{ x: 1, y: 2 }, { x: 0.5, y: -1 }], ...(url === '/hvp' ? { vector: { x: 1, y: 0 } } : url === '/jvp' ? { tangents: { x: 1 } } : extra) }, 200),
      post('a graph, base64 answer', { graph: GRAPH, at: { x: [0.5, 1] }, encoding: 'base64', ...(url === '/hvp' ? { vector: { x: [1, 0] } } : url === '/jvp' ? { tangents: { x: [1, 0] } } : url === '/vjp' ? { cotangent: [1, 1] } : {}) }, url === '/grad' || url === '/hessian' || url === '/hvp' || url === '/check' ? 422 : 200),
      post('a syntax error', { expr: 'sin(x', at: { x: 1 } }, 400),
      post('neither expr nor graph', { at: { x: 1 } }, 400),
      post('an unknown input in wrt', { expr: 'sin(x)', at: { x: 1 }, wrt: ['q'], ...(url === '/jvp' ? { tangents: { x: 1 } } : url === '/vjp' ? { cotangent: 1 } : url === '/hvp' ? { vector: { x: 1 } } : {}) }, 422),
      post('as a job', { expr: 'sin(x)', at: { x: 1 }, ...(url === '/jvp' ? { tangents: { x: 1 } } : url === '/vjp' ? { cotangent: 1 } : url === '/hvp' ? { vector: { x: 1 } } : {}) }, 202, { path: `${url}?async=true`, operation: url }),
      post('a body that is not JSON', undefined, 415, { raw: 'x=1', headers: { 'content-type': 'text/plain' } }),
    ];
  });
}

function gradeCases(): Case[] {
  const reference = { expr: 'a = x; b = x; a * b', feedback: [{ expr: 'x', message: 'Only one factor was differentiated: the product rule has two terms.' }] };
  const submissions = [
    { id: 's1', answers: { derivative: { x: 'x + x' } } },
    { id: 's2', answers: { derivative: 'x' } },
    { id: 's3', answers: { derivative: { x: '2*x +' } } },
    { id: 's4', answers: {} },
    { answers: { gradient: 2, value: 1 } },
  ];
  const table = {
    reference: { expr: F },
    at: AT,
    tangents: { x: 1 },
    required: ['forwardTrace.x5', 'reverseTrace', 'shapes.x2'],
    submissions: [
      { id: 1, answers: { forwardTrace: [{ id: 'x2', value: 0.964, tangent: 0.141 }, { id: 'x5', value: 0.711, tangent: -0.286 }], reverseTrace: [{ id: 'x5', adjoint: 1 }], shapes: { x2: [] } } },
      { id: 2, answers: { forwardTrace: 'not a table' } },
    ],
  };
  const post = (name: string, body: unknown, status: number): Case => ({ name: `/grade ${name}`, method: 'POST', path: '/grade', body, status });
  return [
    post('native, with a one-input shorthand', { reference, at: { x: 1.5 }, submissions }, 200),
    post('gradescope', { reference, submissions, format: 'gradescope' }, 200),
    post('gradescope, markdown, hidden until published', { reference, submissions, format: 'gradescope', gradescope: { outputFormat: 'md', visibility: 'after_published' } }, 200),
    post('prairielearn', { reference, submissions, format: 'prairielearn' }, 200),
    post('tables, native', table, 200),
    post('tables, prairielearn', { ...table, format: 'prairielearn' }, 200),
    post('points and ranges', { reference: { expr: 'x^2 * y' }, points: 3, seed: 7, ranges: { x: [0, 1], y: [-1, 1] }, submissions: [{ answers: { derivative: { x: '2*x*y', y: 'x^2' } } }] }, 200),
    post('no reference', { submissions }, 400),
    post('a reference that does not parse', { reference: { expr: 'x +' }, submissions }, 400),
    post('a required step that does not exist', { reference: { expr: 'x^2' }, required: ['shapes.nope'], submissions }, 422),
    post('as a job', { reference, submissions }, 202),
  ].map((c) => (c.status === 202 ? { ...c, path: '/grade?async=true', operation: '/grade' } : c));
}

function probeCases(model: FakeModel): Case[] {
  const target = { expr: 'W = [[1, 2], [3, -1]]; tanh(W @ x)' };
  const image = { expr: 'sum(x * x)' };
  const pixels = [
    [0.1, 0.5, 0.9],
    [0.3, 0.2, 0.7],
  ];
  const text = { url: model.url, body: { input: '$input' }, outputPath: '/logits' };
  const post = (name: string, body: unknown, status: number, more: Partial<Case> = {}): Case => ({ name: `/probe ${name}`, method: 'POST', path: '/probe', body, status, ...more });
  return [
    post('central differences', { target, at: [0.1, 0.2], method: 'central', output: 1 }, 200),
    post('spsa', { target: { expr: 'sum(sin(x))' }, at: [0.1, 0.2, 0.3], method: 'spsa', budget: 21, seed: 3 }, 200),
    post('an image, grouped', { target: image, at: pixels, method: 'forward', image: { shape: [2, 3], patch: [1, 2], stride: [1, 2], range: [0, 1] } }, 200),
    post('an image, occlusion as PNG in JSON', { target: image, at: pixels, method: 'occlusion', image: { shape: [2, 3], patch: [1, 1] }, format: 'png' }, 200),
    post('an image, occlusion as image/png', { target: image, at: pixels, method: 'occlusion', image: { shape: [2, 3] }, format: 'png' }, 200, { headers: { accept: 'image/png' } }),
    post('occlusion of tokens (an HTTP target)', { target: text, at: ['not', 'good', 'at', 'all'], method: 'occlusion' }, 200),
    post('shapley (an HTTP target)', { target: text, at: ['not', 'good', 'at'], method: 'shapley', samples: 4 }, 200),
    post('a target that answers 400', { target: { ...text, outputPath: '/missing' }, at: ['fails'], method: 'occlusion' }, 502),
    post('a target not allowed', { target: { ...text, url: 'http://127.0.0.2:9/predict' }, at: ['a'], method: 'occlusion' }, 403),
    post('an unknown method', { target, at: [0.1, 0.2], method: 'magic' }, 400),
    post('a budget too small', { target, at: [0.1, 0.2], method: 'central', budget: 1 }, 422),
    post('as a job', { target, at: [0.1, 0.2], method: 'central', output: 1 }, 202, { path: '/probe?async=true', operation: '/probe' }),
  ];
}

function otherCases(): Case[] {
  const get = (path: string, status = 200, more: Partial<Case> = {}): Case => ({ name: `GET ${path}`, method: 'GET', path, status, ...more });
  const post = (name: string, path: string, body: unknown, status: number): Case => ({ name: `${path} ${name}`, method: 'POST', path, body, status });
  return [
    get('/healthz'),
    get('/readyz'),
    get('/metrics'),
    get('/openapi.yaml'),
    get('/ops'),
    get('/'),
    get('/ops', 200, { name: 'GET /ops with a key the server does not ask for', headers: { authorization: 'Bearer anything' } }),
    post('the lecture’s function, both tables', '/trace', { expr: F, at: AT, mode: 'both', tangents: { x: 1 } }, 200),
    post('a graph, forward only', '/trace', { graph: GRAPH, at: { x: 0.5 }, mode: 'forward' }, 200),
    post('without its point', '/trace', { expr: F }, 400),
    post('an input missing', '/trace', { expr: F, at: { x: 1 } }, 422),
    post('shapes and costs', '/analyze', { expr: 'A @ x', shapes: { A: [3, 2], x: [2] } }, 200),
    post('a syntax error', '/analyze', { expr: 'A @' }, 400),
    post('shapes that do not fit', '/analyze', { expr: 'A @ x', shapes: { A: [3, 2], x: [3] } }, 422),
    post('as SVG', '/graph', { expr: 'x1 = x^2; sqrt(x1) + cos(x1)', format: 'svg' }, 200),
    post('as DOT', '/graph', { expr: 'sin(x) * y', format: 'dot' }, 200),
    post('an unknown format', '/graph', { expr: 'sin(x)', format: 'gif' }, 400),
    post('a probe job', '/jobs', { kind: 'probe', request: { target: { expr: 'sum(sin(x))' }, at: [0.1, 0.2, 0.3], method: 'central' } }, 202),
    post('an unknown kind', '/jobs', { kind: 'dance', request: {} }, 400),
    get('/jobs/00000000-0000-4000-8000-000000000000', 404, { operation: '/jobs/{id}' }),
    { name: 'DELETE an unknown job', method: 'DELETE', path: '/jobs/00000000-0000-4000-8000-000000000000', operation: '/jobs/{id}', status: 404 },
    get('/jobs/00000000-0000-4000-8000-000000000000/events', 404, { operation: '/jobs/{id}/events' }),
  ];
}

// ---------------------------------------------------------------- the test

const operationOf = (c: Case) => `${c.method.toLowerCase()} ${c.operation ?? c.path.split('?')[0]}`;

describe('openapi.yaml through Prism’s validating proxy', () => {
  let app: App;
  let keyed: App;
  let model: FakeModel;
  let prism: Prism | undefined;
  let keyedPrism: Prism | undefined;
  const covered = new Map<string, Set<number>>();
  /** The batteries that ran to their end (the coverage check needs all three). */
  let batteries = 0;
  const cover = (c: Case, status: number) => covered.set(operationOf(c), (covered.get(operationOf(c)) ?? new Set()).add(status));

  beforeAll(async () => {
    // A sentiment-like scorer: each token's weight, summed ("not" flips what follows); 400 for unknown paths.
    model = await serveModel((input) => {
      const tokens = Array.isArray(input) ? (input as unknown[]).map(String) : [];
      if (tokens.includes('fails')) return { status: 400, json: { error: 'this model reads only known words' } };
      const weight: Record<string, number> = { good: 2, bad: -2, all: 0.5 };
      let score = 0;
      let sign = 1;
      for (const t of tokens) {
        if (t === 'not') sign = -1;
        else score += sign * (weight[t] ?? 0);
      }
      return { json: { logits: [score] } };
    });
    app = buildTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0, PROBE_ALLOWED_ORIGINS: [model.origin] });
    keyed = buildTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0, API_KEYS: [{ id: 'ci', sha256: sha256Hex('right-key') }], METRICS_API_KEYS: [{ id: 'scraper', sha256: sha256Hex('metrics-key') }], RATE_LIMIT_MAX: 8 });
    const upstreams = await Promise.all(
      [app, keyed].map(async (a) => {
        await a.listen({ port: 0, host: '127.0.0.1' });
        return `http://127.0.0.1:${(a.server.address() as { port: number }).port}`;
      }),
    );
    const started = await Promise.all(upstreams.map((upstream) => startPrism(upstream)));
    for (const s of started) if (typeof s === 'string') console.warn(`\n\n!!! CONTRACT TEST SKIPPED: ${s}\n\n`);
    [prism, keyedPrism] = started.map((s) => (typeof s === 'string' ? undefined : s));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([prism?.stop(), keyedPrism?.stop()]);
    await Promise.all([app?.close(), keyed?.close(), model?.close()]);
  });

  const battery = (): Case[] => [...otherCases(), ...differentiationCases(), ...gradeCases(), ...probeCases(model)];

  it('finds no answer that breaks the spec, and no accepted request it refuses', async ({ skip }) => {
    if (!prism) return skip();
    const problems: string[] = [];
    for (const c of battery()) {
      const sent = await send(prism, c);
      cover(c, sent.status);
      problems.push(...problemsOf(c, sent));
    }
    batteries += 1;
    expect(problems).toEqual([]);
  }, 180_000);

  it('follows a job: submitted, watched as events, read, cancelled', async ({ skip }) => {
    if (!prism) return skip();
    const problems: string[] = [];
    const run = async (c: Case) => {
      const sent = await send(prism!, c);
      cover(c, sent.status);
      problems.push(...problemsOf(c, sent));
      return sent;
    };
    const submitted = await run({ name: 'POST /jobs', method: 'POST', path: '/jobs', body: { kind: 'compute', endpoint: 'grad', request: { expr: 'sum(x^2)', at: { x: [1, 2] } } }, status: 202 });
    const id = (JSON.parse(submitted.text) as { id: string }).id;
    const events = await run({ name: 'GET /jobs/{id}/events', method: 'GET', path: `/jobs/${id}/events`, operation: '/jobs/{id}/events', status: 200 });
    expect(events.text).toContain('event: succeeded');
    const read = await run({ name: 'GET /jobs/{id}', method: 'GET', path: `/jobs/${id}`, operation: '/jobs/{id}', status: 200 });
    expect((JSON.parse(read.text) as { state: string }).state).toBe('succeeded');
    await run({ name: 'DELETE /jobs/{id}', method: 'DELETE', path: `/jobs/${id}`, operation: '/jobs/{id}', status: 200 });
    batteries += 1;
    expect(problems).toEqual([]);
  }, 60_000);

  it('with keys configured: 401 without the key, 200 with it, 429 past the rate limit', async ({ skip }) => {
    if (!keyedPrism) return skip();
    const problems: string[] = [];
    const run = async (c: Case) => {
      const sent = await send(keyedPrism!, c);
      cover(c, sent.status);
      problems.push(...problemsOf(c, sent));
      return sent;
    };
    const key = { authorization: 'Bearer right-key' };
    await run({ name: 'GET /metrics without a key', method: 'GET', path: '/metrics', status: 401 });
    await run({ name: 'GET /metrics with its key', method: 'GET', path: '/metrics', headers: { authorization: 'Bearer metrics-key' }, status: 200 });
    await run({ name: 'POST /grad without a key', method: 'POST', path: '/grad', body: { expr: 'sin(x)', at: { x: 1 } }, status: 401 });
    await run({ name: 'POST /grad with a wrong key', method: 'POST', path: '/grad', body: { expr: 'sin(x)', at: { x: 1 } }, headers: { authorization: 'Bearer wrong' }, status: 401 });
    await run({ name: 'POST /grad with the key', method: 'POST', path: '/grad', body: { expr: 'sin(x)', at: { x: 1 } }, headers: key, status: 200 });
    for (const path of ['/ops', '/jobs/00000000-0000-4000-8000-000000000000', '/jobs/00000000-0000-4000-8000-000000000000/events']) {
      await run({ name: `GET ${path} without a key`, method: 'GET', path, operation: path.replace(/0{8}-[0-9-]+/, '{id}'), status: 401 });
    }
    // The open pages count against the address's limit too: past it, 429 with its problem.
    let limited: Sent | undefined;
    for (let i = 0; i < 20 && limited === undefined; i++) {
      const c: Case = { name: 'GET /openapi.yaml', method: 'GET', path: '/openapi.yaml', status: 200 };
      const sent = await send(keyedPrism, c);
      if (sent.status === 429) limited = sent;
      else problems.push(...problemsOf(c, sent));
    }
    expect(limited, 'never rate-limited').toBeDefined();
    problems.push(...problemsOf({ name: 'GET /openapi.yaml past the limit', method: 'GET', path: '/openapi.yaml', status: 429 }, limited!));
    cover({ name: '', method: 'GET', path: '/openapi.yaml', status: 429 }, 429);
    await run({ name: 'GET / past the limit', method: 'GET', path: '/', status: 429 });
    batteries += 1;
    expect(problems).toEqual([]);
  }, 60_000);

  it('covered every operation with a success and, where it documents one, a 4xx', ({ skip }) => {
    if (!prism || !keyedPrism || batteries < 3) return skip();
    const missing: string[] = [];
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const statuses = [...(covered.get(`${method} ${path}`) ?? [])];
        if (!statuses.some((s) => s < 300)) missing.push(`${method} ${path}: no success`);
        const documents4xx = Object.keys(operation.responses).some((s) => s.startsWith('4'));
        if (documents4xx && !statuses.some((s) => s >= 400 && s < 500)) missing.push(`${method} ${path}: no 4xx`);
      }
    }
    expect(missing).toEqual([]);
  });
});
