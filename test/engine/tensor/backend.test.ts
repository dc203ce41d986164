// The kernel backends against the JS reference (itself against naive loops), called directly with
// offsets, leading dimensions and transposes, and through the tensor layer's conventions.
// Tests that need OpenBLAS are skipped, loudly, where it cannot be loaded.

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { cholesky, det, inv, logAbsDet, lu, matmul, solve, triangularSolve } from '../../../src/engine/tensor/index.js';
import type { Tensor } from '../../../src/engine/tensor/index.js';
import { backendNamed, kernelBackend, kernels, withBackend } from '../../../src/engine/tensor/backend/index.js';
import type { KernelBackend } from '../../../src/engine/tensor/backend/index.js';
import { jsKernels } from '../../../src/engine/tensor/backend/js.js';
import { loadOpenblas } from '../../../src/engine/tensor/backend/openblas.js';
import { randomTensor, rng } from './reference.js';

const loaded = loadOpenblas(1);
const native: KernelBackend | undefined = loaded instanceof Error ? undefined : loaded.native;
if (native === undefined) {
  console.warn(
    `\n*** OpenBLAS could not be loaded (${(loaded as Error).message}): its backend tests are SKIPPED; ` +
      'install it with `apt-get install libopenblas0-pthread` ***\n',
  );
}
const describeNative = native === undefined ? describe.skip : describe;
/** The raw OpenBLAS kernels (every size goes native), for tests that only run when it loaded. */
const blas = (): KernelBackend => native!;

function randomArray(length: number, seed: number): Float64Array {
  const next = rng(seed);
  return Float64Array.from({ length }, () => 2 * next() - 1);
}

/** Equal NaN positions, equal infinities, and finite values within rtol·(scale + |want|). */
function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-12, scale = 1): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      if (!Object.is(g, w)) expect.fail(`entry ${i}: got ${g}, want ${w}`);
    } else if (!(Math.abs(g - w) <= rtol * (scale + Math.abs(w)))) {
      expect.fail(`entry ${i}: got ${g}, want ${w} (rtol ${rtol})`);
    }
  }
}

/** A random n×n matrix + n I inside a buffer with an offset and a leading dimension. */
function padded(n: number, ld: number, offset: number, seed: number, shift = n): Float64Array {
  const x = randomArray(offset + n * ld + 3, seed);
  for (let i = 0; i < n; i++) x[offset + i * ld + i] = x[offset + i * ld + i]! + shift;
  return x;
}

/** A random symmetric positive definite n×n matrix B Bᵀ + n I, stored at an offset with ld. */
function spd(n: number, ld: number, offset: number, seed: number): Float64Array {
  const b = randomArray(n * n, seed);
  const out = randomArray(offset + n * ld + 2, seed + 1); // junk outside (and above) the matrix
  const a = new Float64Array(n * n);
  jsKernels.gemm(false, true, n, n, n, 1, b, 0, n, b, 0, n, 0, a, 0, n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) out[offset + i * ld + j] = a[i * n + j]! + (i === j ? n : 0);
  return out;
}

/** An n×n tensor of the first n² values. */
function tensorOf(n: number, values: Float64Array): Tensor {
  return { shape: [n, n], data: values.slice(0, n * n) };
}

describe('the JS backend (the reference) against naive loops', () => {
  it('gemm with every transpose, offsets, leading dimensions, alpha and beta', () => {
    for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [9, 4, 13], [17, 6, 33], [40, 41, 3]] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const lda = (transA ? m : k) + 2;
          const ldb = (transB ? k : n) + 1;
          const ldc = n + 3;
          const a = randomArray(5 + (transA ? k : m) * lda, m + k);
          const b = randomArray(2 + (transB ? n : k) * ldb, n + k);
          const c = randomArray(1 + m * ldc, 7);
          const before = c.slice();
          jsKernels.gemm(transA, transB, m, n, k, 0.5, a, 5, lda, b, 2, ldb, -2, c, 1, ldc);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < ldc; j++) {
              const o = 1 + i * ldc + j;
              if (j >= n) {
                expect(c[o]).toBe(before[o]);
                continue;
              }
              let s = 0;
              for (let p = 0; p < k; p++) s += a[5 + (transA ? p * lda + i : i * lda + p)]! * b[2 + (transB ? j * ldb + p : p * ldb + j)]!;
              expect(c[o]).toBeCloseTo(0.5 * s - 2 * before[o]!, 12);
            }
          }
        }
      }
    }
  });

  it('trsm in all eight forms solves op(T) X = B, reading one triangle', () => {
    const m = 7;
    const n = 3;
    for (const lower of [false, true]) {
      for (const transposed of [false, true]) {
        for (const unit of [false, true]) {
          const t = padded(m, m + 2, 3, 11);
          const x = randomArray(m * n, 12);
          // B = op(T) X with T's other triangle (and, if unit, its diagonal) taken as zero / one.
          const tri = (i: number, k: number): number => {
            if (i === k) return unit ? 1 : t[3 + i * (m + 2) + i]!;
            return (lower ? i > k : i < k) ? t[3 + i * (m + 2) + k]! : 0;
          };
          const b = new Float64Array(2 + m * (n + 1));
          for (let i = 0; i < m; i++) {
            for (let c = 0; c < n; c++) {
              let s = 0;
              for (let k = 0; k < m; k++) s += (transposed ? tri(k, i) : tri(i, k)) * x[k * n + c]!;
              b[2 + i * (n + 1) + c] = s;
            }
          }
          jsKernels.trsm(lower, transposed, unit, m, n, t, 3, m + 2, b, 2, n + 1);
          for (let i = 0; i < m; i++) for (let c = 0; c < n; c++) expect(b[2 + i * (n + 1) + c]).toBeCloseTo(x[i * n + c]!, 12);
        }
      }
    }
  });

  it('getrs solves A X = B and Aᵀ X = B from the same factors', () => {
    const n = 9;
    const a = padded(n, n, 0, 21);
    const factors = a.slice();
    const ipiv = new Int32Array(n);
    expect(jsKernels.getrf(n, factors, 0, n, ipiv, 0)).toBe(-1);
    const x = randomArray(n * 2, 22);
    for (const transposed of [false, true]) {
      const b = new Float64Array(n * 2);
      jsKernels.gemm(transposed, false, n, 2, n, 1, a, 0, n, x, 0, 2, 0, b, 0, 2);
      jsKernels.getrs(transposed, n, 2, factors, 0, n, ipiv, 0, b, 0, 2);
      expectNear(b, x, 1e-12);
    }
  });
});

describeNative('the OpenBLAS backend against the JS one', () => {
  it('gemm: random shapes, 1-sized and empty dims, transposes, offsets and leading dimensions', () => {
    const next = rng(5);
    const dims = [0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 64, 100];
    for (let trial = 0; trial < 120; trial++) {
      const pick = (): number => dims[Math.floor(next() * dims.length)]!;
      const [m, n, k] = [pick(), pick(), pick()];
      const transA = next() < 0.5;
      const transB = next() < 0.5;
      const lda = Math.max(1, transA ? m : k) + Math.floor(next() * 3);
      const ldb = Math.max(1, transB ? k : n) + Math.floor(next() * 3);
      const ldc = Math.max(1, n) + Math.floor(next() * 3);
      const [ao, bo, co] = [Math.floor(next() * 4), Math.floor(next() * 4), Math.floor(next() * 4)];
      const a = randomArray(ao + (transA ? k : m) * lda, trial);
      const b = randomArray(bo + (transB ? n : k) * ldb, trial + 1000);
      const [alpha, beta] = next() < 0.5 ? [1, 0] : [0.75, -1.5];
      const c0 = randomArray(co + m * ldc, trial + 2000);
      if (beta === 0) c0.fill(NaN); // beta = 0: C is not read
      const [got, want] = [blas(), jsKernels].map((kernels) => {
        const c = c0.slice();
        kernels.gemm(transA, transB, m, n, k, alpha, a, ao, lda, b, bo, ldb, beta, c, co, ldc);
        // Only C's m×n block may change.
        for (let i = 0; i < c.length; i++) {
          const inside = i >= co && Math.floor((i - co) / ldc) < m && (i - co) % ldc < n;
          if (!inside) expect(Object.is(c[i], c0[i])).toBe(true);
        }
        return c;
      });
      expectNear(got!, want!, 1e-12, k);
    }
  });

  it('gemm propagates NaN and Infinity as arithmetic does (0 · Infinity is NaN)', () => {
    for (const [m, n, k] of [[1, 1, 2], [6, 5, 4], [33, 17, 20]] as const) {
      const a = randomArray(m * k, 1);
      const b = randomArray(k * n, 2);
      a[0] = 0;
      b[0] = Infinity; // C[0][0] gets 0 · Infinity
      a[(m - 1) * k + k - 1] = NaN; // the last row of C
      const [got, want] = [blas(), jsKernels].map((kernels) => {
        const c = new Float64Array(m * n);
        kernels.gemm(false, false, m, n, k, 1, a, 0, k, b, 0, n, 0, c, 0, n);
        return c;
      });
      expect(got![0]).toBeNaN();
      expectNear(got!, want!, 1e-12, k);
    }
  });

  it('getrf: the same pivots and factors, odd sizes, offsets and leading dimensions', () => {
    for (const [n, extra, offset] of [[1, 0, 0], [2, 1, 3], [5, 0, 1], [12, 3, 0], [33, 1, 7], [100, 0, 0], [129, 5, 2]] as const) {
      const a = padded(n, n + extra, offset, n, 0);
      const [got, want] = [blas(), jsKernels].map((kernels) => {
        const x = a.slice();
        const ipiv = new Int32Array(n + 2).fill(-7);
        expect(kernels.getrf(n, x, offset, n + extra, ipiv, 1)).toBe(-1);
        return { x, ipiv };
      });
      expect(got!.ipiv).toEqual(want!.ipiv);
      expectNear(got!.x, want!.x, 1e-10, n);
    }
  });

  it('getrs and trsm, transposed or not, agree with JS', () => {
    const n = 40;
    const r = 3;
    const a = padded(n, n + 1, 2, 31);
    const factors = a.slice();
    const ipiv = new Int32Array(n);
    jsKernels.getrf(n, factors, 2, n + 1, ipiv, 0);
    const b = randomArray(1 + n * (r + 2), 32);
    for (const transposed of [false, true]) {
      const [got, want] = [blas(), jsKernels].map((kernels) => {
        const x = b.slice();
        kernels.getrs(transposed, n, r, factors, 2, n + 1, ipiv, 0, x, 1, r + 2);
        return x;
      });
      expectNear(got!, want!, 1e-11, 10);
    }
    for (const lower of [false, true]) {
      for (const transposed of [false, true]) {
        for (const unit of [false, true]) {
          const [got, want] = [blas(), jsKernels].map((kernels) => {
            const x = b.slice();
            kernels.trsm(lower, transposed, unit, n, r, factors, 2, n + 1, x, 1, r + 2);
            return x;
          });
          expectNear(got!, want!, 1e-9, 10);
        }
      }
    }
  });

  it('potrf and inverse agree with JS on well-conditioned matrices', () => {
    for (const [n, extra, offset] of [[1, 0, 0], [3, 2, 1], [13, 0, 0], [64, 3, 5], [150, 0, 0]] as const) {
      const ld = n + extra;
      const a = spd(n, ld, offset, n);
      const [got, want] = [blas(), jsKernels].map((kernels) => {
        const l = a.slice();
        expect(kernels.potrf(n, l, offset, ld)).toBe(-1);
        const x = padded(n, ld, offset, n + 1);
        const copy = x.slice();
        expect(kernels.inverse(n, x, offset, ld)).toBe(-1);
        // Nothing outside the matrix changes.
        for (let i = 0; i < x.length; i++) {
          const inside = i >= offset && Math.floor((i - offset) / ld) < n && (i - offset) % ld < n;
          if (!inside) expect(Object.is(x[i], copy[i])).toBe(true);
        }
        return { l, x };
      });
      expectNear(got!.l, want!.l, 1e-11, 1);
      expectNear(got!.x, want!.x, 1e-10, 1);
    }
  });

  it('ill-conditioned matrices: Hilbert n = 8 agrees to its condition number', () => {
    const n = 8; // cond ≈ 1.5e10
    const h = Float64Array.from({ length: n * n }, (_, i) => 1 / (Math.floor(i / n) + (i % n) + 1));
    const [got, want] = [blas(), jsKernels].map((kernels) => withBackend(kernels, () => ({ inv: inv(tensorOf(n, h)), chol: cholesky(tensorOf(n, h)), det: det(tensorOf(n, h)) })));
    const scale = Math.max(...want!.inv.data.map(Math.abs));
    expectNear(got!.inv.data, want!.inv.data, 1e-4, scale);
    expectNear(got!.chol.data, want!.chol.data, 1e-8, 1);
    expect(got!.det.data[0]! / want!.det.data[0]!).toBeCloseTo(1, 4);
  });
});

describeNative("the tensor layer's conventions on OpenBLAS", () => {
  /** fn under the raw OpenBLAS kernels (every size native) and under JS. */
  const both = <T>(fn: () => T): [T, T] => [withBackend(blas(), fn), withBackend('js', fn)];

  it('singular matrices: det exactly +0, logAbsDet -Infinity, inv and solve non-finite, no exception', () => {
    const n = 20;
    const zeroColumn = randomArray(n * n, 41);
    for (let i = 0; i < n; i++) zeroColumn[i * n + 5] = 0;
    const zeroRow = randomArray(n * n, 42);
    zeroRow.fill(0, 7 * n, 8 * n);
    for (const a of [zeroColumn, zeroRow]) {
      const t = tensorOf(n, a);
      const [[d, lad, x, s, f], [dj, ladj]] = both(() => [det(t), logAbsDet(t), inv(t), solve(t, randomTensor([n, 2], 1)), lu(t)] as const);
      expect(Object.is(d.data[0], 0)).toBe(true);
      expect(Object.is(dj.data[0], 0)).toBe(true);
      expect(lad.data[0]).toBe(-Infinity);
      expect(ladj.data[0]).toBe(-Infinity);
      expect(x.data.some((v) => !Number.isFinite(v))).toBe(true);
      expect(s.data.some((v) => !Number.isFinite(v))).toBe(true);
      expect(Array.from({ length: n }, (_, i) => f.lu.data[i * (n + 1)]).some((v) => v === 0)).toBe(true);
    }
    // The raw kernels report the first zero pivot.
    const x = zeroColumn.slice();
    expect(blas().getrf(n, x, 0, n, new Int32Array(n), 0)).toBe(5);
    expect(blas().inverse(n, zeroColumn.slice(), 0, n)).toBeGreaterThanOrEqual(0);
    expect(jsKernels.getrf(n, zeroColumn.slice(), 0, n, new Int32Array(n), 0)).toBe(5);
  });

  it('cholesky of an indefinite matrix: NaN from the failing pivot on, the columns before it exact', () => {
    const small = tensorOf(3, Float64Array.of(4, 0, 0, 2, 5, 0, 1, 3, -5));
    const [l] = both(() => cholesky(small));
    expect(Array.from(l.data)).toEqual([2, 0, 0, 1, 2, 0, 0.5, 1.25, NaN]);
    for (const [n, p] of [[1, 0], [2, 0], [30, 0], [30, 17], [40, 39], [70, 33]] as const) {
      const a = spd(n, n, 0, n + p);
      a[p * n + p] = -1e3;
      const [got, want] = both(() => cholesky(tensorOf(n, a)));
      expectNear(got.data, want.data, 1e-11, 1);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const v = got.data[i * n + j]!;
          if (j > i) expect(v).toBe(0);
          else if (j >= p) expect(v).toBeNaN();
          else expect(Number.isFinite(v)).toBe(true);
        }
      }
    }
  });

  it('NaN inputs: the same NaN entries as the JS kernels', () => {
    const n = 24;
    for (const [i, j] of [[0, 0], [5, 5], [9, 3], [3, 9], [23, 0]] as const) {
      const a = padded(n, n, 0, 50 + i * n + j);
      a[i * n + j] = NaN;
      const s = spd(n, n, 0, 60 + i);
      s[Math.max(i, j) * n + Math.min(i, j)] = NaN;
      const b = randomTensor([n, 2], 3);
      const t = tensorOf(n, a);
      const [got, want] = both(() => ({
        det: det(t),
        logAbsDet: logAbsDet(t),
        inv: inv(t),
        solve: solve(t, b),
        chol: cholesky(tensorOf(n, s)),
        tri: triangularSolve(t, b, i >= j),
        product: matmul(t, b),
      }));
      for (const key of Object.keys(want) as (keyof typeof want)[]) {
        const g = got[key].data;
        const w = want[key].data;
        expect(Array.from(g, Number.isNaN), `${key} with NaN at ${i},${j}`).toEqual(Array.from(w, Number.isNaN));
        expectNear(g, w, 1e-9, 10);
      }
    }
  });

  it('refuses bad lengths, offsets, leading dimensions and types with a RangeError (no native call)', () => {
    const k = blas();
    const a = new Float64Array(12);
    const c = new Float64Array(12);
    const calls: [string, () => unknown][] = [
      ['A too short', () => k.gemm(false, false, 4, 3, 4, 1, a, 0, 4, a, 0, 3, 0, c, 0, 3)],
      ['offset past the end', () => k.gemm(false, false, 3, 3, 3, 1, a, 10, 3, a, 0, 3, 0, c, 0, 3)],
      ['lda below the row length', () => k.gemm(false, false, 2, 2, 3, 1, a, 0, 2, a, 0, 2, 0, c, 0, 2)],
      ['transposed A too short', () => k.gemm(true, false, 5, 2, 3, 1, a, 0, 5, a, 0, 2, 0, c, 0, 2)],
      ['negative dimension', () => k.gemm(false, false, -1, 2, 2, 1, a, 0, 2, a, 0, 2, 0, c, 0, 2)],
      ['fractional offset', () => k.gemm(false, false, 2, 2, 2, 1, a, 0.5, 2, a, 0, 2, 0, c, 0, 2)],
      ['not a Float64Array', () => k.gemm(false, false, 2, 2, 2, 1, new Float32Array(8) as unknown as Float64Array, 0, 2, a, 0, 2, 0, c, 0, 2)],
      ['C overlapping A', () => k.gemm(false, false, 2, 2, 2, 1, a, 0, 2, a, 4, 2, 0, a, 2, 2)],
      ['C too short', () => k.gemm(false, false, 3, 4, 1, 1, a, 0, 1, a, 0, 4, 0, c.subarray(0, 11), 0, 4)],
      ['potrf', () => k.potrf(4, a, 0, 4)],
      ['potrf lda', () => k.potrf(3, a, 0, 2)],
      ['getrf pivots', () => k.getrf(3, a, 0, 3, new Int32Array(2), 0)],
      ['getrf pivot type', () => k.getrf(3, a, 0, 3, new Float64Array(3) as unknown as Int32Array, 0)],
      ['getrs B', () => k.getrs(false, 3, 2, a, 0, 3, new Int32Array([0, 1, 2]), 0, c, 8, 2)],
      ['getrs bad pivot', () => k.getrs(false, 3, 1, a, 0, 3, new Int32Array([0, 7, 2]), 0, c, 0, 1)],
      ['trsm T', () => k.trsm(true, false, false, 4, 1, a, 0, 4, c, 0, 1)],
      ['inverse', () => k.inverse(3, a, 4, 3)],
      ['huge dimension', () => k.inverse(2 ** 31, a, 0, 2 ** 31)],
    ];
    for (const [what, call] of calls) expect(call, what).toThrow(RangeError);
    // Still alive, and still right.
    const x = Float64Array.of(4, 7, 2, 6);
    expect(k.inverse(2, x, 0, 2)).toBe(-1);
    expectNear(x, [0.6, -0.7, -0.2, 0.4], 1e-14);
  });

  it('matmul and linalg give the JS answers at every size through the selected OpenBLAS backend', () => {
    const dispatching = backendNamed('openblas');
    expect(dispatching.name).toBe('openblas');
    for (const n of [2, 4, 5, 11, 12, 19, 20, 50]) {
      const a = tensorOf(n, padded(n, n, 0, n));
      const b = randomTensor([3, n, 4], n);
      const [got, want] = [dispatching, jsKernels].map((kernels) =>
        withBackend(kernels, () => [matmul(a, b), inv(a), solve(a, b), det(a), logAbsDet(a), cholesky(tensorOf(n, spd(n, n, 0, n))), triangularSolve(a, b, false)]),
      );
      got!.forEach((g, i) => expectNear(g.data, want![i]!.data, 1e-10, 10));
    }
  });
});

describe('selection', () => {
  it('reports the backend chosen at start-up, and withBackend restores it', () => {
    const chosen = kernelBackend();
    const wanted = (process.env['BLAS'] ?? '').trim() || 'auto';
    if (wanted === 'js' || native === undefined) expect(chosen.name).toBe('js');
    else expect(chosen.name).toBe('openblas');
    if (chosen.name === 'openblas') expect(chosen.detail).toMatch(/^OpenBLAS \d/);
    expect(chosen.threads).toBeGreaterThanOrEqual(1);
    const before = kernels();
    expect(withBackend('js', () => kernels().name)).toBe('js');
    expect(() => withBackend('js', () => {
      throw new Error('inside');
    })).toThrow('inside');
    expect(kernels()).toBe(before);
  });

  it('BLAS=openblas without the library fails at start-up; BLAS=auto falls back with one line', async () => {
    const { spawnSync } = await import('node:child_process');
    // A child process whose koffi (put in require's cache first) finds no library, or a library
    // without openblas_get_config (a reference BLAS), or throws if it is used at all.
    const fakeKoffi = {
      missing: "({ config: () => ({ sync_stack_size: 16 << 20 }), load: () => { throw new Error('libopenblas.so.0: cannot open shared object file'); } })",
      reference: "({ config: () => ({ sync_stack_size: 16 << 20 }), load: () => ({ func: (s) => { throw new Error('symbol not found: ' + s); } }) })",
      untouchable: "({ config: () => { throw new Error('koffi used'); }, load: () => { throw new Error('koffi used'); } })",
    };
    const run = (env: Record<string, string>, koffi: keyof typeof fakeKoffi) => {
      const script = `
        const { createRequire } = require('node:module');
        const id = createRequire(process.cwd() + '/src/').resolve('koffi');
        require.cache[id] = { id, filename: id, loaded: true, exports: ${fakeKoffi[koffi]} };
        import('./src/engine/tensor/backend/index.ts').then((m) => console.log(JSON.stringify(m.kernelBackend())));
      `;
      return spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: process.cwd(), env: { ...process.env, ...env }, encoding: 'utf8' });
    };
    const strict = run({ BLAS: 'openblas' }, 'missing');
    expect(strict.status).not.toBe(0);
    expect(strict.stderr).toMatch(/Error: BLAS=openblas, but OpenBLAS cannot be used: libopenblas.so.0 could not be loaded .*apt-get install libopenblas0-pthread/);
    const auto = run({ BLAS: 'auto' }, 'missing');
    expect(auto.status).toBe(0);
    expect(JSON.parse(auto.stdout)).toMatchObject({ name: 'js', threads: 1 });
    expect(auto.stderr.trim().split('\n')).toHaveLength(1);
    expect(auto.stderr).toMatch(/BLAS=auto: using the JavaScript kernels.*apt-get install libopenblas0-pthread/);
    const reference = run({ BLAS: '' }, 'reference');
    expect(JSON.parse(reference.stdout).detail).toMatch(/no openblas_get_config: not OpenBLAS/);
    const js = run({ BLAS: 'js' }, 'untouchable');
    expect(js.status).toBe(0);
    expect(JSON.parse(js.stdout).name).toBe('js');
    expect(js.stderr).toBe('');
    const wrong = run({ BLAS: 'fast' }, 'missing');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/BLAS must be auto, openblas or js, got "fast"/);
    const threads = run({ BLAS: 'js', BLAS_THREADS: 'many' }, 'missing');
    expect(threads.status).not.toBe(0);
    expect(threads.stderr).toMatch(/BLAS_THREADS must be an integer from 1 to 256/);
  }, 60_000);
});

describeNative('OpenBLAS in a worker thread', () => {
  it('loads with a 16 MiB koffi stack and runs threaded getrf at N = 200 beside the main thread', async () => {
    const indexUrl = new URL('../../../src/engine/tensor/backend/index.ts', import.meta.url).href;
    const jsUrl = new URL('../../../src/engine/tensor/backend/js.ts', import.meta.url).href;
    // The worker imports the backend as the service's workers import the engine (module
    // initialisation raises koffi's stack, then selects), with two OpenBLAS threads: the case
    // that overflowed koffi's default stack. tsx is registered by hand: eval workers skip --import.
    const code = `
      const { parentPort } = require('node:worker_threads');
      import('tsx/esm/api')
        .then(({ register }) => { register(); return Promise.all([import(${JSON.stringify(indexUrl)}), import(${JSON.stringify(jsUrl)})]); })
        .then(([backend, js]) => {
          const n = 200;
          let worst = 0;
          for (let round = 0; round < 5; round++) {
            const a = new Float64Array(n * n).map((_, i) => Math.sin(i * 12.9898 + round) * 43758.5453 % 1);
            const x = a.slice(), y = a.slice();
            const px = new Int32Array(n), py = new Int32Array(n);
            backend.kernels().getrf(n, x, 0, n, px, 0);
            js.jsKernels.getrf(n, y, 0, n, py, 0);
            for (let i = 0; i < n * n; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
          }
          const stack = require('koffi').config().sync_stack_size;
          parentPort.postMessage({ ...backend.kernelBackend(), stack, worst });
        })
        .catch((error) => parentPort.postMessage({ error: String((error && error.stack) || error) }));
    `;
    const worker = new Worker(code, { eval: true, env: { ...process.env, BLAS: 'openblas', BLAS_THREADS: '2' } });
    const result = new Promise<{ name?: string; stack?: number; threads?: number; worst?: number; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with code ${code}`)));
    });
    // Meanwhile the main thread factors too.
    const n = 200;
    for (let round = 0; round < 5; round++) {
      const a = padded(n, n, 0, round);
      expect(blas().getrf(n, a, 0, n, new Int32Array(n), 0)).toBe(-1);
    }
    const got = await result;
    await worker.terminate();
    expect(got.error).toBeUndefined();
    expect(got.name).toBe('openblas');
    expect(got.stack).toBe(16 << 20);
    expect(got.threads).toBe(2);
    expect(got.worst).toBeLessThan(1e-9);
  }, 60_000);
});
