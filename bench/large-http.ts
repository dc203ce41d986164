// Large tensors over HTTP (issue 12's must-hold): the time of a whole POST /grad, as a client sees
// it (body sent, answer read), over the engine's own time for the same gradient, in the same run.
// Two workloads: a 784-256-256-10 tanh network at batch 256 (gradient w.r.t. the weights: a 5 MB
// base64 body, a 2.9 MB answer) and the lecture's f over 1e5 points. Each round times the engine
// alone, then the request with base64 arrays (`"encoding": "base64"`), then with nested JSON
// arrays, so a slow spell of the shared machine slows all three alike; the figures are medians.
//
// The server is a child process (`dist/src/server.js`, default configuration: heavy work on its
// worker threads), the client undici on the same two cores. A third figure, in the same rounds, is
// the floor HTTP sets: the same bytes in and out through a bare node:http server doing no work. Answers are asked uncompressed
// (`accept-encoding: identity`): compression trades CPU for bytes, which loopback does not need.

import { spawn } from 'node:child_process';
import { request } from 'undici';
import { grad as gradOf } from '../src/engine/ad/differentiate.js';
import { Engine } from '../src/engine/engine.js';
import { Random } from '../src/engine/random.js';
import { readPoint } from '../src/service/request.js';

interface Encoded {
  dtype: 'float64';
  shape: number[];
  data: string;
}

export interface LargeHttpFigure {
  name: string;
  engineMs: number;
  base64Ms: number;
  jsonMs: number;
  /** The same bytes both ways (the base64 request, an answer of the base64 answer's size) through a bare node:http server. */
  bareMs: number;
  /** Likewise for the nested JSON request and answer. */
  bareJsonMs: number;
  base64Bytes: number;
  jsonBytes: number;
  answerBytes: number;
  jsonAnswerBytes: number;
}

// A server that does nothing but read a body and answer as many bytes as the request's
// `x-answer-bytes` asks: what moving the bytes alone costs, between two Node processes on this
// machine. A fixed script of ours (nothing of a request is ever evaluated).
const BARE_SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    Buffer.concat(chunks);
    const size = Math.min(Number(req.headers['x-answer-bytes']) || 0, 64 * 2 ** 20);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': size });
    res.end(Buffer.alloc(size, 0x41));
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

/** The bare server in a child process: its URL, and how to stop it. */
async function startBareServer(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['-e', BARE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    child.once('exit', (code) => reject(new Error(`the bare server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill() };
}

function encoded(random: Random, shape: number[], scale = 1): Encoded {
  const values = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = scale * random.normal();
  return { dtype: 'float64', shape, data: Buffer.from(values.buffer).toString('base64') };
}

/** The same tensor as nested arrays of numbers. */
function nested(tensor: Encoded): unknown {
  const bytes = Buffer.from(tensor.data, 'base64');
  const flat = Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8));
  if (tensor.shape.length === 1) return flat;
  const [rows, cols] = tensor.shape as [number, number];
  return Array.from({ length: rows }, (_, i) => flat.slice(i * cols, (i + 1) * cols));
}

function largeCases(): { name: string; expr: string; at: Record<string, Encoded>; wrt: string[] }[] {
  const random = new Random(7);
  return [
    {
      name: 'tanh network 784-256-256-10, batch 256',
      expr: 'H1 = tanh(X @ W1 + b1)\nH2 = tanh(H1 @ W2 + b2)\nP = H2 @ W3 + b3\nsum((P - Y)^2)',
      at: {
        X: encoded(random, [256, 784]),
        W1: encoded(random, [784, 256], 0.03),
        b1: encoded(random, [256], 0.1),
        W2: encoded(random, [256, 256], 0.06),
        b2: encoded(random, [256], 0.1),
        W3: encoded(random, [256, 10], 0.06),
        b3: encoded(random, [10], 0.1),
        Y: encoded(random, [256, 10]),
      },
      wrt: ['W1', 'b1', 'W2', 'b2', 'W3', 'b3'],
    },
    {
      name: "lecture's f over 1e5 points",
      expr: 'sum(sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2)))',
      at: { x: encoded(random, [100_000], 0.5) },
      wrt: ['x'],
    },
  ];
}

/** The time of one POST, answer read; and the answer's length. */
async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ ms: number; bytes: number }> {
  const start = performance.now();
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'accept-encoding': 'identity', ...headers }, body });
  const answer = await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${Buffer.from(answer).toString().slice(0, 300)}`);
  return { ms: performance.now() - start, bytes: answer.byteLength };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The figures for each workload against the server at `base`, over at least `rounds` rounds. */
export async function measureLargeHttp(base: string, rounds = 15): Promise<LargeHttpFigure[]> {
  const bare = await startBareServer();
  try {
    return await measureEach(base, bare.url, rounds);
  } finally {
    bare.stop();
  }
}

async function measureEach(base: string, bareUrl: string, rounds: number): Promise<LargeHttpFigure[]> {
  const engine = new Engine();
  const figures: LargeHttpFigure[] = [];
  for (const c of largeCases()) {
    const point = readPoint(engine, { expr: c.expr }, c.at, ['at']);
    const gradient = gradOf(point.prepared, point.inputs, c.wrt);
    const base64Body = JSON.stringify({ expr: c.expr, at: c.at, wrt: c.wrt, encoding: 'base64' });
    const jsonBody = JSON.stringify({ expr: c.expr, at: Object.fromEntries(Object.entries(c.at).map(([k, v]) => [k, nested(v)])), wrt: c.wrt });
    const url = `${base}/grad`;
    // Warm-up: the JIT, the server's prepared-function cache, its workers' too.
    let answerBytes = 0;
    let jsonAnswerBytes = 0;
    for (let i = 0; i < 3; i++) {
      gradient.run();
      answerBytes = (await post(url, base64Body)).bytes;
      jsonAnswerBytes = (await post(url, jsonBody)).bytes;
    }
    const asBig = { 'x-answer-bytes': String(answerBytes) };
    const asBigJson = { 'x-answer-bytes': String(jsonAnswerBytes) };
    await post(bareUrl, base64Body, asBig);
    await post(bareUrl, jsonBody, asBigJson);
    const engineMs: number[] = [];
    const base64Ms: number[] = [];
    const jsonMs: number[] = [];
    const bareMs: number[] = [];
    const bareJsonMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const start = performance.now();
      gradient.run();
      engineMs.push(performance.now() - start);
      base64Ms.push((await post(url, base64Body)).ms);
      jsonMs.push((await post(url, jsonBody)).ms);
      bareMs.push((await post(bareUrl, base64Body, asBig)).ms);
      bareJsonMs.push((await post(bareUrl, jsonBody, asBigJson)).ms);
    }
    figures.push({
      name: c.name,
      engineMs: median(engineMs),
      base64Ms: median(base64Ms),
      jsonMs: median(jsonMs),
      bareMs: median(bareMs),
      bareJsonMs: median(bareJsonMs),
      base64Bytes: base64Body.length,
      jsonBytes: jsonBody.length,
      answerBytes,
      jsonAnswerBytes,
    });
  }
  return figures;
}

/** The figures as BENCHMARKS.md's table (`npm run bench`'s third, `npm run bench:large`'s only one). */
export function printLargeHttp(figures: readonly LargeHttpFigure[]): void {
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  console.log('\n## Large tensors over HTTP: POST /grad as a client sees it, over the engine alone (medians, same rounds)\n');
  console.log('Bare HTTP: the same bytes in and out (request, and an answer of the same size) through a node:http server doing nothing.\n');
  console.log('| workload | encoding | in / out | engine | bare HTTP | bare / engine | HTTP | HTTP / engine |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const f of figures) {
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    const over = (x: number) => (x / f.engineMs).toFixed(2);
    for (const [encoding, inBytes, outBytes, bare, http] of [
      ['base64', f.base64Bytes, f.answerBytes, f.bareMs, f.base64Ms],
      ['nested JSON', f.jsonBytes, f.jsonAnswerBytes, f.bareJsonMs, f.jsonMs],
    ] as const) {
      console.log(`| ${f.name} | ${encoding} | ${mb(inBytes)} / ${mb(outBytes)} | ${ms(f.engineMs)} | ${ms(bare)} | ${over(bare)} | ${ms(http)} | ${over(http)} |`);
    }
  }
}
