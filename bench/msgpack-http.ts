// JSON with base64 arrays against MessagePack with bins, over HTTP (issue 24, "tensors without
// text"): the time of a whole POST /grad of the 784-256-256-10 tanh network at batch 256 (gradient
// w.r.t. the weights), as a client sees it (body encoded and sent, answer read and decoded), in
// alternating rounds so that a slow spell of the shared machine slows both alike; medians.
//
// The server is a child process (the TypeScript sources through tsx, default configuration plus
// HOST/PORT: heavy work on its worker threads), the client undici. Answers are asked uncompressed.
//
//   npx tsx bench/msgpack-http.ts [rounds]      (default 15)

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decode, encode } from '@msgpack/msgpack';
import { request } from 'undici';
import { Random } from '../src/engine/random.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function tensor(random: Random, shape: number[], scale = 1): { shape: number[]; values: Float64Array } {
  const values = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = scale * random.normal();
  return { shape, values };
}

const random = new Random(7);
const AT = {
  X: tensor(random, [256, 784]),
  W1: tensor(random, [784, 256], 0.03),
  b1: tensor(random, [256], 0.1),
  W2: tensor(random, [256, 256], 0.06),
  b2: tensor(random, [256], 0.1),
  W3: tensor(random, [256, 10], 0.06),
  b3: tensor(random, [10], 0.1),
  Y: tensor(random, [256, 10]),
};
const EXPR = 'H1 = tanh(X @ W1 + b1)\nH2 = tanh(H1 @ W2 + b2)\nP = H2 @ W3 + b3\nsum((P - Y)^2)';
const WRT = ['W1', 'b1', 'W2', 'b2', 'W3', 'b3'];
const bytesOf = (x: Float64Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** One whole request each way: encode the body, send it, read and decode the answer's tensors; its time in ms and the bytes both ways. */
async function viaJson(base: string): Promise<{ ms: number; sent: number; received: number }> {
  const start = performance.now();
  const at = Object.fromEntries(Object.entries(AT).map(([k, t]) => [k, { dtype: 'float64', shape: t.shape, data: Buffer.from(bytesOf(t.values)).toString('base64') }]));
  const body = JSON.stringify({ expr: EXPR, at, wrt: WRT, encoding: 'base64' });
  const res = await request(`${base}/grad`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' } });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(text.slice(0, 300));
  const answer = JSON.parse(text) as { gradient: Record<string, { data: string }> };
  for (const g of Object.values(answer.gradient)) {
    const bytes = Buffer.from(g.data, 'base64');
    new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
  }
  return { ms: performance.now() - start, sent: body.length, received: text.length };
}

async function viaMsgpack(base: string): Promise<{ ms: number; sent: number; received: number }> {
  const start = performance.now();
  const at = Object.fromEntries(Object.entries(AT).map(([k, t]) => [k, { dtype: 'float64', shape: t.shape, data: bytesOf(t.values) }]));
  const body = encode({ expr: EXPR, at, wrt: WRT });
  const res = await request(`${base}/grad`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack', 'accept-encoding': 'identity' },
  });
  const bytes = new Uint8Array(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(Buffer.from(bytes).toString().slice(0, 300));
  const answer = decode(bytes) as { gradient: Record<string, { data: Uint8Array }> };
  for (const g of Object.values(answer.gradient)) new Float64Array(g.data.slice().buffer);
  return { ms: performance.now() - start, sent: body.byteLength, received: bytes.byteLength };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 15);
  const port = 33_000 + Math.floor(Math.random() * 2000);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let tries = 0; ; tries++) {
      try {
        const res = await request(`${base}/readyz`);
        await res.body.dump();
        if (res.statusCode === 200) break;
      } catch {
        // not listening yet
      }
      if (tries > 600) throw new Error('the server did not become ready');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Warm-up: workers started, functions compiled and cached.
    for (let i = 0; i < 3; i++) await Promise.all([viaJson(base)]).then(() => viaMsgpack(base));
    const json: number[] = [];
    const packed: number[] = [];
    let sizes = { json: { sent: 0, received: 0 }, msgpack: { sent: 0, received: 0 } };
    for (let i = 0; i < rounds; i++) {
      const a = await viaJson(base);
      const b = await viaMsgpack(base);
      json.push(a.ms);
      packed.push(b.ms);
      sizes = { json: { sent: a.sent, received: a.received }, msgpack: { sent: b.sent, received: b.received } };
    }
    const mb = (n: number) => (n / 1e6).toFixed(2);
    console.log(`/grad, 784-256-256-10 tanh network at batch 256, ${rounds} alternating rounds (medians; min–max):`);
    console.log(`  JSON + base64: ${median(json).toFixed(1)} ms (${Math.min(...json).toFixed(1)}–${Math.max(...json).toFixed(1)}); ${mb(sizes.json.sent)} MB in, ${mb(sizes.json.received)} MB out`);
    console.log(`  MessagePack:   ${median(packed).toFixed(1)} ms (${Math.min(...packed).toFixed(1)}–${Math.max(...packed).toFixed(1)}); ${mb(sizes.msgpack.sent)} MB in, ${mb(sizes.msgpack.received)} MB out`);
    console.log(`  ratio MessagePack / JSON: ${(median(packed) / median(json)).toFixed(2)}`);
  } finally {
    child.kill('SIGTERM');
  }
}

await main();
