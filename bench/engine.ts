// The cheap-gradient principle, measured: for each function, the time of one value and of one
// value+gradient, and their ratio (the lecture's reverse mode puts it near 2-4). Ratios are taken
// within one run, so a noisy shared machine moves both sides alike.

import { Engine } from '../src/engine/operations.js';
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

/** Median time of `fn` in ms, over repeats filling at least `budgetMs` (and at least 5 runs). */
export function timeIt(fn: () => unknown, budgetMs = 1500): number {
  fn(); // warm up (and prepare)
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 5 || performance.now() - start < budgetMs) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
    if (times.length >= 2000) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
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
    const value = engine.plan('eval', { expr, at });
    const grad = engine.plan('grad', { expr, at, wrt });
    const valueMs = timeIt(() => value.run(), budgetMs);
    const gradMs = timeIt(() => grad.run(), budgetMs);
    return { name, valueMs, gradMs, ratio: gradMs / valueMs, flopsValue: value.flops, flopsGrad: grad.flops };
  });
}
