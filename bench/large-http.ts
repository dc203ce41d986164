// Large tensors over HTTP (issue 12's must-hold): the time of a whole POST /grad, as a client sees
// it (body sent, answer read), over the engine's own time for the same gradient, in the same run.
// Two workloads: a 784-256-256-10 tanh network at batch 256 (gradient w.r.t. the weights: a 5 MB
// base64 body, a 2.9 MB answer) and the lecture's f over 1e5 points. Each round times the engine
// alone, then the request with base64 arrays (`"encoding": "base64"`), then with nested JSON
// arrays, so a slow spell of the shared machine slows all three alike; the figures are medians.
//
// The server is a child process (`dist/src/server.js`, default configuration: heavy work on its
// worker threads), the client undici on the same two cores. Answers are asked uncompressed
// (`accept-encoding: identity`): compression trades CPU for bytes, which loopback does not need.

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
  base64Bytes: number;
  jsonBytes: number;
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

async function post(url: string, body: string): Promise<number> {
  const start = performance.now();
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' }, body });
  const answer = await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${Buffer.from(answer).toString().slice(0, 300)}`);
  return performance.now() - start;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The figures for each workload against the server at `base`, over at least `rounds` rounds. */
export async function measureLargeHttp(base: string, rounds = 15): Promise<LargeHttpFigure[]> {
  const engine = new Engine();
  const figures: LargeHttpFigure[] = [];
  for (const c of largeCases()) {
    const point = readPoint(engine, { expr: c.expr }, c.at, ['at']);
    const gradient = gradOf(point.prepared, point.inputs, c.wrt);
    const base64Body = JSON.stringify({ expr: c.expr, at: c.at, wrt: c.wrt, encoding: 'base64' });
    const jsonBody = JSON.stringify({ expr: c.expr, at: Object.fromEntries(Object.entries(c.at).map(([k, v]) => [k, nested(v)])), wrt: c.wrt });
    const url = `${base}/grad`;
    // Warm-up: the JIT, the server's prepared-function cache, its workers' too.
    for (let i = 0; i < 3; i++) {
      gradient.run();
      await post(url, base64Body);
      await post(url, jsonBody);
    }
    const engineMs: number[] = [];
    const base64Ms: number[] = [];
    const jsonMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const start = performance.now();
      gradient.run();
      engineMs.push(performance.now() - start);
      base64Ms.push(await post(url, base64Body));
      jsonMs.push(await post(url, jsonBody));
    }
    figures.push({
      name: c.name,
      engineMs: median(engineMs),
      base64Ms: median(base64Ms),
      jsonMs: median(jsonMs),
      base64Bytes: base64Body.length,
      jsonBytes: jsonBody.length,
    });
  }
  return figures;
}
