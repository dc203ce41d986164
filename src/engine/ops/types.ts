// The shape of one primitive's table entry: shape rule, kernel, scalar code, JVP rule, VJP rules,
// cost, words, conventions, non-finite hint, and how the languages call it.
//
// Batching convention. Every primitive acts on trailing "core" dimensions described by its
// attributes (axes are negative, counted from the end; reshape/broadcast name the trailing shape),
// and leading dimensions beyond those broadcast NumPy-style across its arguments. So a derivative
// rule written for one tangent also works, unchanged, on a stack of tangents with extra leading
// batch dimensions: one pass computes many Jacobian columns or rows.

import type { NodeId } from '../ir/node-id.js';
import type { Shape, Tensor } from '../tensor/tensor.js';
import type { UnaryName, BinaryName } from '../tensor/elementwise.js';
import type { VectorOperands } from '../tensor/matmul.js';

export type ReduceName = 'sum' | 'prod' | 'max' | 'min' | 'logsumexp' | 'norm';
export type LinalgName = 'inv' | 'det' | 'adjugate' | 'logdet' | 'cholesky';

export interface NoAttrs {
  readonly [key: string]: never;
}
export interface InputAttrs {
  readonly name: string;
}
export interface ConstAttrs {
  readonly value: Tensor;
}
/** axes: distinct negative axes in increasing order. */
export interface ReduceAttrs {
  readonly axes: readonly number[];
  readonly keepdims: boolean;
}
/** Reshape the trailing dims `from` into `to`; leading dims pass through. */
export interface ReshapeAttrs {
  readonly from: Shape;
  readonly to: Shape;
}
/** Broadcast the trailing shape.length dims to `shape` (the argument has at least that rank). */
export interface BroadcastAttrs {
  readonly shape: Shape;
}
/** Permute the last perm.length dims. */
export interface PermuteAttrs {
  readonly perm: readonly number[];
}
/** A strided window of the last starts.length dims. */
export interface SliceAttrs {
  readonly starts: readonly number[];
  readonly steps: readonly number[];
  readonly counts: readonly number[];
}
/** The adjoint of slice: place the argument's trailing dims into zeros of trailing shape `shape`. */
export interface ScatterAttrs {
  readonly shape: Shape;
  readonly starts: readonly number[];
  readonly steps: readonly number[];
}
/** Solve with the lower (or upper) triangle of the first argument; the other triangle is not read. */
export interface TriSolveAttrs extends SolveAttrs {
  readonly lower: boolean;
}
/** With `vector`, the right side is a vector (its last dim; a column, as NumPy's solve takes it). */
export interface SolveAttrs {
  readonly vector?: boolean;
  /**
   * Solve with the transpose of the stored matrix (Aᵀ X = B) from its own factors. Set only by the
   * optimiser of derived programs (solve(Aᵀ, ·) in adjoints), never by a front end.
   */
  readonly transposed?: boolean;
}
/** NumPy's 1-D operands: which arguments are vectors (a row on the left, a column on the right). */
export interface MatmulAttrs {
  readonly vectors: VectorOperands;
  /**
   * Multiply by the transpose of the stored matrix (BLAS's transa, transb): set only by the
   * optimiser of derived programs, which folds Aᵀ into the product instead of copying it.
   */
  readonly transA?: boolean;
  readonly transB?: boolean;
}
export interface ConcatAttrs {
  /** Negative axis. */
  readonly axis: number;
}

export interface AttrsTable {
  input: InputAttrs;
  const: ConstAttrs;
  unary: NoAttrs;
  binary: NoAttrs;
  where: NoAttrs;
  reduce: ReduceAttrs;
  reshape: ReshapeAttrs;
  broadcast_to: BroadcastAttrs;
  permute: PermuteAttrs;
  slice: SliceAttrs;
  scatter: ScatterAttrs;
  concat: ConcatAttrs;
  diag_part: NoAttrs;
  diag_embed: NoAttrs;
  matmul: MatmulAttrs;
  solve: SolveAttrs;
  trisolve: TriSolveAttrs;
  linalg: NoAttrs;
}

type OpFamilyOf = { [K in UnaryName]: 'unary' } & { [K in BinaryName]: 'binary' } & { [K in ReduceName]: 'reduce' } & {
  [K in LinalgName]: 'linalg';
} & {
  input: 'input';
  const: 'const';
  where: 'where';
  reshape: 'reshape';
  broadcast_to: 'broadcast_to';
  permute: 'permute';
  slice: 'slice';
  scatter: 'scatter';
  concat: 'concat';
  diag_part: 'diag_part';
  diag_embed: 'diag_embed';
  matmul: 'matmul';
  solve: 'solve';
  trisolve: 'trisolve';
};

export type OpName = keyof OpFamilyOf;
export type AttrsOf<K extends OpName> = AttrsTable[OpFamilyOf[K]];

/**
 * The builder as derivative rules and language exposures see it (ir/builder.ts's `Builder`
 * implements it). The table is written against this vocabulary rather than the class, so the
 * table does not import the builder, which imports the table.
 */
export interface RuleBuilder {
  shapeOf(id: NodeId): Shape;
  constant(value: Tensor): NodeId;
  scalar(v: number): NodeId;
  /** Zeros of `shape` without allocating them at build time. */
  zeros(shape: Shape): NodeId;
  /** Refuse a shape past the limits (limit_exceeded), before a rule allocates a constant of it. */
  checkSize(shape: Shape, what?: string): void;
  /** Apply a primitive: shape rule, then shortcuts, sharing and constant folding. */
  apply<K extends OpName>(op: K, args: readonly NodeId[], attrs: AttrsOf<K>): NodeId;
  un(name: UnaryName, x: NodeId): NodeId;
  bin(name: BinaryName, a: NodeId, b: NodeId): NodeId;
  add(a: NodeId, b: NodeId): NodeId;
  sub(a: NodeId, b: NodeId): NodeId;
  mul(a: NodeId, b: NodeId): NodeId;
  div(a: NodeId, b: NodeId): NodeId;
  neg(x: NodeId): NodeId;
  where(c: NodeId, a: NodeId, b: NodeId): NodeId;
  /** Sum over negative `axes`. */
  sum(x: NodeId, axes: readonly number[], keepdims: boolean): NodeId;
  reshape(x: NodeId, from: Shape, to: Shape): NodeId;
  broadcastTo(x: NodeId, shape: Shape): NodeId;
  permute(x: NodeId, perm: readonly number[]): NodeId;
  /** Swap the last two dims: the matrix transpose of a batch of matrices. */
  mT(x: NodeId): NodeId;
  /** A @ B; with `vectors`, NumPy's 1-D operands (see tensor/matmul.ts). */
  matmul(a: NodeId, b: NodeId, vectors?: VectorOperands): NodeId;
  /** A⁻¹ B; with `vector`, B is a vector. */
  solve(a: NodeId, b: NodeId, vector?: boolean): NodeId;
  inv(a: NodeId): NodeId;
  /** Sum of a list of nodes, skipping nulls (zeros); null when all are zero. */
  sumOf(terms: readonly (NodeId | null)[]): NodeId | null;
}

export interface RuleContext {
  readonly b: RuleBuilder;
  /** Leading batch dims carried by every tangent or cotangent in this pass ([] for one). */
  readonly batch: Shape;
}

/** Tangent of the output from the primals, their tangents (null = zero) and the output. */
export type JvpRule<A> = (
  ctx: RuleContext,
  primals: readonly NodeId[],
  tangents: readonly (NodeId | null)[],
  out: NodeId,
  attrs: A,
) => NodeId | null;

/**
 * Contribution to one argument's adjoint from the output's cotangent `g`. The result may still
 * carry broadcast dimensions; the reverse pass sums them away in one place (fitToShape).
 */
export type VjpRule<A> = (ctx: RuleContext, g: NodeId, primals: readonly NodeId[], out: NodeId, attrs: A) => NodeId;

/** An index item of NumPy basic indexing. */
export type IndexItem = { kind: 'int'; index: number } | { kind: 'slice'; start?: number; stop?: number; step?: number } | { kind: 'none' };

export type StaticKind = 'int' | 'axes' | 'bool' | 'shape' | 'index';
export type StaticValue = number | number[] | boolean | IndexItem[];

/** A keyword argument of a function: given after the tensors (`sum(x, axis=0)`). */
export interface StaticParam {
  readonly name: string;
  readonly kind: StaticKind;
  readonly optional: boolean;
  readonly about: string;
}

export type StaticValues = Readonly<Record<string, StaticValue | undefined>>;

/**
 * How the expression language and the graph front end call a primitive: by the op's own name,
 * with its arity of tensors (a list for a variadic op), then these keyword arguments.
 */
export interface LanguageExposure {
  readonly statics: readonly StaticParam[];
  /** The call as nodes; without it, the primitive applied to the tensors with no attributes. */
  readonly lower?: (b: RuleBuilder, xs: readonly NodeId[], s: StaticValues) => NodeId;
}

export interface OpDoc {
  /** The value rule in words (the lecture's "Value update"). */
  readonly value: string;
  /** The derivative rule in words (the lecture's "Derivative update"). */
  readonly derivative: string;
}

export interface OpDef<A> {
  /** Number of arguments, or 'variadic'. */
  readonly arity: number | 'variadic';
  /** Arguments' leading dims broadcast against each other (elementwise, matmul, solve). */
  readonly broadcasts: boolean;
  /** Output shape from argument shapes; throws ShapeError when they do not fit. */
  readonly shape: (args: readonly Shape[], attrs: A) => Shape;
  /** The kernel: the only place that touches Float64Array data. */
  readonly impl: (args: readonly Tensor[], attrs: A, shape: Shape) => Tensor;
  readonly jvp: JvpRule<A>;
  /** One rule per argument (null: no derivative flows to it), or one rule for every argument. */
  readonly vjp: readonly (VjpRule<A> | null)[] | ((index: number) => VjpRule<A> | null);
  /** Floating-point operations of one evaluation. */
  readonly cost: (args: readonly Shape[], out: Shape, attrs: A) => number;
  readonly doc: OpDoc;
  /**
   * Elementwise ops: the value of one element as a JavaScript expression over the arguments'
   * scalar expressions, for compiled plans; it must compute exactly what the kernel does (`H.`
   * names the helpers of tensor/elementwise.ts's SCALAR_HELPERS). null: the step runs its kernel.
   */
  readonly scalar: ((args: readonly string[]) => string) | null;
  /** How the languages call it by name; null: only through composites or the builder. */
  readonly language: LanguageExposure | null;
  /** Its convention where it is not differentiable or not defined, in words (GET /ops). */
  readonly convention?: string;
  /** The likely cause when its value is the first NaN or infinity from finite arguments. */
  readonly hint?: string;
  /** The likely cause when one of its derivative rules gives the first NaN or infinity. */
  readonly derivativeHint?: string;
}

export type OpTable = { readonly [K in OpName]: OpDef<AttrsOf<K>> };

/** A shape rule's complaint; the builder adds where it happened. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}
