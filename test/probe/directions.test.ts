// SPSA and NES with directions in a coarse basis (lowres, dct) and the time prior, against linear
// models on loopback whose gradient is known: the projection on the basis is recovered, to
// rounding once the directions are many times the basis's size (prior time: the error shrinks
// geometrically), and the prior beats the average at the same budget.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from './fake-model.js';

const flat = (value: unknown): number[] => (Array.isArray(value) ? value.flat(Infinity as 1) : [value]) as number[];
const cosine = (a: number[], b: ArrayLike<number>) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((ai, i) => {
    dot += ai * b[i]!;
    na += ai * ai;
    nb += b[i]! * b[i]!;
  });
  return dot / Math.sqrt(na * nb);
};
const rows = (data: number[], width: number) => Array.from({ length: data.length / width }, (_, r) => data.slice(r * width, (r + 1) * width));

const S = 12;
/** The model's weights, swapped per test: f(x) = w·x. */
let w = new Float64Array(S * S);

let model: FakeModel;
let app: App;
beforeAll(async () => {
  model = await serveModel((input) => ({ json: { logits: [flat(input).reduce((s, xi, i) => s + w[i]! * xi, 0)] } }));
  app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin] });
});
afterAll(async () => {
  await app.close();
  await model.close();
});

async function probe(request: Record<string, unknown>) {
  const response = await app.inject({
    method: 'POST',
    url: '/probe',
    payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, concurrency: 8, ...request },
  });
  return { status: response.statusCode, answer: response.json() as { gradient: unknown; stderr?: unknown; basis?: { name: string; size: number }; queries: number; detail?: string } };
}

const random = new Random(11);
const x = rows(Array.from({ length: S * S }, () => random.uniform()), S);

describe('spsa and nes in a coarse basis', () => {
  it('lowres with the time prior recovers a gradient constant on 4×4 cells: 200 directions for 9 cells', async () => {
    const cells = Array.from({ length: 9 }, () => random.normal());
    w = Float64Array.from({ length: S * S }, (_, p) => cells[Math.floor(Math.floor(p / S) / 4) * 3 + Math.floor((p % S) / 4)]!);
    for (const method of ['spsa', 'nes']) {
      const { status, answer } = await probe({ at: x, method, image: { shape: [S, S], patch: [4, 4] }, basis: 'lowres', prior: 'time', directions: 200 });
      expect(status, answer.detail).toBe(200);
      expect(answer.basis).toEqual({ name: 'lowres', size: 9 });
      expect(answer.queries).toBe(401);
      expect(answer.stderr).toBeUndefined();
      // Expected squared error (1 − 1/9)^200 ≈ 6e-11 of the gradient's.
      expect(1 - cosine(flat(answer.gradient), w)).toBeLessThan(1e-8);
      flat(answer.gradient).forEach((g, i) => expect(g).toBeCloseTo(w[i]!, 3));
      // The average of the same directions: cos ≈ √(k/(k + m)) ≈ 0.98.
      const plain = await probe({ at: x, method, image: { shape: [S, S], patch: [4, 4] }, basis: 'lowres', directions: 200 });
      expect(1 - cosine(flat(plain.answer.gradient), w)).toBeGreaterThan(1e-4);
    }
  });

  it('dct with the time prior recovers a low-frequency gradient; pixel directions cannot in the same budget', async () => {
    // A smooth gradient: a mix of the (0, 1), (1, 0) and (2, 2) cosines.
    const phi = (u: number, i: number) => Math.cos((Math.PI * (2 * i + 1) * u) / (2 * S));
    w = Float64Array.from({ length: S * S }, (_, p) => {
      const [r, c] = [Math.floor(p / S), p % S];
      return phi(0, r) * phi(1, c) - 0.5 * phi(1, r) * phi(0, c) + 0.3 * phi(2, r) * phi(2, c);
    });
    const image = { shape: [S, S], patch: [4, 4] };
    const dct = await probe({ at: x, method: 'nes', image, basis: 'dct', prior: 'time', directions: 200 });
    expect(dct.answer.basis).toEqual({ name: 'dct', size: 9 });
    expect(cosine(flat(dct.answer.gradient), w)).toBeGreaterThan(1 - 1e-8);
    // 144 pixels: expected squared error (1 − 1/144)^200 ≈ 0.25.
    const pixel = await probe({ at: x, method: 'nes', image, prior: 'time', directions: 200 });
    expect(pixel.answer.basis).toEqual({ name: 'pixel', size: S * S });
    expect(cosine(flat(pixel.answer.gradient), w)).toBeLessThan(0.95);
  });

  it('without a prior, lowres directions average to the projection of the gradient on the cells (unbiased there)', async () => {
    w = Float64Array.from({ length: S * S }, () => random.normal());
    // The projection: each 4×4 cell's mean weight.
    const projection = w.map((_, p) => {
      const [top, left] = [Math.floor(Math.floor(p / S) / 4) * 4, Math.floor((p % S) / 4) * 4];
      let sum = 0;
      for (let r = top; r < top + 4; r++) for (let c = left; c < left + 4; c++) sum += w[r * S + c]!;
      return sum / 16;
    });
    const seeds = 40;
    const sum = new Float64Array(S * S);
    for (let seed = 0; seed < seeds; seed++) {
      const { answer } = await probe({ at: x, method: 'spsa', seed, image: { shape: [S, S], patch: [4, 4] }, basis: 'lowres', directions: 4 });
      flat(answer.gradient).forEach((g, i) => (sum[i]! += g / seeds));
    }
    expect(cosine(Array.from(sum), projection)).toBeGreaterThan(0.95);
  });

  it('the time prior is closer than the average at the same budget (pixel basis, k = n/2)', async () => {
    let prior = 0;
    let plain = 0;
    for (let seed = 0; seed < 4; seed++) {
      w = Float64Array.from({ length: S * S }, () => random.normal());
      const common = { at: x, method: 'nes', seed, directions: 72 };
      prior += cosine(flat((await probe({ ...common, prior: 'time' })).answer.gradient), w) / 4;
      plain += cosine(flat((await probe(common)).answer.gradient), w) / 4;
    }
    // Theory for a linear model: √(1 − (1 − 1/n)^k) ≈ 0.63 against √(k/(k + n)) ≈ 0.58.
    expect(prior).toBeGreaterThan(plain);
    expect(prior).toBeGreaterThan(0.6);
  });

  it('refuses a coarse basis without an image, and a basis or prior for other methods', async () => {
    const flatX = x.flat();
    expect((await probe({ at: flatX, method: 'nes', basis: 'dct' })).answer.detail).toMatch(/basis dct needs image/);
    expect((await probe({ at: flatX, method: 'central', prior: 'time' })).answer.detail).toMatch(/prior is for spsa and nes/);
  });
});
