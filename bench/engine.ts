// The cheap-gradient principle, measured: for each function, the time of one value and of one
// value+gradient, and their ratio (the lecture's reverse mode puts it near 2-4). Ratios are taken
// within one run, so a noisy shared machine moves both sides alike.

import { Engine } from '../src/engine/engine.js';
import { planRequest } from '../src/service/request.js';
import { Random } from '../src/engine/random.js';

export interface EngineFigure {
  name: string;
  valueMs: number;
  gradMs: number;
  ratio: number;
  flopsValue: number;
  flopsGrad: number;
}

function matrix(random: Random, rows: number, cols: number, scale = 1): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => scale * random.normal()));
}

/**
 * Median times in ms of `a` and of `b`, measured alternately (a, b, a, b, ...) over at least
 * `budgetMs` and 5 rounds, so that a slow spell of the shared machine slows both alike.
 */
export function timePair(a: () => unknown, b: () => unknown, budgetMs = 1500): [number, number] {
  a(); // warm up (and prepare)
  b();
  const ta: number[] = [];
  const tb: number[] = [];
  const start = performance.now();
  while (ta.length < 5 || performance.now() - start < budgetMs) {
    let t = performance.now();
    a();
    ta.push(performance.now() - t);
    t = performance.now();
    b();
    tb.push(performance.now() - t);
    if (ta.length >= 5000) break;
  }
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return [median(ta), median(tb)];
}

/** Best seconds per call over `rounds` rounds of `reps` calls each, after a warm-up. */
export function bestSeconds(fn: () => unknown, reps: number, rounds = 5): number {
  for (let i = 0; i < Math.max(2, reps); i++) fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    best = Math.min(best, (performance.now() - t0) / 1000 / reps);
  }
  return best;
}

export function engineCases(): { name: string; expr: string; at: Record<string, unknown>; wrt?: string[] }[] {
  const random = new Random(42);
  const N = 200;
  return [
    { name: "lecture f(x) = sqrt(x² + exp(x²)) + cos(x² + exp(x²))", expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } },
    {
      name: 'two-layer tanh network, batch 64, 784-128-10, squared error (gradient w.r.t. the weights)',
      expr: 'H = tanh(X @ W1 + b1)\nP = H @ W2 + b2\nsum((P - Y)^2)',
      at: {
        X: matrix(random, 64, 784),
        W1: matrix(random, 784, 128, 0.03),
        b1: matrix(random, 1, 128)[0],
        W2: matrix(random, 128, 10, 0.1),
        b2: matrix(random, 1, 10)[0],
        Y: matrix(random, 64, 10),
      },
      wrt: ['W1', 'b1', 'W2', 'b2'],
    },
    {
      name: `Gaussian-process f = yᵀ(K1 + K2)⁻¹y, N = ${N}`,
      expr:
        'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\n' +
        'K1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\ny.T @ inv(K1 + K2 + 0.1 * eye(' + N + ')) @ y',
      at: { X: matrix(random, N, 2), l: [0.9, 1.4], y: matrix(random, 1, N)[0] },
    },
  ];
}

export function measureEngine(budgetMs = 1500): EngineFigure[] {
  const engine = new Engine();
  return engineCases().map(({ name, expr, at, wrt }) => {
    const value = planRequest(engine, 'eval', { expr, at });
    const grad = planRequest(engine, 'grad', { expr, at, wrt });
    const [valueMs, gradMs] = timePair(() => value.run(), () => grad.run(), 2 * budgetMs);
    return { name, valueMs, gradMs, ratio: gradMs / valueMs, flopsValue: value.flops, flopsGrad: grad.flops };
  });
}
