// SPSA and NES: antithetic random directions, drawn in a basis and combined with or without a
// prior.
//
//   basis pixel    u = z, z ∈ Rⁿ (Rademacher for spsa, standard normal for nes)
//         lowres   u = U z, z ∈ Rᵐ: one coefficient per cell of a coarse grid (the image's patch
//                  is the cell) and channel; U spreads it over the cell's pixels, divided by
//                  √(cell size) so U's columns are orthonormal
//         dct      u = U z with U's columns the lowest-frequency orthonormal 2-D DCT-II functions
//                  (as many per axis as lowres has cells), per channel
//   d_j = (f(x + σ s⊙u_j) − f(x − σ s⊙u_j)) / 2σ ≈ ⟨g⊙s, u_j⟩ = ⟨Uᵀ(g⊙s), z_j⟩
//   prior none     ĝ = mean_j d_j u_j / s; E[z zᵀ] = I makes E ĝ = U Uᵀ(g⊙s)/s: the gradient itself
//                  in the pixel basis, its projection on the basis otherwise
//   prior time     the directions are taken in turn, each correcting the running estimate c ∈ Rᵐ
//                  only by what it does not yet explain: c ← c + (d_j − ⟨c, z_j⟩) z_j / ‖z_j‖²,
//                  ĝ = U c / s. The estimate from the earlier directions is the prior for the
//                  next (a bandit-style update as in Ilyas et al. 2019 with the step that makes
//                  it agree with the newest measurement; the randomized Kaczmarz iteration).
//                  On a linear model its squared error shrinks by (1 − 1/m) per direction in
//                  expectation (geometrically), where the mean (prior none) only converges
//                  like 1/√k: with k ≫ m it is the projection to rounding.
//
// The queries do not depend on the estimate, so they run concurrently in any order; the answers
// are combined in the order the directions were drawn, so the same seed gives the same answer.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { Random } from '../engine/random.js';
import { fromTensor } from '../service/values.js';
import { SLICE_MS, type EstimateContext, type Point } from './estimators.js';
import type { Task } from './pool.js';

export type Direction = 'rademacher' | 'normal';
export const BASES = ['pixel', 'lowres', 'dct'] as const;
export type BasisName = (typeof BASES)[number];
export const PRIORS = ['none', 'time'] as const;
export type Prior = (typeof PRIORS)[number];

/** A linear map from m coefficients to the n elements of the input (orthonormal columns). */
export interface Basis {
  readonly size: number;
  /** u = U z, into `out`. */
  expand(z: Float64Array, out: Float64Array): void;
}

export const pixelBasis = (n: number): Basis => ({ size: n, expand: (z, out) => out.set(z) });

/** An image's geometry, as the bases need it: the element of pixel p's channel c. */
export interface Raster {
  height: number;
  width: number;
  channels: number;
  element(p: number, c: number): number;
}

/** Coarse cells of `cell` pixels (the last row and column of cells may be smaller). */
export function lowresBasis(image: Raster, cell: [number, number]): Basis {
  const rows = Math.ceil(image.height / cell[0]);
  const columns = Math.ceil(image.width / cell[1]);
  const cellOf = new Int32Array(image.height * image.width);
  const cellSize = new Float64Array(rows * columns);
  for (let r = 0; r < image.height; r++) {
    for (let c = 0; c < image.width; c++) {
      const k = Math.floor(r / cell[0]) * columns + Math.floor(c / cell[1]);
      cellOf[r * image.width + c] = k;
      cellSize[k]!++;
    }
  }
  const norm = cellSize.map((s) => 1 / Math.sqrt(s));
  const cells = rows * columns;
  return {
    size: cells * image.channels,
    expand(z, out) {
      for (let ch = 0; ch < image.channels; ch++) {
        for (let p = 0; p < cellOf.length; p++) {
          const k = cellOf[p]!;
          out[image.element(p, ch)] = z[ch * cells + k]! * norm[k]!;
        }
      }
    },
  };
}

/** Orthonormal DCT-II functions of one axis: row u is the frequency u over `length` samples. */
function dctRows(frequencies: number, length: number): Float64Array[] {
  return Array.from({ length: frequencies }, (_, u) => {
    const alpha = u === 0 ? Math.sqrt(1 / length) : Math.sqrt(2 / length);
    return Float64Array.from({ length }, (_, i) => alpha * Math.cos((Math.PI * (2 * i + 1) * u) / (2 * length)));
  });
}

/** The most DCT frequencies per axis: drawing a direction costs about (ku + ku·kv/H) operations per element. */
export const MAX_DCT_FREQUENCIES = 64;

/** Frequencies per axis of the dct basis for `cell`: as many as lowres has cells. */
export function dctFrequencies(image: Pick<Raster, 'height' | 'width'>, cell: [number, number]): [number, number] {
  return [Math.ceil(image.height / cell[0]), Math.ceil(image.width / cell[1])];
}

/** The lowest frequencies of the 2-D DCT: as many per axis as `cell` makes coarse cells. */
export function dctBasis(image: Raster, cell: [number, number]): Basis {
  const [ku, kv] = dctFrequencies(image, cell);
  const down = dctRows(ku, image.height);
  const across = dctRows(kv, image.width);
  const partial = new Float64Array(ku * image.width);
  return {
    size: ku * kv * image.channels,
    expand(z, out) {
      for (let ch = 0; ch < image.channels; ch++) {
        const offset = ch * ku * kv;
        // Separable: first along the columns (Σ_v z_uv φ_v(c)), then down the rows.
        partial.fill(0);
        for (let u = 0; u < ku; u++) {
          for (let v = 0; v < kv; v++) {
            const coefficient = z[offset + u * kv + v]!;
            if (coefficient === 0) continue;
            const phi = across[v]!;
            for (let c = 0; c < image.width; c++) partial[u * image.width + c]! += coefficient * phi[c]!;
          }
        }
        for (let r = 0; r < image.height; r++) {
          for (let c = 0; c < image.width; c++) {
            let sum = 0;
            for (let u = 0; u < ku; u++) sum += down[u]![r]! * partial[u * image.width + c]!;
            out[image.element(r * image.width + c, ch)] = sum;
          }
        }
      }
    },
  };
}

export interface RandomEstimate {
  gradient: Float64Array;
  /** prior none: per coordinate, the standard deviation of the k one-direction estimates over √k. */
  stderr?: Float64Array;
}

function fill(random: Random, kind: Direction, z: Float64Array): void {
  for (let i = 0; i < z.length; i++) z[i] = kind === 'rademacher' ? random.rademacher() : random.normal();
}

/** Yields to other requests on the event loop after SLICE_MS of computing. */
function slicer(): () => Promise<void> {
  let lastTurn = performance.now();
  return async () => {
    if (performance.now() - lastTurn > SLICE_MS) {
      await nextTurn();
      lastTurn = performance.now();
    }
  };
}

/** SPSA (Rademacher) or NES (Gaussian): k antithetic pairs drawn from `seed` in `basis`, combined as `prior` says. */
export async function randomDirections(
  ctx: EstimateContext,
  point: Point,
  options: { epsilon: number; directions: number; seed: number; kind: Direction; basis: Basis; prior: Prior; scale: Float64Array },
): Promise<RandomEstimate> {
  const { epsilon: sigma, directions: k, seed, kind, basis, scale } = options;
  const n = point.data.length;
  const plus = new Float64Array(k);
  const minus = new Float64Array(k);
  function* queries(): Generator<Task> {
    const random = new Random(seed);
    const z = new Float64Array(basis.size);
    const u = new Float64Array(n);
    for (let j = 0; j < k; j++) {
      fill(random, kind, z);
      basis.expand(z, u);
      const up = fromTensor({ shape: point.shape, data: point.data.map((x, i) => x + sigma * scale[i]! * u[i]!) });
      const down = fromTensor({ shape: point.shape, data: point.data.map((x, i) => x - sigma * scale[i]! * u[i]!) });
      yield async () => void (plus[j] = await ctx.f(up));
      yield async () => void (minus[j] = await ctx.f(down));
    }
  }
  await ctx.run(queries());
  const slopes = plus.map((p, j) => (p - minus[j]!) / (2 * sigma));
  return options.prior === 'time' ? combineInTurn(slopes, options) : averageDirections(slopes, n, options);
}

/**
 * The same directions again, from the same seed, averaged in order (Welford's running mean and sum
 * of squared deviations), with only O(n + m) memory.
 */
async function averageDirections(slopes: Float64Array, n: number, options: { seed: number; kind: Direction; basis: Basis; scale: Float64Array }): Promise<RandomEstimate> {
  const { kind, basis, scale } = options;
  const k = slopes.length;
  const random = new Random(options.seed);
  const z = new Float64Array(basis.size);
  const u = new Float64Array(n);
  const mean = new Float64Array(n);
  const m2 = new Float64Array(n);
  const turn = slicer();
  for (let j = 0; j < k; j++) {
    await turn();
    fill(random, kind, z);
    basis.expand(z, u);
    for (let i = 0; i < n; i++) {
      const estimate = (slopes[j]! * u[i]!) / scale[i]!;
      const delta = estimate - mean[i]!;
      mean[i]! += delta / (j + 1);
      m2[i]! += delta * (estimate - mean[i]!);
    }
  }
  return { gradient: mean, stderr: m2.map((s) => Math.sqrt(s / (k - 1) / k)) };
}

/** prior time: each direction corrects the running estimate c by the part of its slope c does not explain. */
async function combineInTurn(slopes: Float64Array, options: { seed: number; kind: Direction; basis: Basis; scale: Float64Array }): Promise<RandomEstimate> {
  const { kind, basis, scale } = options;
  const random = new Random(options.seed);
  const z = new Float64Array(basis.size);
  const c = new Float64Array(basis.size);
  const turn = slicer();
  for (const slope of slopes) {
    await turn();
    fill(random, kind, z);
    let predicted = 0;
    let norm2 = 0;
    for (let i = 0; i < z.length; i++) {
      predicted += c[i]! * z[i]!;
      norm2 += z[i]! * z[i]!;
    }
    if (norm2 === 0) continue;
    const step = (slope - predicted) / norm2;
    for (let i = 0; i < z.length; i++) c[i]! += step * z[i]!;
  }
  const gradient = new Float64Array(scale.length);
  basis.expand(c, gradient);
  for (let i = 0; i < gradient.length; i++) gradient[i]! /= scale[i]!;
  return { gradient };
}
