// Which kernel backend the tensor layer runs on, chosen once per thread when the engine is
// imported (the service's Piscina workers import it too, so each makes the same choice):
//
//   BLAS=auto (default)  OpenBLAS if it loads and agrees with the JS kernels on a small self-check,
//                        else the JS kernels, with one warning (main thread only) saying how to
//                        install it;
//   BLAS=openblas        OpenBLAS or a thrown Error at start-up;
//   BLAS=js              the JS kernels (koffi is not even loaded).
//
// BLAS_THREADS (default 1) is the number of OpenBLAS threads per process: the worker pool already
// uses the cores, one request per worker.

import { isMainThread } from 'node:worker_threads';
import { jsKernels } from './js.js';
import { loadOpenblas, prepareKoffi } from './openblas.js';
import type { BackendName, KernelBackend } from './types.js';

export type { BackendName, KernelBackend } from './types.js';

const INSTALL_HINT = 'install it with `apt-get install libopenblas0-pthread` (Debian/Ubuntu)';

function setting(): 'auto' | BackendName {
  const raw = (process.env['BLAS'] ?? '').trim().toLowerCase();
  if (raw === '') return 'auto';
  if (raw === 'auto' || raw === 'openblas' || raw === 'js') return raw;
  throw new Error(`BLAS must be auto, openblas or js, got ${JSON.stringify(process.env['BLAS'])}`);
}

function threadSetting(): number {
  const raw = (process.env['BLAS_THREADS'] ?? '').trim();
  if (raw === '') return 1;
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new Error(`BLAS_THREADS must be an integer from 1 to 256 (OpenBLAS threads per process), got ${JSON.stringify(raw)}`);
  }
  return threads;
}

/** A few small problems with transposes, offsets and pivoting: OpenBLAS must agree with JS. */
function selfCheck(native: KernelBackend): string | undefined {
  const close = (x: Float64Array, y: Float64Array): boolean =>
    x.length === y.length && x.every((v, i) => Math.abs(v - y[i]!) <= 1e-12 * (1 + Math.abs(y[i]!)));
  // A linear congruential generator: values in [-1, 1), well-conditioned matrices in practice.
  const values = (n: number, seed: number): Float64Array => {
    let s = seed;
    return Float64Array.from({ length: n }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s / 2 ** 31 - 1;
    });
  };
  const problems: string[] = [];
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const [m, n, k] = [5, 7, 6];
    const a = values(2 + m * k, 1);
    const b = values(3 + k * n, 2);
    const outs = [native, jsKernels].map((kernels) => {
      const c = new Float64Array(m * n + 1).fill(NaN);
      kernels.gemm(ta, tb, m, n, k, 1, a, 2, ta ? m : k, b, 3, tb ? k : n, 0, c, 1, n);
      return c.subarray(1);
    });
    if (!close(outs[0]!, outs[1]!)) problems.push(`gemm${ta ? ' Aᵀ' : ''}${tb ? ' Bᵀ' : ''}`);
  }
  const n = 6;
  const square = values(n * n, 3);
  const spd = new Float64Array(n * n);
  jsKernels.gemm(false, true, n, n, n, 1, square, 0, n, square, 0, n, 0, spd, 0, n);
  for (let i = 0; i < n; i++) spd[i * (n + 1)] = spd[i * (n + 1)]! + n;
  const factors = [native, jsKernels].map((kernels) => {
    const lu = square.slice();
    const ipiv = new Int32Array(n);
    kernels.getrf(n, lu, 0, n, ipiv, 0);
    const chol = spd.slice();
    kernels.potrf(n, chol, 0, n);
    const inv = square.slice();
    kernels.inverse(n, inv, 0, n);
    return { lu, ipiv, chol, inv };
  });
  const [got, want] = factors as [(typeof factors)[0], (typeof factors)[0]];
  if (!close(got.lu, want.lu) || got.ipiv.some((p, i) => p !== want.ipiv[i])) problems.push('getrf');
  if (!close(got.chol, want.chol)) problems.push('potrf');
  if (!close(got.inv, want.inv)) problems.push('inverse');
  return problems.length === 0 ? undefined : `OpenBLAS disagrees with the JS kernels on ${problems.join(', ')}`;
}

interface Selected {
  kernels: KernelBackend;
  detail: string;
  threads: () => number;
}

const JS_DETAIL = 'JavaScript kernels';

let openblasResult: Selected | string | undefined;

/** OpenBLAS, self-checked, or the reason it cannot be used (found out once per thread). */
function openblasOrReason(threads: number): Selected | string {
  if (openblasResult !== undefined) return openblasResult;
  const loaded = loadOpenblas(threads);
  if (loaded instanceof Error) openblasResult = loaded.message;
  else openblasResult = selfCheck(loaded.native) ?? { kernels: loaded.backend, detail: loaded.config, threads: loaded.threads };
  return openblasResult;
}

function select(): Selected {
  const wanted = setting();
  const threads = threadSetting();
  if (wanted === 'js') return { kernels: jsKernels, detail: `${JS_DETAIL} (BLAS=js)`, threads: () => 1 };
  // Before anything else in this thread can load a library through koffi.
  prepareKoffi();
  const openblas = openblasOrReason(threads);
  if (typeof openblas !== 'string') return openblas;
  if (wanted === 'openblas') throw new Error(`BLAS=openblas, but OpenBLAS cannot be used: ${openblas}; ${INSTALL_HINT}, or set BLAS=auto or BLAS=js`);
  if (isMainThread) console.warn(`BLAS=auto: using the JavaScript kernels, OpenBLAS cannot be used: ${openblas}; for native speed ${INSTALL_HINT}`);
  return { kernels: jsKernels, detail: `${JS_DETAIL} (OpenBLAS cannot be used: ${openblas})`, threads: () => 1 };
}

const selected = select();
let current: KernelBackend = selected.kernels;

/** The backend the tensor kernels call now. */
export function kernels(): KernelBackend {
  return current;
}

/** What the service reports: the backend chosen at start-up, its build, and its threads. */
export function kernelBackend(): { name: BackendName; detail: string; threads: number } {
  return { name: selected.kernels.name, detail: selected.detail, threads: selected.threads() };
}

/**
 * The named backend, loading it if need be (OpenBLAS is self-checked and dispatches small
 * problems to JS, as when selected at start-up); throws when it cannot be used.
 */
export function backendNamed(name: BackendName): KernelBackend {
  if (name === 'js') return jsKernels;
  const openblas = openblasOrReason(threadSetting());
  if (typeof openblas === 'string') throw new Error(`OpenBLAS cannot be used: ${openblas}`);
  return openblas.kernels;
}

/** Runs fn with the tensor kernels on the given backend (for tests and benchmarks), then restores. */
export function withBackend<T>(backend: BackendName | KernelBackend, fn: () => T): T {
  const previous = current;
  current = typeof backend === 'string' ? backendNamed(backend) : backend;
  try {
    return fn();
  } finally {
    current = previous;
  }
}
