// The kernel backend interface: the dense products and factorisations the tensor layer runs on
// one matrix at a time. Matrices are row-major views into Float64Arrays: an offset, and a leading
// dimension (the distance between the starts of two rows, at least the row length). Batched loops,
// broadcasting and result conventions stay in matmul.ts and linalg.ts.

export type BackendName = 'openblas' | 'js';

export interface KernelBackend {
  readonly name: BackendName;

  /**
   * C = alpha op(A) op(B) + beta C with op(A) m×k and op(B) k×n (op = transpose when the flag is
   * set: then A is stored k×m, B n×k). C is m×n at c[co..] with leading dimension ldc. With
   * beta = 0, C is not read (NaN in it does not propagate), as in BLAS.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float64Array,
    ao: number,
    lda: number,
    b: Float64Array,
    bo: number,
    ldb: number,
    beta: number,
    c: Float64Array,
    co: number,
    ldc: number,
  ): void;

  /**
   * The lower Cholesky factor (A = L Lᵀ) of the n×n matrix at a[ao..], in place, reading and
   * writing only the lower triangle. Returns -1 on success, else the first pivot p (0-based)
   * that is not positive (or NaN): then only the leading p×p block of L is meaningful, and the
   * caller decides what the rest holds.
   */
  potrf(n: number, a: Float64Array, ao: number, lda: number): number;

  /**
   * LU factorisation with partial pivoting of the n×n matrix at a[ao..], in place: P A = L U, L
   * unit lower (stored below the diagonal), U upper. ipiv[po + j] is the row swapped with row j at
   * step j (LAPACK's ipiv, 0-based). A column with no non-zero pivot is skipped, leaving an exactly
   * zero U diagonal entry. Returns the first such column (0-based), or -1.
   */
  getrf(n: number, a: Float64Array, ao: number, lda: number, ipiv: Int32Array, po: number): number;

  /**
   * Solves A X = B (or Aᵀ X = B when `transposed`) in place for the n×nrhs matrix B at b[bo..],
   * given A's factors from getrf. A zero pivot gives Infinity/NaN as IEEE arithmetic says.
   */
  getrs(
    transposed: boolean,
    n: number,
    nrhs: number,
    lu: Float64Array,
    lo: number,
    ldlu: number,
    ipiv: Int32Array,
    po: number,
    b: Float64Array,
    bo: number,
    ldb: number,
  ): void;

  /**
   * Solves op(T) X = B in place for the m×n matrix B (left side), T m×m triangular: its lower
   * triangle when `lower`, else its upper (the other is not read); with `unitDiagonal` the
   * diagonal is taken as ones and not read. A zero diagonal entry gives Infinity/NaN.
   */
  trsm(
    lower: boolean,
    transposed: boolean,
    unitDiagonal: boolean,
    m: number,
    n: number,
    t: Float64Array,
    to: number,
    ldt: number,
    b: Float64Array,
    bo: number,
    ldb: number,
  ): void;

  /**
   * The inverse of the n×n matrix at a[ao..], in place. Returns -1, or the first exactly zero
   * pivot of its LU factorisation: then the entries are Infinity/NaN, not an exception.
   */
  inverse(n: number, a: Float64Array, ao: number, lda: number): number;
}
