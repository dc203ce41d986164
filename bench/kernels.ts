// Micro-benchmark of the tensor kernels: `npx tsx bench/kernels.ts`.
// Prints matmul GFLOP/s (the JS kernels, and the backend selected at start-up when it is another:
// see bench/kernels-backend.ts for OpenBLAS against JS) and elementwise throughput (million
// elements per second). Each figure is the best of several timed rounds after a warm-up, so V8
// has optimised the loops.

import { ENTRIES } from '../src/engine/ops/table.js';
import { matmul, reduce, permute } from '../src/engine/tensor/index.js';
import type { BinaryName, UnaryName } from '../src/engine/tensor/index.js';

// The elementwise kernels are generated from the op table's scalar code: reached through the entries.
type Kernel = (args: readonly Tensor[], attrs: object, shape: readonly number[]) => Tensor;
const unary = (name: UnaryName, x: Tensor): Tensor => (ENTRIES[name].impl as Kernel)([x], {}, x.shape);
const binary = (name: BinaryName, a: Tensor, b: Tensor): Tensor => (ENTRIES[name].impl as Kernel)([a, b], {}, []);
import { gemmIkj } from '../src/engine/tensor/backend/js.js';
import { kernelBackend, withBackend } from '../src/engine/tensor/backend/index.js';
import type { Tensor } from '../src/engine/tensor/index.js';
import { bestSeconds } from './engine.js';

function random(shape: number[]): Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  const data = new Float64Array(size);
  for (let i = 0; i < size; i++) data[i] = Math.random() * 2 - 1;
  return { shape, data };
}

const time = bestSeconds;

const rows: string[][] = [];

for (const [m, k, n] of [[64, 784, 128], [200, 200, 200], [500, 500, 500]] as const) {
  const a = random([m, k]);
  const b = random([k, n]);
  const flops = 2 * m * k * n;
  const reps = Math.max(1, Math.round(2e8 / flops));
  const packed = time(() => withBackend('js', () => matmul(a, b)), reps);
  const c = new Float64Array(m * n);
  const ikj = time(() => gemmIkj(m, n, k, a.data, 0, k, 1, b.data, 0, n, 1, c, 0, n), reps, 3);
  rows.push([
    `matmul ${m}x${k} @ ${k}x${n}`,
    `${(flops / packed / 1e9).toFixed(2)} GFLOP/s`,
    `(i-k-j loop: ${(flops / ikj / 1e9).toFixed(2)})`,
    `${(packed * 1e3).toFixed(2)} ms`,
  ]);
  if (kernelBackend().name !== 'js') {
    const selected = time(() => matmul(a, b), reps);
    rows.push([`  on ${kernelBackend().name}`, `${(flops / selected / 1e9).toFixed(2)} GFLOP/s`, '', `${(selected * 1e3).toFixed(2)} ms`]);
  }
}

const N = 1 << 20;
const x = random([N]);
const y = random([N]);
const s: Tensor = { shape: [], data: Float64Array.of(1.5) };
const row = random([1024]);
const matrix = random([1024, 1024]);
const elementwise: [string, () => unknown][] = [
  ['exp', () => unary('exp', x)],
  ['sigmoid', () => unary('sigmoid', x)],
  ['neg', () => unary('neg', x)],
  ['mul (same shape)', () => binary('mul', x, y)],
  ['mul (tensor * scalar)', () => binary('mul', x, s)],
  ['add (1024x1024 + 1024 row)', () => binary('add', matrix, row)],
  ['pow (x ^ 2)', () => binary('pow', x, { shape: [], data: Float64Array.of(2) })],
  ['pow (x ^ 1.5)', () => binary('pow', x, s)],
  ['sum (last axis of 1024x1024)', () => reduce('sum', matrix, [1])],
  ['sum (first axis of 1024x1024)', () => reduce('sum', matrix, [0])],
  ['transpose 1024x1024', () => permute(matrix, [1, 0])],
];
for (const [name, fn] of elementwise) {
  const seconds = time(fn, 10);
  rows.push([name, `${(N / seconds / 1e6).toFixed(0)} Melem/s`, '', `${(seconds * 1e3).toFixed(2)} ms`]);
}

// Why the loops are written out: a shared map(f) factory makes the call to f megamorphic.
function mapWith(f: (v: number) => number): (x: Float64Array, out: Float64Array) => void {
  return (xs, out) => {
    for (let i = 0; i < xs.length; i++) out[i] = f(xs[i]!);
  };
}
const factoryKernels = [Math.exp, (v: number) => -v, Math.abs, Math.sin, Math.tanh, Math.sqrt].map(mapWith);
const out = new Float64Array(N);
for (const kernel of factoryKernels) kernel(x.data, out);
const factoryNeg = factoryKernels[1]!;
const factorySeconds = time(() => factoryNeg(x.data, out), 10);
rows.push([
  'neg via a shared map(f) factory',
  `${(N / factorySeconds / 1e6).toFixed(0)} Melem/s`,
  '(for comparison)',
  `${(factorySeconds * 1e3).toFixed(2)} ms`,
]);

const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`node ${process.version}, ${N} elements for elementwise rows; kernel backend ${kernelBackend().name}`);
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
