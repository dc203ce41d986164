// The MNIST demo model as a "deployed model": a small HTTP server on loopback that answers the
// logits of a 28×28 image and nothing else, optionally slowly and with Gaussian noise on the
// logits, so POST /probe has a real model to point at (docs/probing.md, "The MNIST demo model").
//
//   POST /predict {"image": [...]}  →  {"logits": [10 numbers], "prediction": argmax}
//
// The image is 784 numbers or 28 rows of 28 (nested arrays, or an encoded float64 array of either
// shape); any finite values are accepted, since a prober steps pixels a little past 0 and 1.
// `?latencyMs=` and `?noise=` on the URL override the server's own settings for one request.
//
//   npm run demo:model        (DEMO_MODEL_PORT=8081, DEMO_MODEL_HOST=127.0.0.1, DEMO_MODEL_LATENCY_MS=0,
//                              DEMO_MODEL_NOISE=0, DEMO_MODEL_SEED=0)

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../engine/errors.js';
import { Random } from '../engine/random.js';
import { toTensor } from '../engine/values.js';
import { CLASSES, demoDigits, IMAGE_SIDE, logits, PIXELS } from './model.js';

export interface DemoModelOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: the demo is for loopback. */
  host?: string;
  /** Milliseconds to wait before each answer (default 0). */
  latencyMs?: number;
  /** Standard deviation of Gaussian noise added to every logit (default 0: exact float64 logits). */
  noise?: number;
  /** Seed of the noise, drawn in the order requests arrive (default 0). */
  seed?: number;
}

export interface DemoModel {
  /** The predict endpoint, e.g. http://127.0.0.1:8081/predict. */
  url: string;
  /** What PROBE_ALLOWED_ORIGINS must list, e.g. http://127.0.0.1:8081. */
  origin: string;
  port: number;
  /** Predictions answered so far (200s only). */
  readonly predictions: number;
  close(): Promise<void>;
}

/** Bodies past this are refused (413): an image as JSON text is about 16 KB. */
const MAX_BODY_BYTES = 1 << 20;
const MAX_LATENCY_MS = 60_000;

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

function send(response: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function refuse(response: ServerResponse, refusal: Refusal): void {
  send(response, refusal.status, { type: 'about:blank', title: refusal.code, status: refusal.status, code: refusal.code, detail: refusal.message }, 'application/problem+json');
}

/** Bodies this far past the limit are not even read to the end: the connection is dropped. */
const MAX_DRAINED_BYTES = 16 * MAX_BODY_BYTES;

function tooLarge(bytes: number, declared: boolean): Refusal {
  return new Refusal(413, 'body_too_large', `the body ${declared ? 'has' : 'passed'} ${bytes} bytes, more than ${MAX_BODY_BYTES}: send one image of ${PIXELS} numbers`);
}

/**
 * The body as text, at most MAX_BODY_BYTES. A larger one is read to its end and dropped before the
 * 413 (so the client, still sending, gets the answer rather than a reset), unless it is huge.
 */
async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DRAINED_BYTES) request.destroy();
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw tooLarge(size, false);
  return Buffer.concat(chunks).toString('utf8');
}

/** The image's 784 pixels, row-major, from a request body; a Refusal saying what to change otherwise. */
export function parseImage(text: string): Float64Array {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refusal(400, 'invalid_json', 'the body is not JSON: send {"image": [784 numbers]}');
  }
  if (typeof body !== 'object' || body === null || !('image' in body)) throw new Refusal(400, 'missing_image', 'the body must be an object with "image": 784 numbers, or 28 rows of 28');
  let image;
  try {
    // Bounded before anything is decoded (an encoded array may declare any shape).
    image = toTensor(body.image, ['image'], MAX_BODY_BYTES);
  } catch (error) {
    if (!(error instanceof EngineError)) throw error;
    const problem = error.code === 'limit_exceeded' ? `image has more than ${MAX_BODY_BYTES} numbers` : error.message;
    throw new Refusal(400, 'invalid_image', `${problem}: send 784 numbers, or 28 rows of 28`);
  }
  const shape = image.shape.join('×');
  if (shape !== String(PIXELS) && shape !== `${IMAGE_SIDE}×${IMAGE_SIDE}`) {
    throw new Refusal(400, 'invalid_image', `image has shape [${image.shape.join(', ')}]: send 784 numbers, or 28 rows of 28`);
  }
  const bad = image.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Refusal(400, 'invalid_image', `pixel ${bad} is ${image.data[bad]}: every pixel must be a finite number`);
  return image.data;
}

/** A query-string setting, if given: a finite number from 0 to `max`. */
function setting(query: URLSearchParams, name: string, max: number, fallback: number): number {
  const text = query.get(name);
  if (text === null) return fallback;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || v > max) throw new Refusal(400, 'invalid_query', `${name} must be a number from 0 to ${max}, got ${JSON.stringify(text)}`);
  return v;
}

/** Start the demo model; `close()` stops it (open connections included). */
export async function startDemoModel(options: DemoModelOptions = {}): Promise<DemoModel> {
  const noise = options.noise ?? 0;
  const latencyMs = options.latencyMs ?? 0;
  if (!(noise >= 0 && Number.isFinite(noise))) throw new RangeError(`noise must be a finite number ≥ 0, got ${noise}`);
  if (!(latencyMs >= 0 && latencyMs <= MAX_LATENCY_MS)) throw new RangeError(`latencyMs must be from 0 to ${MAX_LATENCY_MS}, got ${latencyMs}`);
  const random = new Random(options.seed ?? 0);
  let predictions = 0;

  async function predict(request: IncomingMessage, response: ServerResponse, query: URLSearchParams): Promise<void> {
    const type = request.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) throw new Refusal(415, 'unsupported_media_type', `the body must be application/json, got ${JSON.stringify(type)}`);
    const queryNoise = setting(query, 'noise', 1e6, noise);
    const queryLatency = setting(query, 'latencyMs', MAX_LATENCY_MS, latencyMs);
    const pixels = parseImage(await readBody(request));
    const z = Array.from(logits({ shape: [PIXELS], data: pixels }).data);
    if (queryNoise > 0) for (let i = 0; i < z.length; i++) z[i]! += queryNoise * random.normal();
    if (queryLatency > 0) await sleep(queryLatency);
    predictions++;
    send(response, 200, { logits: z, prediction: z.indexOf(Math.max(...z)) });
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { pathname, searchParams } = new URL(request.url ?? '/', 'http://demo');
    if (pathname === '/predict') {
      if (request.method !== 'POST') throw new Refusal(405, 'method_not_allowed', 'POST an image to /predict');
      return predict(request, response, searchParams);
    }
    if (pathname === '/digits' && request.method === 'GET') return send(response, 200, { digits: demoDigits() });
    if (pathname === '/' && request.method === 'GET') {
      return send(response, 200, {
        model: 'MNIST digits, 784 → 32 → 10 tanh network (src/demo)',
        predict: `POST /predict {"image": [${PIXELS} numbers or ${IMAGE_SIDE} rows of ${IMAGE_SIDE}]} → {"logits": [${CLASSES} numbers], "prediction": class}`,
        digits: 'GET /digits: ten test digits, one per class',
        settings: { latencyMs, noise },
      });
    }
    throw new Refusal(404, 'not_found', 'the demo model answers POST /predict, GET /digits and GET /');
  }

  function answer(request: IncomingMessage, response: ServerResponse): void {
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent) return;
      // A body refused before it was read is not drained: the connection closes after the answer.
      if (!request.readableEnded) response.setHeader('connection', 'close');
      refuse(response, error instanceof Refusal ? error : new Refusal(500, 'internal_error', 'the demo model failed'));
    });
  }
  const server = createServer(answer);
  // A client that asks before sending (Expect: 100-continue) a body declared too large is told so
  // at once, without being invited to send it.
  server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      response.setHeader('connection', 'close');
      return refuse(response, tooLarge(declared, true));
    }
    response.writeContinue();
    answer(request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = `http://${host}:${address.port}`;
  return {
    url: `${origin}/predict`,
    origin,
    port: address.port,
    get predictions() {
      return predictions;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function numberFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number ≥ 0, got ${JSON.stringify(text)}`);
  return v;
}

async function main(): Promise<void> {
  const model = await startDemoModel({
    port: numberFromEnv('DEMO_MODEL_PORT', 8081),
    host: process.env.DEMO_MODEL_HOST || '127.0.0.1',
    latencyMs: numberFromEnv('DEMO_MODEL_LATENCY_MS', 0),
    noise: numberFromEnv('DEMO_MODEL_NOISE', 0),
    seed: numberFromEnv('DEMO_MODEL_SEED', 0),
  });
  const probe = `{target: {url: "${model.url}", body: {image: "$input"}, outputPath: "/logits"}, at: d.pixels, method: "central", output: d.label}`;
  process.stdout.write(
    [
      `MNIST demo model answering POST ${model.url} (GET ${model.origin}/digits: ten test digits)`,
      '',
      'Start the service allowing it:',
      `  PROBE_ALLOWED_ORIGINS=${model.origin} npm run dev`,
      'then estimate the saliency map of the digit 3 (the gradient of its logit, 1569 queries):',
      `  node -e 'const d = require("./src/demo/mnist-digits.json").digits[3]; console.log(JSON.stringify(${probe}))' \\`,
      `    | curl -s localhost:3000/probe -H 'content-type: application/json' -d @-`,
      '',
    ].join('\n'),
  );
  const stop = () => void model.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`demo model: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
