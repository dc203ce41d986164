// The difference step from the target's noise. f(x) is asked `repeats` times; the spread of the
// answers estimates the output noise σ, and the step minimises the usual bound on the total error
// of a difference quotient, truncation plus noise (Gill, Murray & Wright 1981; Moré & Wild 2012):
//
//   forward             |error| ≈ h·M₂/2 + 2σ/h      least at h = 2·√(σ/M₂)
//   central, spsa, nes  |error| ≈ h²·M₃/6 + σ/h      least at h = (3σ/M₃)^(1/3)
//
// h relative to the coordinate's scale (as epsilon is), M₂ = |f''| and M₃ = |f'''| in the same
// units: `curvature`, 1 unless the caller knows better (a logit that changes by O(1) over the
// pixel range). The step is never smaller than the method's default (which already covers
// rounding: a target without noise keeps it) and never larger than MAX_NOISE_STEP, past which a
// difference no longer measures a local slope.

export interface NoiseSpec {
  /** Queries of f(x), the first included (at least 2). */
  repeats: number;
  /** |f''| (forward) or |f'''| (central, spsa, nes), relative to the coordinates' scale (default 1). */
  curvature?: number | undefined;
}

export interface NoiseEstimate {
  repeats: number;
  /** The mean of the repeated answers: the answer's value. */
  mean: number;
  /** Their sample standard deviation. */
  sigma: number;
  curvature: number;
}

/** The largest step the noise may choose (a tenth of the coordinate's scale). */
export const MAX_NOISE_STEP = 0.1;

export function estimateNoise(values: readonly number[], curvature = 1): NoiseEstimate {
  const k = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / k;
  const squares = values.reduce((s, v) => s + (v - mean) ** 2, 0);
  return { repeats: k, mean, sigma: Math.sqrt(squares / (k - 1)), curvature };
}

/** The step that minimises truncation plus noise error for `method`, within [fallback, MAX_NOISE_STEP]. */
export function stepFromNoise(method: 'forward' | 'central' | 'spsa' | 'nes', noise: NoiseEstimate, fallback: number): number {
  const { sigma, curvature } = noise;
  const optimum = method === 'forward' ? 2 * Math.sqrt(sigma / curvature) : Math.cbrt((3 * sigma) / curvature);
  return Math.min(MAX_NOISE_STEP, Math.max(fallback, optimum));
}
