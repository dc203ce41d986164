// How many queries a probe sends (README "Black-box probing"): what each method needs, the
// default budget with its reserve for retries, the directions or permutations a budget pays for,
// and, when a plan does not fit, what would make it fit.

import { overBudget } from './errors.js';
import type { ImageSpec } from './image.js';
import type { ProbeMethod } from './methods.js';
import type { NoiseSpec } from './noise.js';

/** The fields of a probe request that decide its plan. */
export interface PlanRequest {
  budget?: number | undefined;
  directions?: number | undefined;
  image?: ImageSpec | undefined;
  segments?: unknown;
  samples?: number | undefined;
  noise?: NoiseSpec | undefined;
}

/**
 * How a request could plan at most `most` queries (or evaluations), or undefined when no change
 * of budget, directions or method gets it there.
 */
export function fewerQueries(method: ProbeMethod, request: Pick<PlanRequest, 'directions' | 'image' | 'segments'>, most: number): string | undefined {
  const grouped = (request.image !== undefined || request.segments !== undefined) && method !== 'spsa' && method !== 'nes';
  if (grouped) return most >= 2 ? `make at most ${method === 'central' ? Math.floor((most - 1) / 2) : most - 1} groups (a larger image.patch or image.stride, or fewer segments)` : undefined;
  switch (method) {
    case 'forward':
    case 'central':
      return most >= 5 ? `use spsa or nes with a budget of at most ${most}` : undefined;
    case 'spsa':
    case 'nes':
      if (most < 5) return undefined;
      return request.directions !== undefined ? `lower directions to at most ${Math.floor((most - 1) / 2)}` : `lower budget to at most ${most}`;
    case 'occlusion':
      return most >= 2 ? `occlude at most ${most - 1} tokens` : undefined;
    case 'shapley':
      return most >= 3 ? `lower samples (each permutation costs up to one query per token but one)` : undefined;
  }
}

/** Adds a reserve for retries to the queries a method needs: a tenth, at least 4. */
export function withRetryReserve(queries: number): number {
  return queries + Math.max(4, Math.ceil(queries / 10));
}

export interface QueryPlan {
  budget: number;
  /** Queries the estimator sends when no retry is needed (f(x) included); shapley's cache may send fewer. */
  planned: number;
  directions?: number;
  samples?: number;
}

/** Permutations shapley samples unless told `samples` or a budget (16 antithetic pairs). */
export const DEFAULT_SAMPLES = 32;

/** Most queries of `samples` permutations of m tokens: f(all), f(baseline), and m − 1 coalitions each. */
function shapleyQueries(m: number, samples: number): number {
  return 2 + samples * Math.max(0, m - 1);
}

/**
 * How many queries a probe sends. The default budget is what central differences need (2n + 1)
 * plus a retry reserve (see withRetryReserve), at most `maxBudget`; occlusion's is m + 1 plus the
 * reserve. spsa and nes use k = max(2, ⌊0.45·(budget − 1)⌋) directions unless told `directions`,
 * so about a tenth of the budget is left for retries.
 */
export function planQueries(
  method: ProbeMethod,
  n: number,
  request: Pick<PlanRequest, 'budget' | 'directions' | 'image' | 'samples' | 'noise'>,
  maxBudget: number,
): QueryPlan {
  if (request.budget !== undefined && request.budget > maxBudget) {
    throw overBudget(`budget ${request.budget} is more than this server's PROBE_MAX_BUDGET of ${maxBudget} queries`);
  }
  const random = method === 'spsa' || method === 'nes';
  // f(x) asked again to estimate the noise (difference methods only).
  const again = (request.noise?.repeats ?? 1) - 1;
  const needs: Record<ProbeMethod, number> = {
    forward: n + 1 + again,
    central: 2 * n + 1 + again,
    spsa: 2 * (request.directions ?? 2) + 1 + again,
    nes: 2 * (request.directions ?? 2) + 1 + again,
    occlusion: n + 1,
    shapley: shapleyQueries(n, request.samples ?? DEFAULT_SAMPLES),
  };
  const basis = method === 'occlusion' || method === 'shapley' ? needs[method] : Math.max(needs.central, needs[method]);
  const budget = request.budget ?? Math.min(maxBudget, withRetryReserve(basis));
  let planned = needs[method];
  let directions: number | undefined;
  let samples: number | undefined;
  if (method === 'shapley') {
    // Without samples, as many antithetic pairs as about nine tenths of the budget pays for.
    samples = request.samples ?? (request.budget === undefined ? DEFAULT_SAMPLES : Math.max(2, 2 * Math.floor((0.9 * (budget - 2)) / Math.max(1, n - 1) / 2)));
    planned = shapleyQueries(n, samples);
  }
  if (random) {
    directions = request.directions ?? Math.max(2, Math.floor(0.45 * (budget - 1 - again)));
    planned = 2 * directions + 1 + again;
  }
  if (planned > budget) {
    const units = request.image === undefined ? (method === 'occlusion' ? 'tokens' : 'coordinates') : 'groups of pixels';
    const what = random
      ? `${directions} random directions`
      : method === 'shapley'
        ? `${samples} permutations of ${n} tokens`
        : method === 'occlusion' ? `occluding ${n} ${units}` : `${method} differences on ${n} ${units}`;
    const alternative = method === 'forward' || method === 'central' ? 'use spsa or nes, which work within any budget of at least 5' : undefined;
    const fix =
      planned <= maxBudget
        ? `raise budget (at most ${maxBudget})${alternative ? `, or ${alternative}` : ''}`
        : `this server allows at most ${maxBudget} (PROBE_MAX_BUDGET)${alternative ? `: ${alternative}` : ''}`;
    throw overBudget(`${what} need ${planned} queries, more than the budget of ${budget}; ${fix}`);
  }
  return { budget, planned, ...(directions === undefined ? {} : { directions }), ...(samples === undefined ? {} : { samples }) };
}
