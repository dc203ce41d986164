// The step from the noise: the formulas, the noise estimated from repeated queries of a model on
// loopback that adds Gaussian noise of a known σ, the repeats counted in the budget, and the
// chosen step's error against fixed steps on a model whose gradient is known.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';
import { estimateNoise, MAX_NOISE_STEP, stepFromNoise } from '../../src/probe/noise.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from './fake-model.js';

describe('stepFromNoise', () => {
  const noise = (sigma: number, curvature = 1) => ({ repeats: 10, mean: 0, sigma, curvature });

  it('minimises h·M/2 + 2σ/h (forward) and h²·M/6 + σ/h (central): the derivative of the bound is 0 there', () => {
    for (const sigma of [1e-9, 1e-6, 1e-4]) {
      for (const curvature of [0.5, 1, 8]) {
        const forward = stepFromNoise('forward', noise(sigma, curvature), 0);
        expect(curvature / 2 - (2 * sigma) / forward ** 2).toBeCloseTo(0, 6);
        const central = stepFromNoise('central', noise(sigma, curvature), 0);
        expect((central * curvature) / 3 - sigma / central ** 2).toBeCloseTo(0, 3);
        expect(stepFromNoise('nes', noise(sigma, curvature), 0)).toBe(central);
      }
    }
  });

  it('never goes below the method’s default step nor above MAX_NOISE_STEP', () => {
    expect(stepFromNoise('central', noise(0), 1e-2)).toBe(1e-2);
    expect(stepFromNoise('forward', noise(1e-12), 1e-3)).toBe(1e-3);
    expect(stepFromNoise('central', noise(1), 1e-2)).toBe(MAX_NOISE_STEP);
  });

  it('estimates σ by the sample standard deviation', () => {
    expect(estimateNoise([1, 2, 3, 4])).toMatchObject({ mean: 2.5, sigma: Math.sqrt(5 / 3), repeats: 4, curvature: 1 });
  });
});

describe('POST /probe with noise', () => {
  const n = 24;
  const random = new Random(21);
  const w = Array.from({ length: n }, () => random.normal());
  const x = Array.from({ length: n }, () => random.normal());
  /** f(x) = Σ wᵢ sin(xᵢ): |f'''| per coordinate is |wᵢ cos xᵢ| ≤ |wᵢ|. */
  const f = (v: number[]) => v.reduce((s, vi, i) => s + w[i]! * Math.sin(vi), 0);
  const gradient = x.map((xi, i) => w[i]! * Math.cos(xi));
  const SIGMA = 1e-5;
  let noiseRandom = new Random(1);
  let model: FakeModel;
  let app: App;
  beforeAll(async () => {
    model = await serveModel((input) => ({ json: { logit: f(input as number[]) + SIGMA * noiseRandom.normal() } }));
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin] });
  });
  afterAll(async () => {
    await app.close();
    await model.close();
  });
  const probe = async (fields: Record<string, unknown>) => {
    noiseRandom = new Random(1);
    const before = model.requests;
    const response = await app.inject({
      method: 'POST',
      url: '/probe',
      payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: x, concurrency: 1, ...fields },
    });
    const answer = response.json() as { gradient: number[]; epsilon: number; value: number; queries: number; noise?: { repeats: number; sigma: number }; detail?: string };
    return { status: response.statusCode, answer, sent: model.requests - before };
  };
  const rmsError = (g: number[]) => Math.sqrt(g.reduce((s, gi, i) => s + (gi - gradient[i]!) ** 2, 0) / n);

  it('asks f(x) `repeats` times within the budget, reports σ and the step chosen from it', async () => {
    const { status, answer, sent } = await probe({ method: 'central', noise: { repeats: 30 } });
    expect(status, answer.detail).toBe(200);
    expect(answer.queries).toBe(2 * n + 30);
    expect(sent).toBe(answer.queries);
    expect(answer.noise!.repeats).toBe(30);
    // 30 draws: the sample standard deviation is within about ±40% of σ.
    expect(answer.noise!.sigma).toBeGreaterThan(0.6 * SIGMA);
    expect(answer.noise!.sigma).toBeLessThan(1.4 * SIGMA);
    expect(answer.epsilon).toBeCloseTo(Math.cbrt(3 * answer.noise!.sigma), 12);
    expect(answer.value).toBeCloseTo(f(x), 5);
  });

  it('the chosen step errs less than the default and than steps a decade either side', async () => {
    for (const method of ['central', 'forward']) {
      const chosen = await probe({ method, noise: { repeats: 20 } });
      const chosenError = rmsError(chosen.answer.gradient);
      for (const factor of [0.1, 10]) {
        const other = await probe({ method, epsilon: chosen.answer.epsilon * factor });
        expect(chosenError, `${method}, step × ${factor}`).toBeLessThan(rmsError(other.answer.gradient));
      }
      const byDefault = await probe({ method });
      expect(chosenError, `${method}, default step`).toBeLessThan(rmsError(byDefault.answer.gradient));
    }
  });

  it('counts the repeats in the budget, and is only for difference methods', async () => {
    const tooSmall = await probe({ method: 'forward', noise: { repeats: 10 }, budget: n + 5 });
    expect(tooSmall.status).toBe(422);
    expect(tooSmall.answer.detail).toMatch(new RegExp(`need ${n + 10} queries, more than the budget of ${n + 5}`));
    expect(tooSmall.sent).toBe(0);
    const directions = await probe({ method: 'spsa', noise: { repeats: 5 }, budget: 101 });
    expect(directions.answer.queries).toBeLessThanOrEqual(101);
    expect(directions.answer.queries).toBe(2 * Math.floor(0.45 * 96) + 5);
    const occlusion = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: 'sum(x)' }, at: [1, 2], method: 'occlusion', noise: { repeats: 3 } } });
    expect(occlusion.statusCode).toBe(400);
    expect(occlusion.json()).toMatchObject({ detail: expect.stringMatching(/noise chooses the step of a difference method/) });
  });

  it('keeps the default step for a target without noise', async () => {
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: 'sum(sin(x))' }, at: [0.3, -1], method: 'central', noise: { repeats: 4 } } });
    expect(response.json()).toMatchObject({ noise: { repeats: 4, sigma: 0 }, epsilon: Math.cbrt(Number.EPSILON), queries: 8 });
  });
});
