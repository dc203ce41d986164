// The kernel backends side by side in one run: `npx tsx bench/kernels-backend.ts`.
// Prints gemm 1000³ GFLOP/s, LU / inverse / Cholesky at N = 1000 through the tensor layer (lu,
// inv, cholesky: what the op table calls) for js and openblas, the two ways OpenBLAS could invert
// (dgetri against solving with the identity), and the small sizes where a native call stops
// paying (the thresholds in src/engine/tensor/backend/openblas.ts). Best of a few rounds each;
// OpenBLAS with BLAS_THREADS threads (default 1).

import { cholesky, inv, lu } from '../src/engine/tensor/index.js';
import type { Tensor } from '../src/engine/tensor/index.js';
import { kernelBackend, withBackend } from '../src/engine/tensor/backend/index.js';
import type { KernelBackend } from '../src/engine/tensor/backend/index.js';
import { jsKernels } from '../src/engine/tensor/backend/js.js';
import { loadOpenblas } from '../src/engine/tensor/backend/openblas.js';
import { bestSeconds } from './engine.js';

const loaded = loadOpenblas(Number(process.env['BLAS_THREADS'] ?? 1));
if (loaded instanceof Error) {
  console.error(`OpenBLAS cannot be used (${loaded.message}): nothing to compare`);
  process.exit(1);
}
const native = loaded.native;
const selected = kernelBackend();
console.log(`node ${process.version}; ${loaded.config}; ${loaded.threads()} OpenBLAS thread(s); selected at start-up: ${selected.name}`);

function random(length: number): Float64Array {
  return Float64Array.from({ length }, () => Math.random() * 2 - 1);
}

const time = bestSeconds;

const rows: string[][] = [['', 'js', 'openblas', 'ratio']];
const row = (name: string, js: number, ob: number, unit: (s: number) => string): void => {
  rows.push([name, unit(js), unit(ob), `${(js / ob).toFixed(1)}x`]);
};
const ms = (s: number): string => `${(s * 1e3).toFixed(1)} ms`;

// gemm 1000³
{
  const n = 1000;
  const a = random(n * n);
  const b = random(n * n);
  const c = new Float64Array(n * n);
  const flops = 2 * n * n * n;
  const run = (k: KernelBackend) => () => k.gemm(false, false, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n);
  const js = time(run(jsKernels), 1, 2);
  const ob = time(run(native), 3);
  rows.push(['gemm 1000³', `${(flops / js / 1e9).toFixed(2)} GFLOP/s`, `${(flops / ob / 1e9).toFixed(1)} GFLOP/s`, `${(js / ob).toFixed(1)}x`]);
  const at = time(() => native.gemm(true, true, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n), 3);
  const jsT = time(() => jsKernels.gemm(true, true, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n), 1, 2);
  rows.push(['gemm 1000³, Aᵀ Bᵀ', `${(flops / jsT / 1e9).toFixed(2)} GFLOP/s`, `${(flops / at / 1e9).toFixed(1)} GFLOP/s`, `${(jsT / at).toFixed(1)}x`]);
}

// The tensor layer at N = 1000: lu (getrf), inv, cholesky.
{
  const n = 1000;
  const a: Tensor = { shape: [n, n], data: random(n * n) };
  for (let i = 0; i < n; i++) a.data[i * (n + 1)] = a.data[i * (n + 1)]! + n;
  const s: Tensor = { shape: [n, n], data: new Float64Array(n * n) };
  jsKernels.gemm(false, true, n, n, n, 1 / n, a.data, 0, n, a.data, 0, n, 0, s.data, 0, n);
  const under = (k: KernelBackend, fn: () => unknown) => () => withBackend(k, fn);
  for (const [name, fn] of [
    ['lu (getrf) N = 1000', () => lu(a)],
    ['inv N = 1000', () => inv(a)],
    ['cholesky N = 1000', () => cholesky(s)],
  ] as const) {
    row(name, time(under(jsKernels, fn), 1, 2), time(under(native, fn), 3), ms);
  }
  // Two ways to invert with OpenBLAS: dgetrf + dgetri (what `inverse` does), or LU then solve with I.
  const getri = time(() => native.inverse(n, a.data.slice(), 0, n), 3);
  const viaSolve = time(() => {
    const f = a.data.slice();
    const ipiv = new Int32Array(n);
    native.getrf(n, f, 0, n, ipiv, 0);
    const x = new Float64Array(n * n);
    for (let i = 0; i < n; i++) x[i * (n + 1)] = 1;
    native.getrs(false, n, n, f, 0, n, ipiv, 0, x, 0, n);
  }, 3);
  rows.push(['inverse N = 1000: dgetrf+dgetri | getrf+getrs(I)', ms(getri), ms(viaSolve), '']);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));

// Crossovers: µs per call, JS against the raw native call (arguments checked), small sizes.
console.log('\nsmall sizes, µs per call (js | openblas)');
const us = (s: number): string => (s * 1e6).toFixed(2);
const gemmLine: string[] = [];
for (const [m, n, k] of [[2, 2, 2], [4, 4, 4], [5, 5, 5], [6, 6, 6], [8, 8, 8], [16, 16, 16], [1, 1, 64], [1, 64, 64], [64, 64, 1], [32, 32, 32]] as const) {
  const a = random(m * k);
  const b = random(k * n);
  const c = new Float64Array(m * n);
  const reps = Math.max(200, Math.round(2e7 / (2 * m * n * k)));
  const t = [jsKernels, native].map((kk) => time(() => kk.gemm(false, false, m, n, k, 1, a, 0, k, b, 0, n, 0, c, 0, n), reps, 5));
  gemmLine.push(`${m}x${n}x${k} ${us(t[0]!)}|${us(t[1]!)}`);
}
console.log(`gemm: ${gemmLine.join('  ')}`);
for (const [name, op] of [
  ['getrf', (k: KernelBackend, x: Float64Array, n: number) => k.getrf(n, x, 0, n, new Int32Array(n), 0)],
  ['potrf', (k: KernelBackend, x: Float64Array, n: number) => k.potrf(n, x, 0, n)],
  ['inverse', (k: KernelBackend, x: Float64Array, n: number) => k.inverse(n, x, 0, n)],
  ['trsm n×n', (k: KernelBackend, x: Float64Array, n: number) => k.trsm(true, false, false, n, n, x, 0, n, x.slice(), 0, n)],
] as const) {
  const line: string[] = [];
  for (const n of [4, 6, 8, 10, 12, 16, 24, 32]) {
    const a = random(n * n);
    for (let i = 0; i < n; i++) a[i * (n + 1)] = a[i * (n + 1)]! + 2 * n; // SPD-ish and well conditioned
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[j * n + i] = a[i * n + j]!;
    const t = [jsKernels, native].map((k) => {
      const x = new Float64Array(n * n);
      return time(() => {
        x.set(a);
        op(k, x, n);
      }, Math.max(100, Math.round(2e6 / (n * n * n))), 5);
    });
    line.push(`${n} ${us(t[0]!)}|${us(t[1]!)}`);
  }
  console.log(`${name}: ${line.join('  ')}`);
}
