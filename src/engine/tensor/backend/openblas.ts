// The OpenBLAS backend: Debian's libopenblas0-pthread (libopenblas.so.0, which carries LAPACK too)
// called through koffi, synchronously, on Float64Arrays passed as pointers (no copies).
//
// Row-major data: gemm and trsm go through the row-major CBLAS entry points. The Fortran LAPACK
// routines see a row-major matrix as its transpose, so Cholesky asks for the upper factor
// (dpotrf 'U' of Aᵀ is Lᵀ), and the inverse of the transpose, read row-major, is the inverse
// (dgetrf + dgetri with no copy). LU keeps the JS backend's row-pivoted factors (P A = L U, which
// lu() returns and getrs reuses), so getrf transposes into a scratch matrix and back: O(n²) next
// to the O(n³) factorisation.
//
// Safety: a native call with a wrong length or leading dimension would corrupt memory or kill the
// process, so every argument is checked in JS first (RangeError). koffi's synchronous calls run
// on a stack of their own, 2 MiB by default, which threaded dgetrf_ overflows even at N = 100:
// it is raised to 16 MiB in every thread before the library is loaded there (koffi refuses to
// change it after a load). koffi's `.async` calls are never used (they crashed in tests).

import { createRequire } from 'node:module';
import { jsKernels, swapRows } from './js.js';
import type { KernelBackend } from './types.js';

type Koffi = typeof import('koffi');
type NativeFunction = ReturnType<ReturnType<Koffi['load']>['func']>;

/** koffi's stack for synchronous calls, in bytes (its maximum). */
const SYNC_STACK = 16 << 20;
const INT_MAX = 0x7fffffff;

// CBLAS enumerations.
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;
const UPPER = 121;
const LOWER = 122;
const NON_UNIT = 131;
const UNIT = 132;
const LEFT = 141;

/**
 * Below these sizes the JavaScript loops are as fast as a native call or faster (it costs about
 * 0.3 µs with the argument checks). Measured with bench/kernels-backend.ts on this project's
 * 2-core machine (AMD EPYC, OpenBLAS 0.3.21 picking its Haswell kernels, one thread), µs per call
 * JS | OpenBLAS:
 *   gemm m×n×k   4³ 0.21 | 0.29   5³ 0.33 | 0.30   6³ 0.50 | 0.30   8³ 1.01 | 0.32   1×1×64 0.11 | 0.39
 *   getrf n      12 0.78 | 1.47   16 1.90 | 2.29   24 5.59 | 4.27  (two O(n²) transposes included)
 *   potrf n      10 0.35 | 0.42   12 0.53 | 0.49   16 1.06 | 0.70
 *   inverse n     4 0.79 | 0.71    6 1.24 | 0.84    8 1.92 | 1.02
 *   trsm n×n      8 0.63 | 0.61   10 1.01 | 0.88   12 1.51 | 0.88  (m²·n = 512, 1000, 1728)
 * Under these sizes the JS kernels also give exactly today's (pre-OpenBLAS) numbers.
 */
const GEMM_NATIVE_MIN_WORK = 128; // m·n·k
const GETRF_NATIVE_MIN_N = 20;
const POTRF_NATIVE_MIN_N = 12;
const INVERSE_NATIVE_MIN_N = 5;
const TRSM_NATIVE_MIN_WORK = 512; // m²·n, for trsm and for getrs (two of them)

const require = createRequire(import.meta.url);
let koffiModule: Koffi | undefined;
let koffiProblem: string | undefined;

/**
 * koffi, with its synchronous-call stack raised for this thread; or the reason it cannot be used.
 * Called at module initialisation (so in every thread that imports the engine) unless BLAS=js.
 */
export function prepareKoffi(): Koffi | string {
  if (koffiModule !== undefined) return koffiModule;
  if (koffiProblem !== undefined) return koffiProblem;
  try {
    const koffi = require('koffi') as Koffi;
    if (koffi.config().sync_stack_size! < SYNC_STACK) {
      try {
        koffi.config({ ...koffi.config(), sync_stack_size: SYNC_STACK });
      } catch (error) {
        // koffi refuses once something in this thread has loaded a library through it.
        koffiProblem = `koffi's call stack could not be raised to 16 MiB in this thread (${messageOf(error)})`;
        return koffiProblem;
      }
    }
    koffiModule = koffi;
    return koffi;
  } catch (error) {
    koffiProblem = `the koffi package could not be loaded (${messageOf(error)})`;
    return koffiProblem;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The loaded library: the raw checked kernels, the dispatching backend, and what to report. */
export interface Openblas {
  /** Small problems to the JS kernels, the rest to OpenBLAS. */
  readonly backend: KernelBackend;
  /** Every call to OpenBLAS, whatever its size (checked all the same). */
  readonly native: KernelBackend;
  /** openblas_get_config(): version, build options and the CPU kernels chosen. */
  readonly config: string;
  threads(): number;
}

let loaded: Openblas | Error | undefined;

/** OpenBLAS, loaded once per thread; an Error (not thrown) saying why it cannot be used. */
export function loadOpenblas(threads: number): Openblas | Error {
  loaded ??= tryLoad(threads);
  return loaded;
}

const LIBRARY_NAMES = ['libopenblas.so.0', 'libopenblas.so', 'libopenblas.dylib'];

function tryLoad(threads: number): Openblas | Error {
  const koffi = prepareKoffi();
  if (typeof koffi === 'string') return new Error(koffi);
  // OpenBLAS starts its thread pool when it loads, sized by OPENBLAS_NUM_THREADS (all cores when
  // unset); openblas_set_num_threads only limits the pool afterwards. Size it from the start, so a
  // one-thread process never has BLAS threads to tear down at exit. (Read by the first load, in
  // the main thread; a worker's process.env is its own copy.)
  process.env['OPENBLAS_NUM_THREADS'] ??= String(threads);
  let lib: ReturnType<Koffi['load']> | undefined;
  const failures: string[] = [];
  for (const name of LIBRARY_NAMES) {
    try {
      lib = koffi.load(name);
      break;
    } catch (error) {
      failures.push(messageOf(error));
    }
  }
  if (lib === undefined) return new Error(`libopenblas.so.0 could not be loaded (${failures[0]})`);
  const library = lib;
  const func = (signature: string): NativeFunction | undefined => {
    try {
      return library.func(signature);
    } catch {
      return undefined;
    }
  };
  // A reference BLAS (or another vendor's) under the same name must not be picked by accident.
  const getConfig = func('const char *openblas_get_config(void)');
  if (getConfig === undefined) return new Error('the library loaded has no openblas_get_config: not OpenBLAS');
  const config = String(getConfig());
  if (/USE64BITINT/.test(config)) return new Error(`OpenBLAS built with 64-bit integers (${config}): not supported`);
  const fns = {
    setThreads: func('void openblas_set_num_threads(int)'),
    getThreads: func('int openblas_get_num_threads(void)'),
    dgemm: func('void cblas_dgemm(int, int, int, int, int, int, double, double *, int, double *, int, double, double *, int)'),
    dtrsm: func('void cblas_dtrsm(int, int, int, int, int, int, int, double, double *, int, double *, int)'),
    // The trailing size_t arguments are the hidden lengths of Fortran CHARACTER arguments.
    dpotrf: func('void dpotrf_(const char *, int *, double *, int *, int *, size_t)'),
    dgetrf: func('void dgetrf_(int *, int *, double *, int *, int *, int *)'),
    dgetrs: func('void dgetrs_(const char *, int *, int *, double *, int *, int *, double *, int *, int *, size_t)'),
    dgetri: func('void dgetri_(int *, double *, int *, int *, double *, int *, int *)'),
  };
  const missing = Object.entries(fns).filter(([, f]) => f === undefined).map(([name]) => name);
  if (missing.length > 0) return new Error(`OpenBLAS lacks ${missing.join(', ')}`);
  const all = fns as { [K in keyof typeof fns]: NativeFunction };
  all.setThreads(threads);
  const native = nativeKernels(all);
  return {
    native,
    backend: dispatching(native),
    config,
    threads: () => Number(all.getThreads()),
  };
}

/** A non-negative int32 (a dimension, offset or leading dimension). */
function isIndex(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= INT_MAX;
}

/**
 * A rows×cols row-major matrix at x[o..] with leading dimension ld lies inside x (the message is
 * only built for a failure: these checks run before every call).
 */
function checkMatrix(what: string, x: Float64Array, o: number, rows: number, cols: number, ld: number): void {
  if (
    x instanceof Float64Array &&
    isIndex(o) &&
    isIndex(rows) &&
    isIndex(cols) &&
    isIndex(ld) &&
    ld >= cols &&
    ld >= 1 &&
    o <= x.length &&
    (rows === 0 || cols === 0 || o + (rows - 1) * ld + cols <= x.length)
  ) {
    return;
  }
  if (!(x instanceof Float64Array)) throw new RangeError(`${what}: not a Float64Array`);
  for (const [name, v] of [['offset', o], ['rows', rows], ['columns', cols], ['leading dimension', ld]] as const) {
    if (!isIndex(v)) throw new RangeError(`${what}: ${name} must be an integer from 0 to ${INT_MAX}, got ${v}`);
  }
  if (ld < Math.max(1, cols)) throw new RangeError(`${what}: leading dimension ${ld} is less than the ${cols} columns (or 1)`);
  if (o > x.length) throw new RangeError(`${what}: offset ${o} is past the end (${x.length})`);
  throw new RangeError(`${what}: ${rows}×${cols} with leading dimension ${ld} at offset ${o} does not fit in ${x.length} elements`);
}

function checkPivots(what: string, ipiv: Int32Array, po: number, n: number): void {
  if (ipiv instanceof Int32Array && isIndex(po) && po + n <= ipiv.length) return;
  if (!(ipiv instanceof Int32Array)) throw new RangeError(`${what}: pivots are not an Int32Array`);
  throw new RangeError(`${what}: ${n} pivots at offset ${po} do not fit in ${ipiv.length}`);
}

/** An output must not share memory with an input (BLAS's results are undefined then). */
function checkDisjoint(what: string, x: Float64Array, xo: number, xEnd: number, y: Float64Array, yo: number, yEnd: number): void {
  if (x.buffer !== y.buffer) return;
  const xs = x.byteOffset + xo * 8;
  const ys = y.byteOffset + yo * 8;
  if (xs < y.byteOffset + yEnd * 8 && ys < x.byteOffset + xEnd * 8) throw new RangeError(`${what}: output overlaps an input`);
}

/** The end (exclusive) of a rows×cols matrix at offset o with leading dimension ld. */
function endOf(o: number, rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? o : o + (rows - 1) * ld + cols;
}

/** A pointer to x[o]: the array itself or a view (koffi passes a typed array's data, no copy). */
function at<T extends Float64Array | Int32Array>(x: T, o: number): T {
  return (o === 0 ? x : x.subarray(o)) as T;
}

/** Copy the n×n matrix at src[so..] (leading dimension lds) transposed into dst[do..] (ldd). */
function transposeInto(n: number, src: Float64Array, so: number, lds: number, dst: Float64Array, dO: number, ldd: number): void {
  const B = 32;
  for (let i0 = 0; i0 < n; i0 += B) {
    const i1 = Math.min(n, i0 + B);
    for (let j0 = 0; j0 < n; j0 += B) {
      const j1 = Math.min(n, j0 + B);
      for (let i = i0; i < i1; i++) {
        const s = so + i * lds;
        for (let j = j0; j < j1; j++) dst[dO + j * ldd + i] = src[s + j]!;
      }
    }
  }
}

function nativeKernels(fn: Record<'dgemm' | 'dtrsm' | 'dpotrf' | 'dgetrf' | 'dgetrs' | 'dgetri', NativeFunction>): KernelBackend {
  // Fortran takes its integers by reference: one buffer per argument, reused (calls are synchronous).
  const N = new Int32Array(1);
  const NRHS = new Int32Array(1);
  const LDA = new Int32Array(1);
  const LDB = new Int32Array(1);
  const INFO = new Int32Array(1);
  const LWORK = new Int32Array(1);
  let work = new Float64Array(0);
  let pivots = new Int32Array(0);
  // Scratch for getrf's transposes and a singular inverse, kept between calls up to 8 MiB.
  let square = new Float64Array(0);
  const squareOf = (size: number): Float64Array => {
    if (size <= square.length) return square;
    const buffer = new Float64Array(size);
    if (size <= 1 << 20) square = buffer;
    return buffer;
  };
  const failed = (routine: string): Error => new Error(`${routine} rejected argument ${-INFO[0]!} (a bug: the arguments were checked)`);

  const native: KernelBackend = {
    name: 'openblas',

    gemm(transA, transB, m, n, k, alpha, a, ao, lda, b, bo, ldb, beta, c, co, ldc) {
      checkMatrix('gemm A', a, ao, transA ? k : m, transA ? m : k, lda);
      checkMatrix('gemm B', b, bo, transB ? n : k, transB ? k : n, ldb);
      checkMatrix('gemm C', c, co, m, n, ldc);
      if (typeof alpha !== 'number' || typeof beta !== 'number') throw new RangeError('gemm: alpha and beta must be numbers');
      if (m === 0 || n === 0) return;
      if (k === 0) {
        // C = beta C; OpenBLAS is not asked about an empty inner dimension.
        for (let i = 0; i < m; i++) {
          const ci = co + i * ldc;
          for (let j = 0; j < n; j++) c[ci + j] = beta === 0 ? 0 : beta * c[ci + j]!;
        }
        return;
      }
      const cEnd = endOf(co, m, n, ldc);
      checkDisjoint('gemm', c, co, cEnd, a, ao, endOf(ao, transA ? k : m, transA ? m : k, lda));
      checkDisjoint('gemm', c, co, cEnd, b, bo, endOf(bo, transB ? n : k, transB ? k : n, ldb));
      fn.dgemm(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, alpha, at(a, ao), lda, at(b, bo), ldb, beta, at(c, co), ldc);
    },

    potrf(n, a, ao, lda) {
      checkMatrix('potrf', a, ao, n, n, lda);
      if (n === 0) return -1;
      N[0] = n;
      LDA[0] = lda;
      fn.dpotrf('U', N, at(a, ao), LDA, INFO, 1);
      const info = INFO[0]!;
      if (info < 0) throw failed('dpotrf');
      // OpenBLAS stops at a pivot <= 0 but lets a NaN one through: the first NaN on the diagonal fails too.
      const stop = info > 0 ? info - 1 : n;
      for (let i = 0; i < stop; i++) if (Number.isNaN(a[ao + i * lda + i]!)) return i;
      return info > 0 ? info - 1 : -1;
    },

    getrf(n, a, ao, lda, ipiv, po) {
      checkMatrix('getrf', a, ao, n, n, lda);
      checkPivots('getrf', ipiv, po, n);
      if (n === 0) return -1;
      // Column-major A is row-major Aᵀ: transpose into the scratch, factor, transpose back.
      const t = squareOf(n * n);
      transposeInto(n, a, ao, lda, t, 0, n);
      N[0] = n;
      LDA[0] = n;
      const p = ipiv.subarray(po, po + n);
      fn.dgetrf(N, N, t, LDA, p, INFO);
      const info = INFO[0]!;
      if (info < 0) throw failed('dgetrf');
      transposeInto(n, t, 0, n, a, ao, lda);
      for (let j = 0; j < n; j++) p[j] = p[j]! - 1;
      return info > 0 ? info - 1 : -1;
    },

    getrs(transposed, n, nrhs, lu, lo, ldlu, ipiv, po, b, bo, ldb) {
      checkMatrix('getrs LU', lu, lo, n, n, ldlu);
      checkPivots('getrs', ipiv, po, n);
      checkMatrix('getrs B', b, bo, n, nrhs, ldb);
      for (let j = 0; j < n; j++) {
        const p = ipiv[po + j]!;
        if (!Number.isInteger(p) || p < j || p >= n) throw new RangeError(`getrs: pivot ${j} is ${p}, not a row from ${j} to ${n - 1}`);
      }
      if (n === 0 || nrhs === 0) return;
      checkDisjoint('getrs', b, bo, endOf(bo, n, nrhs, ldb), lu, lo, endOf(lo, n, n, ldlu));
      const trsm = (uplo: number, trans: number, diag: number): void =>
        fn.dtrsm(ROW_MAJOR, LEFT, uplo, trans, diag, n, nrhs, 1, at(lu, lo), ldlu, at(b, bo), ldb);
      if (!transposed) {
        for (let j = 0; j < n; j++) if (ipiv[po + j] !== j) swapRows(b, bo, ldb, nrhs, j, ipiv[po + j]!);
        trsm(LOWER, NO_TRANS, UNIT);
        trsm(UPPER, NO_TRANS, NON_UNIT);
      } else {
        trsm(UPPER, TRANS, NON_UNIT);
        trsm(LOWER, TRANS, UNIT);
        for (let j = n - 1; j >= 0; j--) if (ipiv[po + j] !== j) swapRows(b, bo, ldb, nrhs, j, ipiv[po + j]!);
      }
    },

    trsm(lower, transposed, unitDiagonal, m, n, t, to, ldt, b, bo, ldb) {
      checkMatrix('trsm T', t, to, m, m, ldt);
      checkMatrix('trsm B', b, bo, m, n, ldb);
      if (m === 0 || n === 0) return;
      checkDisjoint('trsm', b, bo, endOf(bo, m, n, ldb), t, to, endOf(to, m, m, ldt));
      fn.dtrsm(ROW_MAJOR, LEFT, lower ? LOWER : UPPER, transposed ? TRANS : NO_TRANS, unitDiagonal ? UNIT : NON_UNIT, m, n, 1, at(t, to), ldt, at(b, bo), ldb);
    },

    inverse(n, a, ao, lda) {
      checkMatrix('inverse', a, ao, n, n, lda);
      if (n === 0) return -1;
      // Column-major, the buffer holds Aᵀ; its inverse, read row-major, is A⁻¹.
      if (pivots.length < n) pivots = new Int32Array(n);
      N[0] = n;
      LDA[0] = lda;
      const x = at(a, ao);
      fn.dgetrf(N, N, x, LDA, pivots, INFO);
      const info = INFO[0]!;
      if (info < 0) throw failed('dgetrf');
      if (info === 0) {
        const lwork = Math.max(1, n * 64);
        if (work.length < lwork) work = new Float64Array(lwork);
        LWORK[0] = lwork;
        fn.dgetri(N, x, LDA, pivots, work, LWORK, INFO);
        if (INFO[0]! < 0) throw failed('dgetri');
        return -1;
      }
      // Singular: dgetri refuses, so solve Aᵀ X = I with the factors; the zero pivot gives
      // Infinity/NaN as the JS backend's substitution does.
      const id = squareOf(n * n);
      id.fill(0, 0, n * n);
      for (let i = 0; i < n; i++) id[i * (n + 1)] = 1;
      NRHS[0] = n;
      LDB[0] = n;
      fn.dgetrs('N', N, NRHS, x, LDA, pivots, id, LDB, INFO, 1);
      if (INFO[0]! < 0) throw failed('dgetrs');
      for (let i = 0; i < n; i++) a.set(id.subarray(i * n, i * n + n), ao + i * lda);
      return info - 1;
    },
  };
  return native;
}

/** Small problems to the JS kernels (faster than a native call there), the rest to OpenBLAS. */
function dispatching(native: KernelBackend): KernelBackend {
  return {
    name: 'openblas',
    gemm(transA, transB, m, n, k, alpha, a, ao, lda, b, bo, ldb, beta, c, co, ldc) {
      const kernels = m * n * k < GEMM_NATIVE_MIN_WORK ? jsKernels : native;
      kernels.gemm(transA, transB, m, n, k, alpha, a, ao, lda, b, bo, ldb, beta, c, co, ldc);
    },
    potrf: (n, a, ao, lda) => (n < POTRF_NATIVE_MIN_N ? jsKernels : native).potrf(n, a, ao, lda),
    getrf: (n, a, ao, lda, ipiv, po) => (n < GETRF_NATIVE_MIN_N ? jsKernels : native).getrf(n, a, ao, lda, ipiv, po),
    getrs(transposed, n, nrhs, lu, lo, ldlu, ipiv, po, b, bo, ldb) {
      const kernels = n * n * nrhs < TRSM_NATIVE_MIN_WORK ? jsKernels : native;
      kernels.getrs(transposed, n, nrhs, lu, lo, ldlu, ipiv, po, b, bo, ldb);
    },
    trsm(lower, transposed, unitDiagonal, m, n, t, to, ldt, b, bo, ldb) {
      const kernels = m * m * n < TRSM_NATIVE_MIN_WORK ? jsKernels : native;
      kernels.trsm(lower, transposed, unitDiagonal, m, n, t, to, ldt, b, bo, ldb);
    },
    inverse: (n, a, ao, lda) => (n < INVERSE_NATIVE_MIN_N ? jsKernels : native).inverse(n, a, ao, lda),
  };
}
