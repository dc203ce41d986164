// POST /probe "method": "shapley" against scorers on loopback: efficiency to 1e-9 and the exact
// weights of a linear scorer, the exact Shapley values of a scorer with an interaction (computed
// here by enumerating every coalition), standard errors that shrink like 1/√samples, the cache
// (no coalition queried twice: the model sees each input once), and the query bounds.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from './fake-model.js';

interface Answer {
  method: string;
  value: number;
  scores: number[];
  stderr: (number | 'NaN')[];
  samples: number;
  baselineValue: number;
  efficiency: { sum: number; expected: number; gap: number };
  cacheHits: number;
  queries: number;
  code?: string;
  detail?: string;
}

const WEIGHTS: Record<string, number> = { great: 2, brilliant: 2.5, good: 1, fun: 1, boring: -1.5, bad: -1.5, terrible: -2.5 };
const linear = (tokens: string[]) => tokens.reduce((s, t) => s + (WEIGHTS[t] ?? 0), -0.2);
/** "not" flips the sign of the word after it, and a saturating squash of the sum. */
const interacting = (tokens: string[]) => {
  let sum = -0.2;
  tokens.forEach((t, i) => (sum += (tokens[i - 1] === 'not' ? -1 : 1) * (WEIGHTS[t] ?? 0)));
  return 3 * Math.tanh(sum / 3);
};
/**
 * A bonus of 3 once three weighted words are present: an interaction of order three, which
 * antithetic pairs do not cancel (pairwise ones, such as "not", they cancel exactly).
 */
const threshold = (tokens: string[]) => linear(tokens) + (new Set(tokens.filter((t) => t in WEIGHTS)).size >= 3 ? 3 : 0);
const SCORERS: Record<string, (tokens: string[]) => number> = { linear, interacting, threshold };

let model: FakeModel;
let app: App;
/** Every input the model was asked about, as JSON. */
const seen: string[] = [];
beforeAll(async () => {
  model = await serveModel((input, { body }) => {
    seen.push(JSON.stringify(input));
    const scorer = SCORERS[(body as { scorer: string }).scorer]!;
    return { json: { logit: scorer(input as string[]) } };
  });
  app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin] });
});
afterAll(async () => {
  await app.close();
  await model.close();
});

async function shapley(scorer: string, at: string[], fields: Record<string, unknown> = {}) {
  const response = await app.inject({
    method: 'POST',
    url: '/probe',
    payload: { target: { url: model.url, body: { input: '$input', scorer }, outputPath: '/logit' }, at, method: 'shapley', concurrency: 8, ...fields },
  });
  return { status: response.statusCode, answer: response.json() as Answer };
}

/** Exact Shapley values by enumerating all 2^m coalitions (tokens removed when absent). */
function exactShapley(f: (tokens: string[]) => number, tokens: string[]): number[] {
  const m = tokens.length;
  const value = (mask: number) => f(tokens.filter((_, i) => mask & (1 << i)));
  const factorial = (k: number): number => (k <= 1 ? 1 : k * factorial(k - 1));
  return tokens.map((_, i) => {
    let phi = 0;
    for (let mask = 0; mask < 1 << m; mask++) {
      if (mask & (1 << i)) continue;
      const size = mask.toString(2).split('').filter((b) => b === '1').length;
      phi += ((factorial(size) * factorial(m - size - 1)) / factorial(m)) * (value(mask | (1 << i)) - value(mask));
    }
    return phi;
  });
}

const sentence = 'the plot was not good but the acting was great and never boring'.split(' ');

describe('POST /probe: shapley', () => {
  it('on a linear scorer: efficiency to 1e-9, the weights exactly, zero standard errors', async () => {
    const { status, answer } = await shapley('linear', sentence, { samples: 8 });
    expect(status, answer.detail).toBe(200);
    expect(answer.method).toBe('shapley');
    expect(answer.value).toBeCloseTo(linear(sentence), 12);
    expect(answer.baselineValue).toBeCloseTo(-0.2, 12);
    expect(Math.abs(answer.efficiency.gap)).toBeLessThan(1e-9);
    expect(Math.abs(answer.efficiency.sum - (linear(sentence) - linear([])))).toBeLessThan(1e-9);
    answer.scores.forEach((s, i) => expect(Math.abs(s - (WEIGHTS[sentence[i]!] ?? 0))).toBeLessThan(1e-9));
    answer.stderr.forEach((e) => expect(e).toBeLessThan(1e-9));
  });

  it('converges to the exact Shapley values of scorers with interactions, and keeps efficiency', async () => {
    const tokens = 'not good but great and not boring fun'.split(' ');
    for (const scorer of ['interacting', 'threshold']) {
      const f = SCORERS[scorer]!;
      const exact = exactShapley(f, tokens);
      const { answer } = await shapley(scorer, tokens, { samples: 400, seed: 3 });
      expect(Math.abs(answer.efficiency.gap)).toBeLessThan(1e-9);
      expect(answer.efficiency.expected).toBeCloseTo(f(tokens) - f([]), 12);
      answer.scores.forEach((s, i) => {
        // Within 4 standard errors of the exact value, and the errors are small.
        expect(Math.abs(s - exact[i]!), `${scorer}: token ${i}`).toBeLessThan(4 * (answer.stderr[i] as number) + 1e-9);
        expect(answer.stderr[i] as number).toBeLessThan(0.1);
      });
    }
  });

  it('standard errors shrink like 1/√samples', async () => {
    const mean = (xs: (number | 'NaN')[]) => (xs as number[]).reduce((a, b) => a + b, 0) / xs.length;
    const sizes = [16, 64, 256];
    const errors: number[] = [];
    for (const samples of sizes) {
      // Averaged over seeds, so the ratio is not one draw's luck.
      let e = 0;
      for (const seed of [1, 2, 3, 4]) e += mean((await shapley('threshold', sentence, { samples, seed })).answer.stderr) / 4;
      errors.push(e);
    }
    // Four times the samples: half the error (√4), within sampling noise.
    for (let k = 1; k < sizes.length; k++) {
      const ratio = errors[k - 1]! / errors[k]!;
      expect(ratio).toBeGreaterThan(1.6);
      expect(ratio).toBeLessThan(2.5);
    }
  });

  it('never queries the same coalition twice: repeats come from the cache and are counted', async () => {
    seen.length = 0;
    const tokens = ['good', 'not', 'bad'];
    const { answer } = await shapley('interacting', tokens, { samples: 20 });
    // 3 tokens: 6 proper non-empty coalitions at most, plus f(all) and f(baseline).
    expect(answer.queries).toBeLessThanOrEqual(8);
    expect(answer.queries).toBe(seen.length);
    expect(new Set(seen).size).toBe(seen.length);
    // Each of the 20 permutations needs 2 coalitions: all but the distinct ones were hits.
    expect(answer.cacheHits).toBe(20 * 2 - (answer.queries - 2));
    // Exact for 3 tokens once every ordering has been seen.
    exactShapley(interacting, tokens).forEach((phi, i) => expect(answer.scores[i]).toBeCloseTo(phi, 1));
  });

  it('masks instead of removing, and is the same for the same seed', async () => {
    seen.length = 0;
    const one = await shapley('linear', ['great', 'film'], { mask: '[MASK]', samples: 4, seed: 9 });
    expect(seen).toContain(JSON.stringify(['[MASK]', '[MASK]']));
    expect(one.answer.scores).toEqual([expect.closeTo(2, 12), expect.closeTo(0, 12)]);
    const again = await shapley('linear', ['great', 'film'], { mask: '[MASK]', samples: 4, seed: 9, concurrency: 1 });
    expect(again.answer).toEqual(one.answer);
  });

  it('plans at most 2 + samples·(m − 1) queries and refuses what the budget cannot pay for, before sending', async () => {
    const before = seen.length;
    const tooMany = await shapley('linear', sentence, { samples: 1_000_000 });
    expect(tooMany.status).toBe(422);
    expect(tooMany.answer.detail).toMatch(/1000000 permutations of 13 tokens need 12000002 queries.*PROBE_MAX_BUDGET/);
    const small = await shapley('linear', sentence, { samples: 10, budget: 100 });
    expect(small.status).toBe(422);
    expect(small.answer.detail).toMatch(/need 122 queries, more than the budget of 100/);
    expect(seen.length).toBe(before);
    // Given only a budget, as many antithetic pairs as about 0.9 of it pays for.
    const fitted = await shapley('linear', sentence, { budget: 200 });
    expect(fitted.answer.samples).toBe(14);
    expect(fitted.answer.queries).toBeLessThanOrEqual(2 + 14 * 12);
  });
});
