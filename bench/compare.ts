// `npm run bench:compare`: the engine against PyTorch (float64, CPU, one thread) on the same
// functions and the same inputs, in the same run, timed the same way (value and value+gradient
// alternately, medians). Needs Debian's python3-torch; without it, says so and exits 0.
// A baseline for the engine's performance work, not a test.
//
// The cases: the three small functions of `npm run bench`, and issue 11's three real-size
// workloads — the lecture's f over 1e5 points (gradient of the sum), a 784-256-256-10 tanh network
// at batch 256 (gradient w.r.t. the weights), and question 2's Gaussian-process function at
// N = 1000. `COMPARE_CASES=points,network` picks cases by kind.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../src/engine/engine.js';
import { kernelBackend } from '../src/engine/tensor/backend/index.js';
import { Random } from '../src/engine/random.js';
import { grad as gradOf, value as valueOf } from '../src/engine/ad/differentiate.js';
import { readPoint } from '../src/service/request.js';
import { engineCases, timePair } from './engine.js';

const PYTHON = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const budgetSeconds = Number(process.env.BENCH_BUDGET_SECONDS ?? 3);

/** What the PyTorch side builds for a case (bench/torch_compare.py). */
type Kind = 'lecture' | 'network' | 'gp' | 'points' | 'deep';

interface CompareCase {
  name: string;
  kind: Kind;
  expr: string;
  at: Record<string, unknown>;
  wrt?: string[];
  /** The GP function's diagonal term (PyTorch's side builds the same function). */
  ridge?: number;
}

function matrix(random: Random, rows: number, cols: number, scale = 1): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => scale * random.normal()));
}

function vector(random: Random, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => scale * random.normal());
}

/** Question 2's function at size n (the issue's form: 0.01 on the diagonal). */
function gpExpr(n: number, ridge: number): string {
  return (
    'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\n' +
    'K1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\n' +
    `y.T @ inv(K1 + K2 + ${ridge} * eye(${n})) @ y`
  );
}

export function compareCases(): CompareCase[] {
  const small: CompareCase[] = engineCases().map((c, i) => ({ ...c, kind: (['lecture', 'network', 'gp'] as const)[i]!, ridge: 0.1 }));
  const random = new Random(7);
  const points = 100_000;
  const N = 1000;
  const large: CompareCase[] = [
    {
      name: `lecture f over ${points} points, gradient of the sum`,
      kind: 'points',
      expr: 'sum(sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2)))',
      at: { x: vector(random, points, 0.5) },
    },
    {
      name: 'tanh network 784-256-256-10, batch 256, squared error (gradient w.r.t. the weights)',
      kind: 'deep',
      expr: 'H1 = tanh(X @ W1 + b1)\nH2 = tanh(H1 @ W2 + b2)\nP = H2 @ W3 + b3\nsum((P - Y)^2)',
      at: {
        X: matrix(random, 256, 784),
        W1: matrix(random, 784, 256, 0.03),
        b1: vector(random, 256, 0.1),
        W2: matrix(random, 256, 256, 0.06),
        b2: vector(random, 256, 0.1),
        W3: matrix(random, 256, 10, 0.06),
        b3: vector(random, 10, 0.1),
        Y: matrix(random, 256, 10),
      },
      wrt: ['W1', 'b1', 'W2', 'b2', 'W3', 'b3'],
    },
    {
      name: `Gaussian-process f = yᵀ(K1 + K2 + 0.01 I)⁻¹y, N = ${N}`,
      kind: 'gp',
      expr: gpExpr(N, 0.01),
      ridge: 0.01,
      at: { X: matrix(random, N, 2), l: [0.9, 1.4], y: vector(random, N) },
    },
  ];
  const wanted = process.env.COMPARE_CASES?.split(',');
  const all = [...small, ...large];
  return wanted ? all.filter((c) => wanted.includes(c.kind)) : all;
}

function fmt(ms: number): string {
  return ms < 0.1 ? `${(ms * 1000).toFixed(2)} µs` : `${ms.toFixed(3)} ms`;
}

interface TorchResult {
  valueMs: number;
  gradMs: number;
  value: number;
}

function main(): void {
  if (!existsSync(PYTHON)) {
    console.log(`${PYTHON} not found: install python3-torch (apt-get install -y python3-torch) to compare with PyTorch`);
    return;
  }
  const cases = compareCases();
  const dir = mkdtempSync(join(tmpdir(), 'adjoint-bench-'));
  const casesFile = join(dir, 'cases.json');
  writeFileSync(casesFile, JSON.stringify(cases));
  let torch: { torch: string; blas: string; results: Record<string, TorchResult> };
  try {
    const script = new URL('./torch_compare.py', import.meta.url).pathname;
    torch = JSON.parse(execFileSync(PYTHON, [script, casesFile, String(budgetSeconds)], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  } catch (e) {
    console.log(`PyTorch is not usable here (${(e as Error).message.split('\n')[0]}): install python3-torch to compare`);
    return;
  }
  const engine = new Engine();
  const kernels = kernelBackend();
  console.log(`# Adjoint (the engine over tensors, ${kernels.name === 'openblas' ? `OpenBLAS ${kernels.detail}, ${kernels.threads} thread` : 'JavaScript kernels'}) against PyTorch ${torch.torch} (float64, CPU, one thread), same inputs, same run`);
  console.log(`# PyTorch's BLAS: ${torch.blas}`);
  console.log('');
  console.log('| function | Adjoint value | PyTorch value | Adjoint value+grad | PyTorch value+grad | value+grad, Adjoint / PyTorch | Adjoint (value+grad) / value |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const c of cases) {
    // The engine alone, over tensors (as PyTorch is timed): the request read once, no answer shaping.
    const point = readPoint(engine, { expr: c.expr }, c.at, ['at']);
    const value = valueOf(point.prepared, point.inputs);
    const grad = gradOf(point.prepared, point.inputs, c.wrt ?? point.prepared.inputs.map((i) => i.name));
    const [valueMs, gradMs] = timePair(() => value.run(), () => grad.run(), budgetSeconds * 1000);
    const t = torch.results[c.name]!;
    console.log(
      `| ${c.name} | ${fmt(valueMs)} | ${fmt(t.valueMs)} | ${fmt(gradMs)} | ${fmt(t.gradMs)} | ${(gradMs / t.gradMs).toFixed(2)} | ${(gradMs / valueMs).toFixed(2)} |`,
    );
  }
}

main();
