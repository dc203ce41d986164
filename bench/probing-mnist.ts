// Saliency maps of the MNIST demo model (src/demo) from queries alone: for each of its ten test
// digits, the map each probing method estimates of the digit's own logit, over HTTP from the demo
// model server on loopback, against the exact gradient by reverse mode (exactSaliency). Two
// figures of agreement: the cosine, and the overlap of the k most salient pixels (by magnitude).
// Part of bench/probing.ts (`--only=mnist`); prints the table of docs/probing.md, "The MNIST demo
// model".

import { mkdirSync, writeFileSync } from 'node:fs';
import { buildApp } from '../src/app.js';
import { demoDigits, exactSaliency, PIXELS, type Digit } from '../src/demo/model.js';
import { startDemoModel } from '../src/demo/model-server.js';
import { renderSaliency } from '../src/probe/picture.js';
import { defaultConfig, type Config } from '../src/service/config.js';
import { cosine } from '../src/probe/estimators.js';

/** Pixels compared by the top-k overlap: about the size of a stroke's most salient part. */
const TOP_K = 50;

interface Answer {
  gradient?: number[] | number[][];
  scores?: number[] | number[][];
  queries: number;
  /** format png: the service's picture of the map, base64. */
  png?: string;
}

type App = ReturnType<typeof buildApp>;

/**
 * The app both probing benches query through: one client sends every probe of a study, so no
 * per-client quota and no outbound-bytes bound; large budgets and concurrency.
 */
export function probingApp(origin: string, overrides: Partial<Config> = {}): App {
  return buildApp(
    defaultConfig({
      PROBE_ALLOWED_ORIGINS: [origin],
      PROBE_MAX_BUDGET: 100_000,
      PROBE_MAX_CONCURRENCY: 16,
      WORKERS: 0,
      RATE_LIMIT_MAX: 0,
      PROBE_CLIENT_QUERIES_PER_MINUTE: 0,
      PROBE_MAX_OUTBOUND_BYTES: 2 ** 40,
      ...overrides,
    }),
    { logger: false },
  );
}

/** One POST /probe of a digit's own logit at the demo model. */
async function probeDigit(app: App, url: string, digit: Digit, seed: number, body: Record<string, unknown>): Promise<Answer> {
  const response = await app.inject({
    method: 'POST',
    url: '/probe',
    payload: { target: { url, body: { image: '$input' }, outputPath: '/logits' }, at: digit.pixels, output: digit.label, concurrency: 16, seed, ...body },
  });
  if (response.statusCode !== 200) throw new Error(`${String(body.method)} failed: ${response.body}`);
  return response.json() as Answer;
}

/** One row of the table: a method with its settings, as the extra fields of a POST /probe. */
interface Row {
  method: string;
  settings: string;
  body: Record<string, unknown>;
}

const image = (patch: number, extra: Record<string, unknown> = {}) => ({ image: { shape: [28, 28], patch: [patch, patch], ...extra } });
/** A random method spending the whole budget on antithetic pairs (2k + 1 ≤ budget queries). */
const random = (method: string, budget: number, extra: Record<string, unknown> = {}) => ({ method, budget, directions: Math.floor((budget - 1) / 2), ...extra });

/** Random directions at each budget: the basis (its cell or frequency count set by image.patch) and the prior. */
const RANDOM_ROWS: Record<number, [basis: string, patch: number, prior: string][]> = {
  100: [['pixel', 1, 'none'], ['pixel', 1, 'time'], ['lowres', 4, 'none'], ['lowres', 4, 'time'], ['dct', 4, 'none'], ['dct', 4, 'time']],
  1000: [['pixel', 1, 'none'], ['pixel', 1, 'time'], ['lowres', 4, 'time'], ['lowres', 2, 'time'], ['dct', 4, 'time'], ['dct', 2, 'time']],
  10_000: [['pixel', 1, 'none'], ['dct', 2, 'time']],
};

function basisName(basis: string, patch: number): string {
  const cells = Math.ceil(28 / patch);
  if (basis === 'pixel') return 'pixels';
  return basis === 'lowres' ? `${cells}×${cells} cells of ${patch}×${patch}` : `DCT, lowest ${cells}×${cells}`;
}

/**
 * The rows at about `budget` queries: occlusion and grouped differences at the finest tiling
 * whose stated cost fits (they cannot spend more than pixel by pixel), random directions
 * spending the budget (spsa only in the pixel basis, as a reference for nes).
 */
function rows(budget: number): Row[] {
  const finest = (queriesPerGroup: number): number => {
    // Patches of p × p tile 28 × 28 in ⌈28 / p⌉² groups; 5% over the budget is let through so that 3×3 (101 queries) counts as 10².
    for (const p of [1, 2, 3, 4, 7, 14]) if (queriesPerGroup * Math.ceil(28 / p) ** 2 + 1 <= budget * 1.05) return p;
    return 28;
  };
  const grouped = (method: string, perGroup: number): Row => {
    const p = finest(perGroup);
    return { method, settings: p === 1 ? 'pixels' : `${p}×${p} patches`, body: { method, ...image(p) } };
  };
  const randomRows = RANDOM_ROWS[budget]!.flatMap(([basis, patch, prior]): Row[] => {
    const settings = `${basisName(basis, patch)}${prior === 'time' ? ', time prior' : ''}`;
    const body = random('nes', budget, { basis, prior, ...(basis === 'pixel' ? {} : image(patch)) });
    const nes = { method: 'nes', settings, body };
    return basis === 'pixel' && prior === 'none' ? [{ method: 'spsa', settings, body: random('spsa', budget) }, nes] : [nes];
  });
  return [grouped('occlusion', 1), grouped('forward', 1), grouped('central', 2), ...randomRows];
}

function flat(map: number[] | number[][]): number[] {
  return map.flat();
}

function topK(map: ArrayLike<number>, k: number): Set<number> {
  return new Set(Array.from({ length: map.length }, (_, i) => i).sort((i, j) => Math.abs(map[j]!) - Math.abs(map[i]!)).slice(0, k));
}

/** The share of the exact map's k most salient pixels that are among the estimate's k most salient. */
function overlap(estimate: ArrayLike<number>, exact: ArrayLike<number>, k: number): number {
  const wanted = topK(exact, k);
  let shared = 0;
  for (const i of topK(estimate, k)) if (wanted.has(i)) shared++;
  return shared / k;
}

const SIDE = 28;
/** The orthonormal DCT-II matrix: row k is the k-th frequency. */
const DCT = Array.from({ length: SIDE }, (_, k) =>
  Array.from({ length: SIDE }, (_, i) => Math.sqrt((k === 0 ? 1 : 2) / SIDE) * Math.cos((Math.PI * (2 * i + 1) * k) / (2 * SIDE))),
);

/** ‖projection of g on the lowest f × f DCT frequencies‖ / ‖g‖. */
function dctShare(g: ArrayLike<number>, f: number): number {
  let inside = 0;
  for (let a = 0; a < f; a++) {
    for (let b = 0; b < f; b++) {
      let c = 0;
      for (let r = 0; r < SIDE; r++) for (let q = 0; q < SIDE; q++) c += DCT[a]![r]! * DCT[b]![q]! * g[r * SIDE + q]!;
      inside += c * c;
    }
  }
  return Math.sqrt(inside / dotSelf(g));
}

/** ‖projection of g on functions constant over p × p cells‖ / ‖g‖ (the cell means). */
function lowresShare(g: ArrayLike<number>, p: number): number {
  let inside = 0;
  for (let r0 = 0; r0 < SIDE; r0 += p) {
    for (let q0 = 0; q0 < SIDE; q0 += p) {
      let sum = 0;
      let count = 0;
      for (let r = r0; r < Math.min(SIDE, r0 + p); r++) {
        for (let q = q0; q < Math.min(SIDE, q0 + p); q++) {
          sum += g[r * SIDE + q]!;
          count++;
        }
      }
      inside += (sum * sum) / count;
    }
  }
  return Math.sqrt(inside / dotSelf(g));
}

function dotSelf(g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return s;
}

/** How much of the exact map each smooth basis can hold: the cosine a random method in it cannot pass. */
function ceilings(exact: ArrayLike<number>[]): void {
  console.log('\n| basis | functions | cosine of the exact map to its projection (mean) |');
  console.log('| --- | --- | --- |');
  for (const p of [4, 2]) {
    const f = Math.ceil(SIDE / p);
    const mean = (share: (g: ArrayLike<number>) => number) => (exact.reduce((s, g) => s + share(g), 0) / exact.length).toFixed(3);
    console.log(`| ${basisName('lowres', p)} | ${f * f} | ${mean((g) => lowresShare(g, p))} |`);
    console.log(`| ${basisName('dct', p)} | ${f * f} | ${mean((g) => dctShare(g, f))} |`);
  }
}

/** The pictures in docs/probing.md: the digit 3's maps at about 10³ queries, drawn by the service (format png). */
const PICTURES: [name: string, body: Record<string, unknown>][] = [
  ['occlusion', { method: 'occlusion', ...image(1) }],
  ['forward', { method: 'forward', ...image(1) }],
  ['central-2x2', { method: 'central', ...image(2) }],
  ['nes', random('nes', 1000, image(1))],
  ['nes-dct-time', random('nes', 1000, { basis: 'dct', prior: 'time', ...image(2) })],
];
const PICTURE_DIR = new URL('../docs/images/', import.meta.url);

export async function pictures(app: App, url: string, digit: Digit): Promise<number> {
  mkdirSync(PICTURE_DIR, { recursive: true });
  const exact = exactSaliency(digit.pixels, digit.label);
  const picture = { height: 28, width: 28, channels: 1, layout: 'hwc' as const, pixels: Float64Array.from(digit.pixels), range: [0, 1] as [number, number] };
  writeFileSync(new URL(`mnist-${digit.label}-exact.png`, PICTURE_DIR), renderSaliency({ ...picture, map: exact, kind: 'gradient' }).png);
  let spent = 0;
  for (const [name, body] of PICTURES) {
    const answer = await probeDigit(app, url, digit, 0, { ...body, format: 'png' });
    writeFileSync(new URL(`mnist-${digit.label}-${name}.png`, PICTURE_DIR), Buffer.from(answer.png!, 'base64'));
    console.log(`docs/images/mnist-${digit.label}-${name}.png: ${answer.queries} queries, cosine ${cosine(flat(answer.gradient ?? answer.scores!), exact).toFixed(3)}`);
    spent += answer.queries;
  }
  return spent;
}

export async function mnistTable(quick: boolean): Promise<number> {
  const model = await startDemoModel();
  const app = probingApp(model.origin);
  await app.ready();
  const digits = quick ? demoDigits().slice(0, 3) : demoDigits();
  const budgets = quick ? [100, 1000] : [100, 1000, 10_000];
  let spent = 0;
  console.log(`\n### Saliency maps of the MNIST demo model (means over ${digits.length} digits, the digit's own logit)\n`);
  console.log(`| budget | method | settings | queries | cosine | top-${TOP_K} overlap | cosine to ∇f ⊙ x |`);
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  const measured = new Set<string>();
  for (const budget of budgets) {
    for (const row of rows(budget)) {
      // A deterministic method already at its finest tiling is not measured again at a larger budget.
      const key = row.body.budget === undefined ? `${row.method} ${row.settings}` : `${row.method} ${row.settings} ${budget}`;
      if (measured.has(key)) continue;
      measured.add(key);
      let cos = 0;
      // Occlusion by a zero baseline measures removing the ink: f(x) − f(x − x_g) ≈ Σ_g ∇f ⊙ x, gradient × input.
      let cosTimesInput = 0;
      let shared = 0;
      const queries = new Set<number>();
      for (const [index, digit] of digits.entries()) {
        const exact = exactSaliency(digit.pixels, digit.label);
        const answer = await probeDigit(app, model.url, digit, index, row.body);
        const map = flat(answer.gradient ?? answer.scores!);
        if (map.length !== PIXELS) throw new Error(`${row.method} answered ${map.length} numbers`);
        cos += cosine(map, exact) / digits.length;
        cosTimesInput += cosine(map, exact.map((g, i) => g * digit.pixels[i]!)) / digits.length;
        shared += overlap(map, exact, TOP_K) / digits.length;
        queries.add(answer.queries);
        spent += answer.queries;
      }
      const timesInput = row.method === 'occlusion' ? cosTimesInput.toFixed(3) : '—';
      console.log(`| ${budget} | ${row.method} | ${row.settings} | ${[...queries].join(', ')} | ${cos.toFixed(3)} | ${shared.toFixed(2)} | ${timesInput} |`);
    }
  }
  ceilings(digits.map((d) => exactSaliency(d.pixels, d.label)));
  if (!quick) spent += await pictures(app, model.url, demoDigits()[3]!);
  await app.close();
  await model.close();
  return spent;
}
