// Shapley values of tokens by permutation sampling (Castro et al. 2009; Captum's
// ShapleyValueSampling), with antithetic permutations and a cache.
//
//   For a permutation π of the m tokens, add them one at a time to the baseline (every token
//   removed, or replaced by `mask`): token π_k contributes f(S_k) − f(S_{k−1}), S_k = {π_1..π_k}.
//   φ_i = E_π[contribution of i]. Each permutation is paired with its reverse (antithetic: a token
//   early in one is late in the other, which cancels much of the variance of tokens whose
//   contribution depends on how many others are present); the standard error is that of the
//   pair means, over √pairs. Every permutation's contributions add up to f(all) − f(baseline)
//   (they telescope), so the estimates do too: the efficiency check reports the gap.
//
// One permutation costs at most m − 1 queries (S_0 and S_m are the baseline and f(x), asked once).
// The same coalition is never queried twice within a probe: coalitions are keyed by which tokens
// they hold, and a repeat (common for small m: every permutation starts with one of m
// singletons) is read from the cache and counted in `cacheHits`. Repeats are found as the queries
// are made, in the order the permutations were drawn, so the count is the same for the same seed.

import { Random } from '../engine/random.js';
import type { EstimateContext, Token } from './estimators.js';
import type { Task } from './pool.js';

export interface ShapleyEstimate {
  scores: Float64Array;
  /** Per token: the standard deviation of the antithetic pairs' means over √pairs (NaN for one pair). */
  stderr: Float64Array;
  /** f at the baseline (no token present). */
  baseline: number;
  /** Coalitions found in the cache instead of queried. */
  cacheHits: number;
}

/** A random permutation of 0..m−1 (Fisher–Yates). */
function permutation(random: Random, m: number): Int32Array {
  const order = Int32Array.from({ length: m }, (_, i) => i);
  for (let i = m - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** The input for a coalition: its tokens in their order, the others removed or masked. */
function coalitionInput(tokens: readonly Token[], present: Uint8Array, mask: Token | undefined): Token[] {
  return mask === undefined ? tokens.filter((_, i) => present[i] === 1) : tokens.map((token, i) => (present[i] === 1 ? token : mask));
}

export async function shapleySampling(
  ctx: EstimateContext,
  tokens: readonly Token[],
  value: number,
  options: { samples: number; seed: number; mask: Token | undefined },
): Promise<ShapleyEstimate> {
  const m = tokens.length;
  const pairs = Math.max(1, Math.floor(options.samples / 2));
  const random = new Random(options.seed);
  // Each permutation and, for each of its prefixes S_1..S_{m−1}, where the coalition's value is kept.
  const orders: Int32Array[] = [];
  const slots: Int32Array[] = [];
  const values: number[] = [NaN, value];
  const EMPTY = 0;
  const FULL = 1;
  const cache = new Map<string, number>();
  let cacheHits = 0;

  function* queries(): Generator<Task> {
    const emptyInput = coalitionInput(tokens, new Uint8Array(m), options.mask);
    yield async () => void (values[EMPTY] = await ctx.f(emptyInput));
    for (let p = 0; p < pairs; p++) {
      const forward = permutation(random, m);
      for (const order of [forward, forward.slice().reverse()]) {
        const present = new Uint8Array(m);
        // The coalition's key: its membership bits, 16 to a character.
        const bits = new Uint16Array(Math.ceil(m / 16));
        const slot = new Int32Array(m + 1);
        slot[0] = EMPTY;
        slot[m] = FULL;
        for (let k = 1; k < m; k++) {
          const token = order[k - 1]!;
          present[token] = 1;
          bits[token >> 4]! |= 1 << (token & 15);
          const key = String.fromCharCode(...bits);
          const known = cache.get(key);
          if (known !== undefined) {
            cacheHits++;
            slot[k] = known;
            continue;
          }
          const index = values.push(NaN) - 1;
          cache.set(key, index);
          slot[k] = index;
          const input = coalitionInput(tokens, present, options.mask);
          yield async () => void (values[index] = await ctx.f(input));
        }
        orders.push(order);
        slots.push(slot);
      }
    }
  }
  await ctx.run(queries());

  // Per pair, the mean of the two permutations' contributions; then mean and spread over pairs.
  const sum = new Float64Array(m);
  const sumSquares = new Float64Array(m);
  const pairMean = new Float64Array(m);
  for (let p = 0; p < pairs; p++) {
    pairMean.fill(0);
    for (const q of [2 * p, 2 * p + 1]) {
      const order = orders[q]!;
      const slot = slots[q]!;
      for (let k = 1; k <= m; k++) pairMean[order[k - 1]!]! += (values[slot[k]!]! - values[slot[k - 1]!]!) / 2;
    }
    for (let i = 0; i < m; i++) {
      sum[i]! += pairMean[i]!;
      sumSquares[i]! += pairMean[i]! * pairMean[i]!;
    }
  }
  const scores = sum.map((s) => s / pairs);
  const stderr = scores.map((mean, i) => (pairs < 2 ? NaN : Math.sqrt(Math.max(0, (sumSquares[i]! - pairs * mean * mean) / (pairs - 1)) / pairs)));
  return { scores, stderr, baseline: values[EMPTY]!, cacheHits };
}
