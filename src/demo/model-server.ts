// The demo models as "deployed models": small HTTP servers on loopback that answer a model's output
// and nothing else, optionally slowly and with Gaussian noise, so POST /probe has real models to
// point at (docs/probing.md, "The demo models").
//
//   MNIST   POST /predict {"image": [...]}          →  {"logits": [10 numbers], "prediction": argmax}
//   text    POST /sentiment {"text": "..."}          →  {"logit", "probability", "label", "tokens",
//           or {"tokens": [...], "weights"?: [...]}      "contributions", "gradient"}
//
// The image is 784 numbers or 28 rows of 28 (nested arrays, or an encoded float64 array of either
// shape); any finite values are accepted, since a prober steps pixels a little past 0 and 1. The
// text model is src/demo/text-model.ts (AFINN-165 with negation). `?latencyMs=` and `?noise=` on
// the URL override the server's own settings for one request.
//
//   npm run demo:model        both, printing their URLs (DEMO_MODEL_PORT=8081, DEMO_TEXT_PORT=8082,
//                             DEMO_MODEL_HOST=127.0.0.1, DEMO_MODEL_LATENCY_MS=0, DEMO_MODEL_NOISE=0,
//                             DEMO_MODEL_SEED=0)

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../engine/errors.js';
import { Random } from '../engine/random.js';
import { toTensor } from '../engine/values.js';
import { CLASSES, demoDigits, IMAGE_SIDE, logits, PIXELS } from './model.js';
import { MAX_TOKEN_LENGTH, MAX_TOKENS, NEGATION_SCOPE, score, tokenize } from './text-model.js';

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
  /** The model's endpoint, e.g. http://127.0.0.1:8081/predict or http://127.0.0.1:8082/sentiment. */
  url: string;
  /** What PROBE_ALLOWED_ORIGINS must list, e.g. http://127.0.0.1:8081. */
  origin: string;
  port: number;
  /** Answers given so far (200s only). */
  readonly predictions: number;
  close(): Promise<void>;
}

/** Bodies past this are refused (413): an image as JSON text is about 16 KB. */
const MAX_BODY_BYTES = 1 << 20;
const MAX_LATENCY_MS = 60_000;
/** The ports `npm run demo:model` serves the models on unless DEMO_MODEL_PORT / DEMO_TEXT_PORT say otherwise. */
export const DEFAULT_MNIST_PORT = 8081;
export const DEFAULT_TEXT_PORT = 8082;

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

function tooLarge(bytes: number, declared: boolean, what: string): Refusal {
  return new Refusal(413, 'body_too_large', `the body ${declared ? 'has' : 'passed'} ${bytes} bytes, more than ${MAX_BODY_BYTES}: send ${what}`);
}

const ONE_IMAGE = `one image of ${PIXELS} numbers`;

/**
 * The body as text, at most MAX_BODY_BYTES. A larger one is read to its end and dropped before the
 * 413 (so the client, still sending, gets the answer rather than a reset), unless it is huge.
 */
async function readBody(request: IncomingMessage, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DRAINED_BYTES) request.destroy();
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw tooLarge(size, false, what);
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

const SEND_TEXT = 'send {"text": "a sentence"} or {"tokens": ["a", "sentence"]}, with "weights": a number per token if you like';

/** The tokens (and weights) of a text model request; a Refusal saying what to change otherwise. */
export function parseText(text: string): { tokens: string[]; weights: number[] | undefined } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refusal(400, 'invalid_json', `the body is not JSON: ${SEND_TEXT}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Refusal(400, 'invalid_body', `the body must be a JSON object: ${SEND_TEXT}`);
  const fields = body as Record<string, unknown>;
  const hasText = Object.hasOwn(fields, 'text');
  const hasTokens = Object.hasOwn(fields, 'tokens');
  if (hasText === hasTokens) throw new Refusal(400, 'invalid_body', `the body must have exactly one of "text" and "tokens": ${SEND_TEXT}`);
  let tokens: string[];
  if (hasText) {
    if (typeof fields.text !== 'string') throw new Refusal(400, 'invalid_text', `"text" must be a string, got ${describe(fields.text)}`);
    tokens = tokenize(fields.text);
  } else {
    if (!Array.isArray(fields.tokens)) throw new Refusal(400, 'invalid_tokens', `"tokens" must be an array of strings (one per word), got ${describe(fields.tokens)}`);
    const bad = fields.tokens.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) throw new Refusal(400, 'invalid_tokens', `tokens[${bad}] must be a string (a word), got ${describe(fields.tokens[bad])}`);
    tokens = fields.tokens as string[];
  }
  if (tokens.length > MAX_TOKENS) throw new Refusal(400, 'invalid_tokens', `the text has ${tokens.length} tokens, more than ${MAX_TOKENS}`);
  const long = tokens.findIndex((t) => t.length > MAX_TOKEN_LENGTH);
  if (long >= 0) throw new Refusal(400, 'invalid_tokens', `token ${long} has ${tokens[long]!.length} characters, more than ${MAX_TOKEN_LENGTH}: send one word per token`);
  if (!Object.hasOwn(fields, 'weights')) return { tokens, weights: undefined };
  const weights = fields.weights;
  if (!Array.isArray(weights) || weights.length !== tokens.length) {
    throw new Refusal(400, 'invalid_weights', `"weights" must be an array of ${tokens.length} numbers, one per token, got ${describe(weights)}`);
  }
  const badWeight = weights.findIndex((w) => typeof w !== 'number' || !Number.isFinite(w));
  if (badWeight >= 0) throw new Refusal(400, 'invalid_weights', `weights[${badWeight}] must be a finite number, got ${describe(weights[badWeight])}`);
  return { tokens, weights: weights as number[] };
}

/** A value as an error message names it: its JSON, cut short, or its type. */
function describe(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const text = JSON.stringify(value);
  if (text === undefined) return typeof value;
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** A query-string setting, if given: a finite number from 0 to `max`. */
function setting(query: URLSearchParams, name: string, max: number, fallback: number): number {
  const text = query.get(name);
  if (text === null) return fallback;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || v > max) throw new Refusal(400, 'invalid_query', `${name} must be a number from 0 to ${max}, got ${JSON.stringify(text)}`);
  return v;
}

interface Settings {
  latencyMs: number;
  noise: number;
  random: Random;
}

function settingsOf(options: DemoModelOptions): Settings {
  const noise = options.noise ?? 0;
  const latencyMs = options.latencyMs ?? 0;
  if (!(noise >= 0 && Number.isFinite(noise))) throw new RangeError(`noise must be a finite number ≥ 0, got ${noise}`);
  if (!(latencyMs >= 0 && latencyMs <= MAX_LATENCY_MS)) throw new RangeError(`latencyMs must be from 0 to ${MAX_LATENCY_MS}, got ${latencyMs}`);
  return { noise, latencyMs, random: new Random(options.seed ?? 0) };
}

/** What one demo server does: its one POST endpoint, and what GET / and GET /<other> answer. */
interface Model {
  /** The POST endpoint's path, e.g. /predict. */
  path: string;
  /** What a body must hold, for a 413's message. */
  what: string;
  /** The answer to a POST of `body` (the noise for this request given). */
  answer(body: string, noise: number, random: Random): unknown;
  /** GET / answers this. */
  about: unknown;
  /** Other GET paths. */
  pages: Record<string, () => unknown>;
}

async function serve(model: Model, options: DemoModelOptions): Promise<DemoModel> {
  const { noise, latencyMs, random } = settingsOf(options);
  let answered = 0;

  async function post(request: IncomingMessage, response: ServerResponse, query: URLSearchParams): Promise<void> {
    const type = request.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) throw new Refusal(415, 'unsupported_media_type', `the body must be application/json, got ${JSON.stringify(type)}`);
    const queryNoise = setting(query, 'noise', 1e6, noise);
    const queryLatency = setting(query, 'latencyMs', MAX_LATENCY_MS, latencyMs);
    const body = model.answer(await readBody(request, model.what), queryNoise, random);
    if (queryLatency > 0) await sleep(queryLatency);
    answered++;
    send(response, 200, body);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { pathname, searchParams } = new URL(request.url ?? '/', 'http://demo');
    if (pathname === model.path) {
      if (request.method !== 'POST') throw new Refusal(405, 'method_not_allowed', `POST ${model.what} to ${model.path}`);
      return post(request, response, searchParams);
    }
    const page = Object.hasOwn(model.pages, pathname) ? model.pages[pathname] : undefined;
    if (page !== undefined && request.method === 'GET') return send(response, 200, page());
    if (pathname === '/' && request.method === 'GET') return send(response, 200, { ...(model.about as object), settings: { latencyMs, noise } });
    throw new Refusal(404, 'not_found', `this demo model answers POST ${model.path}, ${Object.keys(model.pages).map((p) => `GET ${p}, `).join('')}and GET /`);
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
      return refuse(response, tooLarge(declared, true, model.what));
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
    url: `${origin}${model.path}`,
    origin,
    port: address.port,
    get predictions() {
      return answered;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Start the MNIST demo model; `close()` stops it (open connections included). */
export function startDemoModel(options: DemoModelOptions = {}): Promise<DemoModel> {
  return serve(
    {
      path: '/predict',
      what: ONE_IMAGE,
      answer(body, noise, random) {
        const z = Array.from(logits({ shape: [PIXELS], data: parseImage(body) }).data);
        if (noise > 0) for (let i = 0; i < z.length; i++) z[i]! += noise * random.normal();
        return { logits: z, prediction: z.indexOf(Math.max(...z)) };
      },
      about: {
        model: 'MNIST digits, 784 → 32 → 10 tanh network (src/demo)',
        predict: `POST /predict {"image": [${PIXELS} numbers or ${IMAGE_SIDE} rows of ${IMAGE_SIDE}]} → {"logits": [${CLASSES} numbers], "prediction": class}`,
        digits: 'GET /digits: ten test digits, one per class',
      },
      pages: { '/digits': () => ({ digits: demoDigits() }) },
    },
    options,
  );
}

/** Sentences the text model is shown with (GET /examples). */
const EXAMPLES = ['not a good film', 'the plot was not bad at all', 'the acting was superb but the plot was dull', 'never boring and never dull'];

/** Start the text demo model (AFINN-165 sentiment with negation); `close()` stops it. */
export function startTextModel(options: DemoModelOptions = {}): Promise<DemoModel> {
  return serve(
    {
      path: '/sentiment',
      what: 'one text of at most 1 MiB',
      answer(body, noise, random) {
        const { tokens, weights } = parseText(body);
        const scored = score(tokens, weights);
        if (noise === 0) return scored;
        const logit = scored.logit + noise * random.normal();
        return { ...scored, logit, probability: 1 / (1 + Math.exp(-logit)), label: logit > 0 ? 'positive' : logit < 0 ? 'negative' : 'neutral' };
      },
      about: {
        model: `sentiment of English text: the AFINN-165 lexicon (the sentiment package), each negator flipping the next ${NEGATION_SCOPE} words (src/demo/text-model.ts)`,
        sentiment:
          'POST /sentiment {"text": "a sentence"} or {"tokens": [words], "weights"?: [a number per word]} → {"logit", "probability", "label", "tokens", "contributions", "gradient"}',
        examples: 'GET /examples: sentences with their scores',
      },
      pages: { '/examples': () => ({ examples: EXAMPLES.map((text) => ({ text, ...score(tokenize(text)) })) }) },
    },
    options,
  );
}

function numberFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number ≥ 0, got ${JSON.stringify(text)}`);
  return v;
}

async function main(): Promise<void> {
  const shared = {
    host: process.env.DEMO_MODEL_HOST || '127.0.0.1',
    latencyMs: numberFromEnv('DEMO_MODEL_LATENCY_MS', 0),
    noise: numberFromEnv('DEMO_MODEL_NOISE', 0),
    seed: numberFromEnv('DEMO_MODEL_SEED', 0),
  };
  const mnist = await startDemoModel({ ...shared, port: numberFromEnv('DEMO_MODEL_PORT', DEFAULT_MNIST_PORT) });
  const text = await startTextModel({ ...shared, port: numberFromEnv('DEMO_TEXT_PORT', DEFAULT_TEXT_PORT) });
  // The service's playground offers the demo models at the ports it is told (the same variables).
  const ports = [
    mnist.port === DEFAULT_MNIST_PORT ? '' : `DEMO_MODEL_PORT=${mnist.port} `,
    text.port === DEFAULT_TEXT_PORT ? '' : `DEMO_TEXT_PORT=${text.port} `,
    shared.host === '127.0.0.1' ? '' : `DEMO_MODEL_HOST=${shared.host} `,
  ].join('');
  const probe = `{target: {url: "${mnist.url}", body: {image: "$input"}, outputPath: "/logits"}, at: d.pixels, method: "central", output: d.label}`;
  process.stdout.write(
    [
      `MNIST demo model answering POST ${mnist.url} (GET ${mnist.origin}/digits: ten test digits)`,
      `text demo model answering POST ${text.url} (GET ${text.origin}/examples: scored sentences)`,
      '',
      'Start the service allowing them:',
      `  ${ports}PROBE_ALLOWED_ORIGINS=${mnist.origin},${text.origin} npm start`,
      'then estimate the saliency map of the digit 3 (the gradient of its logit, 1569 queries):',
      `  node -e 'const d = require("./src/demo/mnist-digits.json").digits[3]; console.log(JSON.stringify(${probe}))' \\`,
      `    | curl -s localhost:3000/probe -H 'content-type: application/json' -d @-`,
      'or the Shapley values of the words of a sentence:',
      `  curl -s localhost:3000/probe -H 'content-type: application/json' \\`,
      `    -d '{"target":{"url":"${text.url}","body":{"tokens":"$input"},"outputPath":"/logit"},"at":["not","a","good","film"],"method":"shapley"}'`,
      '',
    ].join('\n'),
  );
  const stop = () => void Promise.all([mnist.close(), text.close()]).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`demo model: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
