// The lecture's question 3, measured with the service itself: the app listens on loopback, a fake
// model with a known gradient listens on another loopback port, and every estimate is a real
// POST /probe whose queries travel over HTTP. Prints the tables of docs/probing.md.
//
//   npx tsx bench/probing.ts            (about a minute; --quick for a smaller run)
//   npx tsx bench/probing.ts --only=mnist   (saliency maps of the MNIST demo model: bench/probing-mnist.ts)

import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { Random } from '../src/engine/random.js';
import { buildApp } from '../src/app.js';
import { defaultConfig } from '../src/service/config.js';
import { serveModel } from '../test/probe/fake-model.js';
import { cosine } from '../src/probe/estimators.js';
import { mnistTable, probingApp } from './probing-mnist.js';

const quick = process.argv.includes('--quick');
/** `--only=sizes|steps|occlusion|mnist` runs one section. */
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const runs = (section: string) => only === undefined || only === section;
const SIZES = quick ? [10, 100] : [10, 100, 1000];
const SEEDS = quick ? [1] : [1, 2, 3];
const DIRECTIONS = [5, 50, 500];

// --- the fake models --------------------------------------------------------------------------

/** How the model answers: exact float64, computed in float32, or float32 plus Gaussian noise. */
type Precision = 'float64' | 'float32' | 'float32 + noise 1e-3';
const PRECISIONS: Precision[] = ['float64', 'float32', 'float32 + noise 1e-3'];
const NOISE = 1e-3;

interface Model {
  /** The logit, computed at `precision`. */
  logit(x: number[], precision: Precision, noise: Random): number;
  /** The exact gradient (float64). */
  gradient(x: number[]): number[];
}

const f32 = Math.fround;

function finish(value: number, precision: Precision, noise: Random): number {
  return precision === 'float32 + noise 1e-3' ? f32(value + NOISE * noise.normal()) : value;
}

/** f(x) = w·x + b, w ~ N(0, 1). */
function linearModel(n: number, random: Random): Model {
  const w = Array.from({ length: n }, () => random.normal());
  const b = random.normal();
  return {
    logit(x, precision, noise) {
      if (precision === 'float64') return x.reduce((s, xi, i) => s + w[i]! * xi, b);
      let s = f32(b);
      for (let i = 0; i < n; i++) s = f32(s + f32(f32(w[i]!) * f32(x[i]!)));
      return finish(s, precision, noise);
    },
    gradient: () => w.slice(),
  };
}

/**
 * f(x) = v·tanh(W x + c) with 32 hidden units, W ~ N(0, gain²/n): logits of a few units, curved
 * along every axis; a larger gain makes the model sharper (larger higher derivatives).
 */
function tanhModel(n: number, random: Random, gain = 1): Model {
  const hidden = 32;
  const W = Array.from({ length: hidden }, () => Array.from({ length: n }, () => (gain * random.normal()) / Math.sqrt(n)));
  const c = Array.from({ length: hidden }, () => 0.5 * random.normal());
  const v = Array.from({ length: hidden }, () => random.normal());
  const pre = (x: number[], round: (y: number) => number) =>
    W.map((row, j) => round(row.reduce((s, wji, i) => round(s + round(round(wji) * round(x[i]!))), round(c[j]!))));
  return {
    logit(x, precision, noise) {
      const round = precision === 'float64' ? (y: number) => y : f32;
      const h = pre(x, round).map((a) => round(Math.tanh(a)));
      const out = h.reduce((s, hj, j) => round(s + round(round(v[j]!) * hj)), 0);
      return finish(out, precision, noise);
    },
    gradient(x) {
      const h = pre(x, (y) => y).map(Math.tanh);
      const g = new Array<number>(n).fill(0);
      h.forEach((hj, j) => {
        const scale = v[j]! * (1 - hj * hj);
        W[j]!.forEach((wji, i) => (g[i]! += scale * wji));
      });
      return g;
    },
  };
}

// --- the service --------------------------------------------------------------------------------

interface ProbeAnswer {
  value: number;
  gradient?: unknown;
  scores?: number[];
  queries: number;
  stderr?: unknown;
}

async function start() {
  const models = new Map<string, Model>();
  const noise = new Random(99);
  const server = await serveModel((input, { body }) => {
    const { model, precision } = body as { model: string; precision: Precision };
    return { json: { logits: [models.get(model)!.logit(input as number[], precision, noise)] } };
  });
  const app = probingApp(server.origin, { PROBE_MAX_FLOPS: 1e15, BODY_LIMIT: 16 * 1_048_576 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  const probe = async (body: Record<string, unknown>): Promise<ProbeAnswer> => {
    const response = await request(`${base}/probe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ concurrency: 16, ...body }),
    });
    const answer = (await response.body.json()) as ProbeAnswer;
    if (response.statusCode !== 200) throw new Error(`probe failed: ${JSON.stringify(answer)}`);
    return answer;
  };
  const close = async () => {
    await app.close();
    await server.close();
  };
  return { models, server, probe, close };
}

/** A cosine: three decimals, or how far below 1 it is once that is too close to see. */
function fmt(c: number): string {
  if (c < 0.9995) return c.toFixed(3);
  const gap = 1 - c;
  return gap < 1e-15 ? '1' : `1 − ${gap.toExponential(0)}`;
}

// --- the measurements -----------------------------------------------------------------------------

type Service = Awaited<ReturnType<typeof start>>;

/** What every measurement needs: the service, a random source, and one probe of a fake model. */
class Measure {
  readonly random = new Random(2024);
  queries = 0;

  constructor(readonly service: Service) {}

  /** One POST /probe of the model `modelId`, answering at `precision`. */
  async estimate(modelId: string, precision: Precision, x: number[], method: string, extra: Record<string, unknown> = {}): Promise<ProbeAnswer> {
    const answer = await this.service.probe({
      target: { url: `${this.service.server.origin}/model`, body: { input: '$input', model: modelId, precision }, outputPath: '/logits/0' },
      at: x,
      method,
      ...extra,
    });
    this.queries += answer.queries;
    return answer;
  }

  model(modelId: string, build: () => Model): Model {
    if (!this.service.models.has(modelId)) this.service.models.set(modelId, build());
    return this.service.models.get(modelId)!;
  }

  point(n: number): number[] {
    return Array.from({ length: n }, () => this.random.normal());
  }
}

/** Cosine to the true gradient against queries, per method, for each input size. */
async function sizeTables(measure: Measure): Promise<void> {
  const kinds = [
    ['linear', linearModel],
    ['tanh network (32 hidden units)', tanhModel],
  ] as const;
  for (const [kind, build] of kinds) {
    for (const precision of PRECISIONS) {
      const rows = new Map<string, string[]>();
      const row = (label: string) => rows.get(label) ?? (rows.set(label, []), rows.get(label)!);
      for (const n of SIZES) {
        const modelId = `${kind}-${n}`;
        const model = measure.model(modelId, () => build(n, measure.random));
        const x = measure.point(n);
        const exact = model.gradient(x);
        for (const method of ['forward', 'central']) {
          const answer = await measure.estimate(modelId, precision, x, method);
          row(`${method} | ${method === 'forward' ? 'n + 1' : '2n + 1'}`).push(fmt(cosine(answer.gradient as number[], exact)));
        }
        for (const method of ['spsa', 'nes']) {
          for (const k of DIRECTIONS) {
            let mean = 0;
            for (const seed of SEEDS) {
              const answer = await measure.estimate(modelId, precision, x, method, { directions: k, seed, budget: 2 * k + 1 });
              mean += cosine(answer.gradient as number[], exact) / SEEDS.length;
            }
            row(`${method} | ${2 * k + 1}`).push(fmt(mean));
          }
        }
      }
      console.log(`\n#### ${kind}, ${precision}\n`);
      console.log(`| method | queries | ${SIZES.map((n) => `n = ${n}`).join(' | ')} |`);
      console.log(`| --- | --- | ${SIZES.map(() => '---').join(' | ')} |`);
      for (const [label, cells] of rows) console.log(`| ${label} | ${cells.join(' | ')} |`);
    }
  }
}

/** Cosine of forward and central differences against the step, n = 100. */
async function stepTable(measure: Measure): Promise<void> {
  const epsilons = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];
  console.log('\n### Step size (n = 100): cosine to the true gradient\n');
  console.log(`| method | model, answers | ${epsilons.map((e) => `ε = ${e.toExponential(0)}`).join(' | ')} |`);
  console.log(`| --- | --- | ${epsilons.map(() => '---').join(' | ')} |`);
  const smooth = 'tanh network (32 hidden units)-100';
  measure.model(smooth, () => tanhModel(100, measure.random));
  measure.model('sharp-100', () => tanhModel(100, measure.random, 8));
  const cases: [string, string, Precision][] = [
    ['tanh, float64', smooth, 'float64'],
    ['tanh, float32', smooth, 'float32'],
    ['tanh, float32 + noise 1e-3', smooth, 'float32 + noise 1e-3'],
    ['sharp tanh (gain 8), float32', 'sharp-100', 'float32'],
  ];
  const x = measure.point(100);
  for (const method of ['forward', 'central']) {
    for (const [label, modelId, precision] of cases) {
      const exact = measure.service.models.get(modelId)!.gradient(x);
      const cells: string[] = [];
      for (const epsilon of epsilons) {
        const answer = await measure.estimate(modelId, precision, x, method, { epsilon });
        cells.push(fmt(cosine(answer.gradient as number[], exact)));
      }
      console.log(`| ${method} | ${label} | ${cells.join(' | ')} |`);
    }
  }
}

async function main(): Promise<void> {
  const measure = new Measure(await start());
  const started = performance.now();
  if (runs('sizes')) await sizeTables(measure);
  if (runs('steps')) await stepTable(measure);
  if (runs('occlusion')) await occlusionTable();
  if (runs('mnist')) measure.queries += await mnistTable(quick);
  const seconds = (performance.now() - started) / 1000;
  console.log(`\n${measure.queries} gradient queries through POST /probe in ${seconds.toFixed(1)} s (${Math.round(measure.queries / seconds)} queries/s, model and service on one machine)`);
  await measure.service.close();
}

// --- text: occlusion on a bag-of-words sentiment scorer -------------------------------------------

const WEIGHTS: Record<string, number> = {
  great: 2,
  good: 1,
  fun: 1,
  brilliant: 2.5,
  boring: -1.5,
  terrible: -2.5,
  bad: -1.5,
};

/** A bag of words with negation: "not" flips the sign of the word after it. Logit, or probability. */
function sentiment(tokens: string[], squash: boolean): number {
  let logit = -0.2;
  tokens.forEach((token, i) => {
    const weight = WEIGHTS[token] ?? 0;
    logit += tokens[i - 1] === 'not' ? -weight : weight;
  });
  return squash ? 1 / (1 + Math.exp(-logit)) : logit;
}

async function occlusionTable(): Promise<void> {
  const textServer = await serveModel((input, { body }) => {
    const tokens = input as string[];
    const squash = (body as { squash: boolean }).squash;
    return { json: { score: sentiment(tokens.filter((t) => t !== '[MASK]'), squash) } };
  });
  // The text model lives on another port: a second app allows that origin.
  const app = buildApp(defaultConfig({ PROBE_ALLOWED_ORIGINS: [textServer.origin], WORKERS: 0 }), { logger: false });
  await app.ready();
  const sentence = 'the plot was not good but the acting was great and never boring'.split(' ');
  const redundant = 'great great brilliant fun film'.split(' ');
  for (const [title, tokens] of [
    ['a sentence with negation', sentence],
    ['redundant evidence', redundant],
  ] as const) {
    const columns: [string, Record<string, unknown>][] = [
      ['logit, removed', { squash: false }],
      ['logit, masked', { squash: false, mask: '[MASK]' }],
      ['probability, removed', { squash: true }],
    ];
    const results: number[][] = [];
    let queries = 0;
    for (const [, options] of columns) {
      const { squash, mask } = options as { squash: boolean; mask?: string };
      const response = await app.inject({
        method: 'POST',
        url: '/probe',
        payload: {
          target: { url: `${textServer.origin}/sentiment`, body: { input: '$input', squash }, outputPath: '/score' },
          at: tokens,
          method: 'occlusion',
          ...(mask === undefined ? {} : { mask }),
        },
      });
      const answer = response.json() as ProbeAnswer;
      results.push(answer.scores!);
      queries = answer.queries;
    }
    console.log(`\n#### ${title[0]!.toUpperCase()}${title.slice(1)} (${queries} queries each)\n`);
    console.log(`| token | weight | ${columns.map(([name]) => name).join(' | ')} |`);
    console.log(`| --- | --- | ${columns.map(() => '---').join(' | ')} |`);
    tokens.forEach((token, i) => {
      console.log(`| ${token} | ${WEIGHTS[token] ?? 0} | ${results.map((r) => r[i]!.toFixed(3)).join(' | ')} |`);
    });
  }
  await app.close();
  await textServer.close();
}

await main();
