// The functions expressions and graphs may call (GET /ops lists them), each lowered to primitives.
// The primitives come from the op table: every entry with a `language` exposure is a function of
// its own name (nothing to list here). Below them, in COMPOSITES, the language-only functions
// written with the builder (mean, softmax, trace, stack, indexing, dot, ...): they are not
// primitives, and their derivatives come from the primitives'.

import type { Builder } from '../ir/builder.js';
import type { NodeId } from '../ir/graph.js';
import { eye } from '../tensor/layout.js';
import { formatShape, shapesEqual, sizeOf, type Shape } from '../tensor/tensor.js';
import { negativeAxis, normaliseAxes, reducedShape, requireSquare } from './shapes.js';
import { ENTRIES, numpyMatmul, OPS, REDUCTION_PARAMS } from './table.js';
import { ShapeError, type AttrsOf, type IndexItem, type OpDoc, type OpName, type StaticParam, type StaticValues } from './types.js';

export type { IndexItem, StaticKind, StaticParam, StaticValue, StaticValues } from './types.js';

export interface FunctionDef {
  readonly name: string;
  /** How many tensor arguments come first, or 'list': one list of tensors (stack, concat). */
  readonly tensors: number | 'list';
  readonly statics: readonly StaticParam[];
  readonly lower: (b: Builder, xs: readonly NodeId[], s: StaticValues) => NodeId;
  readonly doc: OpDoc;
  /** Lowered to several primitives (its derivative comes from theirs). */
  readonly composite: boolean;
}

function fn(
  name: string,
  tensors: number | 'list',
  statics: readonly StaticParam[],
  lower: FunctionDef['lower'],
  doc: OpDoc,
  composite = true,
): FunctionDef {
  return { name, tensors, statics, lower, doc, composite };
}

/** The primitives the languages call by name: derived from the op table's `language` fields. */
function primitiveFunctions(): FunctionDef[] {
  return (Object.keys(ENTRIES) as OpName[]).flatMap((op) => {
    const def = ENTRIES[op];
    if (def.language === null) return [];
    const lower = def.language.lower ?? ((b: Builder, xs: readonly NodeId[]) => b.apply(op, xs, {} as AttrsOf<typeof op>));
    return [fn(op, def.arity === 'variadic' ? 'list' : def.arity, def.language.statics, lower, def.doc, false)];
  });
}

function transposeAll(b: Builder, x: NodeId, axes?: number[]): NodeId {
  const rank = b.shapeOf(x).length;
  if (axes === undefined) return rank < 2 ? x : b.permute(x, Array.from({ length: rank }, (_, i) => rank - 1 - i));
  if (axes.length !== rank) throw new ShapeError(`transpose: axes [${axes.join(', ')}] do not match a tensor of rank ${rank}`);
  const perm = axes.map((a) => negativeAxis(a, rank) + rank);
  if (new Set(perm).size !== rank) throw new ShapeError(`transpose: axes [${axes.join(', ')}] repeat an axis`);
  return b.permute(x, perm);
}

/** reshape's target, with at most one -1 inferred. */
function inferShape(from: Shape, to: readonly number[]): number[] {
  const total = sizeOf(from);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1 || to.some((d) => !Number.isInteger(d) || d < -1)) {
    throw new ShapeError(`reshape: [${to.join(', ')}] is not a shape (use sizes ≥ 0 and at most one -1)`);
  }
  if (unknown === 1) {
    const known = to.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    if (known === 0 || total % known !== 0) throw new ShapeError(`cannot reshape ${formatShape(from)} (${total} elements) into [${to.join(', ')}]`);
    return to.map((d) => (d === -1 ? total / known : d));
  }
  if (sizeOf(to) !== total) throw new ShapeError(`cannot reshape ${formatShape(from)} (${total} elements) into [${to.join(', ')}]`);
  return [...to];
}

function expandDims(b: Builder, x: NodeId, axis: number): NodeId {
  const shape = b.shapeOf(x);
  const rank = shape.length + 1;
  const pos = negativeAxis(axis, rank) + rank;
  return b.reshape(x, shape, [...shape.slice(0, pos), 1, ...shape.slice(pos)]);
}

function squeeze(b: Builder, x: NodeId, axes?: number[]): NodeId {
  const shape = b.shapeOf(x);
  const drop = axes === undefined ? shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normaliseAxes(axes, shape.length).map((a) => a + shape.length);
  for (const i of drop) {
    if (shape[i] !== 1) throw new ShapeError(`squeeze: axis ${i} of shape ${formatShape(shape)} has size ${shape[i]}, not 1`);
  }
  return b.reshape(x, shape, shape.filter((_, i) => !drop.includes(i)));
}

function concatenate(b: Builder, xs: readonly NodeId[], axis: number): NodeId {
  if (xs.length === 0) throw new ShapeError('concat needs at least one tensor');
  const shapes = xs.map((x) => b.shapeOf(x));
  const rank = shapes[0]!.length;
  if (rank === 0) throw new ShapeError('concat needs tensors of rank at least 1; use stack for scalars');
  if (shapes.some((s) => s.length !== rank)) throw new ShapeError(`concat: shapes ${shapes.map(formatShape).join(', ')} have different ranks`);
  if (xs.length === 1) return xs[0]!;
  return b.apply('concat', xs, { axis: negativeAxis(axis, rank) });
}

function stack(b: Builder, xs: readonly NodeId[], axis: number): NodeId {
  if (xs.length === 0) throw new ShapeError('stack needs at least one tensor');
  const shapes = xs.map((x) => b.shapeOf(x));
  const first = shapes[0]!;
  if (shapes.some((s) => formatShape(s) !== formatShape(first))) {
    throw new ShapeError(`stack needs tensors of one shape, got ${shapes.map(formatShape).join(', ')}`);
  }
  const expanded = xs.map((x) => expandDims(b, x, axis));
  return expanded.length === 1 ? expanded[0]! : b.apply('concat', expanded, { axis: negativeAxis(axis, first.length + 1) });
}

/** NumPy basic indexing: integers (negative from the end), slices with steps, None. */
export function basicIndex(b: Builder, x: NodeId, items: readonly IndexItem[]): NodeId {
  const shape = b.shapeOf(x);
  const used = items.filter((i) => i.kind !== 'none').length;
  if (used > shape.length) throw new ShapeError(`too many indices (${used}) for a tensor of shape ${formatShape(shape)}`);
  const starts: number[] = [];
  const steps: number[] = [];
  const counts: number[] = [];
  const out: number[] = [];
  let dim = 0;
  for (const item of items) {
    if (item.kind === 'none') {
      out.push(1);
      continue;
    }
    const size = shape[dim]!;
    if (item.kind === 'int') {
      const i = item.index < 0 ? item.index + size : item.index;
      if (!Number.isInteger(item.index) || i < 0 || i >= size) {
        throw new ShapeError(`index ${item.index} is out of bounds for axis ${dim} with size ${size}`);
      }
      starts.push(i);
      steps.push(1);
      counts.push(1);
    } else {
      const [start, step, count] = sliceIndices(item, size);
      starts.push(start);
      steps.push(step);
      counts.push(count);
      out.push(count);
    }
    dim++;
  }
  for (; dim < shape.length; dim++) {
    starts.push(0);
    steps.push(1);
    counts.push(shape[dim]!);
    out.push(shape[dim]!);
  }
  const identity = starts.every((s, i) => s === 0 && steps[i] === 1 && counts[i] === shape[i]);
  const window = identity ? x : b.apply('slice', [x], { starts, steps, counts });
  return shapesEqual(counts, out) ? window : b.reshape(window, counts, out);
}

/** Python's slice.indices: start, step and element count of a slice of a dimension of `size`. */
function sliceIndices(s: { start?: number; stop?: number; step?: number }, size: number): [number, number, number] {
  const step = s.step ?? 1;
  if (!Number.isInteger(step) || step === 0) throw new ShapeError('a slice step must be a non-zero integer');
  const [lower, upper] = step > 0 ? [0, size] : [-1, size - 1];
  const clamp = (v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v)) throw new ShapeError(`slice bound ${v} is not an integer`);
    return v < 0 ? Math.max(v + size, lower) : Math.min(v, upper);
  };
  const start = clamp(s.start, step > 0 ? lower : upper);
  const stop = clamp(s.stop, step > 0 ? upper : lower);
  const count = step > 0 ? Math.max(0, Math.ceil((stop - start) / step)) : Math.max(0, Math.ceil((start - stop) / -step));
  return [count === 0 ? 0 : start, step, count];
}

function diag(b: Builder, x: NodeId): NodeId {
  const shape = b.shapeOf(x);
  if (shape.length === 1) return b.apply('diag_embed', [x], {});
  if (shape.length !== 2) throw new ShapeError(`diag needs a vector or a matrix, got shape ${formatShape(shape)}`);
  const [m, n] = shape as [number, number];
  const k = Math.min(m, n);
  const square = m === n ? x : b.apply('slice', [x], { starts: [0, 0], steps: [1, 1], counts: [k, k] });
  return b.apply('diag_part', [square], {});
}

function logsumexpKeep(b: Builder, x: NodeId, axis: number): NodeId {
  return b.apply('logsumexp', [x], { axes: normaliseAxes([axis], b.shapeOf(x).length), keepdims: true });
}

// --- language-only functions: composites written with the builder, not primitives -----------

const COMPOSITES: readonly FunctionDef[] = [
  fn(
    'mean',
    1,
    REDUCTION_PARAMS,
    (b, [x], s) => {
      const shape = b.shapeOf(x!);
      const axes = normaliseAxes(s.axis as number[] | undefined, shape.length);
      const count = sizeOf(shape) / sizeOf(reducedShape(shape, axes, false));
      // The sum divided by the count, as NumPy's mean (× 1/count would round twice).
      return b.div(b.sum(x!, axes, s.keepdims === true), b.scalar(count));
    },
    { value: 'the sum divided by the number of elements reduced', derivative: 'd mean x = mean dx' },
  ),
  fn(
    'softmax',
    1,
    [{ name: 'axis', kind: 'int', optional: true, about: 'the axis (default: the last)' }],
    (b, [x], s) => b.un('exp', b.sub(x!, logsumexpKeep(b, x!, (s.axis as number | undefined) ?? -1))),
    { value: 'e^x / Σ e^x along the axis (computed as exp(x - logsumexp x))', derivative: 'd softmax = s ∘ (dx - Σ s dx)' },
  ),
  fn(
    'log_softmax',
    1,
    [{ name: 'axis', kind: 'int', optional: true, about: 'the axis (default: the last)' }],
    (b, [x], s) => b.sub(x!, logsumexpKeep(b, x!, (s.axis as number | undefined) ?? -1)),
    { value: 'x - logsumexp(x) along the axis', derivative: 'dx - Σ softmax(x) dx' },
  ),
  fn(
    'dot',
    2,
    [],
    (b, [x, y]) => {
      const rx = b.shapeOf(x!).length;
      const ry = b.shapeOf(y!).length;
      if (rx === 0 || ry === 0) return b.mul(x!, y!);
      if (rx > 2 || ry > 2) throw new ShapeError('dot of tensors of rank above 2 is not supported: use matmul');
      return numpyMatmul(b, x!, y!);
    },
    { value: 'NumPy dot: inner product of vectors, matrix product of matrices', derivative: 'as matmul' },
  ),
  fn(
    'outer',
    2,
    [],
    (b, [x, y]) => {
      const sx = b.shapeOf(x!);
      const sy = b.shapeOf(y!);
      const n = sizeOf(sx);
      const m = sizeOf(sy);
      return b.mul(b.reshape(x!, sx, [n, 1]), b.reshape(y!, sy, [1, m]));
    },
    { value: 'the outer product xᵢ yⱼ of the flattened arguments', derivative: 'dxᵢ yⱼ + xᵢ dyⱼ' },
  ),
  fn(
    'transpose',
    1,
    [{ name: 'axes', kind: 'shape', optional: true, about: 'a permutation of the axes (default: reversed)' }],
    (b, [x], s) => transposeAll(b, x!, s.axes as number[] | undefined),
    OPS.permute.doc,
  ),
  fn(
    'solve_triangular',
    2,
    [{ name: 'lower', kind: 'bool', optional: true, about: 'use the lower triangle of A (default True); else the upper' }],
    (b, [a, y], s) => b.apply('trisolve', [a!, y!], b.shapeOf(y!).length === 1 ? { lower: s.lower !== false, vector: true } : { lower: s.lower !== false }),
    OPS.trisolve.doc,
  ),
  fn(
    'trace',
    1,
    [],
    (b, [x]) => {
      const shape = b.shapeOf(x!);
      if (shape.length !== 2) throw new ShapeError(`trace needs a matrix, got shape ${formatShape(shape)}`);
      requireSquare(shape, 'trace');
      return b.sum(b.apply('diag_part', [x!], {}), [-1], false);
    },
    { value: 'the sum of the diagonal', derivative: 'd tr A = tr dA; Ā = ḡ I' },
  ),
  fn('diag', 1, [], (b, [x]) => diag(b, x!), { value: 'a vector to a diagonal matrix, or a matrix to its diagonal', derivative: OPS.diag_part.doc.derivative }),
  fn(
    'eye',
    0,
    [{ name: 'n', kind: 'int', optional: false, about: 'the size' }],
    (b, _, s) => {
      const n = s.n as number;
      if (!Number.isInteger(n) || n < 0) throw new ShapeError(`eye needs a size n ≥ 0, got ${n}`);
      b.checkSize([n, n]);
      return b.constant(eye(n));
    },
    { value: 'the n × n identity matrix', derivative: 'zero (a constant)' },
  ),
  fn(
    'reshape',
    1,
    [{ name: 'shape', kind: 'shape', optional: false, about: 'the new shape; one entry may be -1' }],
    (b, [x], s) => {
      const from = b.shapeOf(x!);
      return b.reshape(x!, from, inferShape(from, s.shape as number[]));
    },
    OPS.reshape.doc,
  ),
  fn(
    'stack',
    'list',
    [{ name: 'axis', kind: 'int', optional: true, about: 'the new axis (default 0)' }],
    (b, xs, s) => stack(b, xs, (s.axis as number | undefined) ?? 0),
    { value: 'tensors of one shape joined along a new axis', derivative: 'tangents stacked alike; each argument gets its slice of the adjoint' },
  ),
  fn(
    'concat',
    'list',
    [{ name: 'axis', kind: 'int', optional: true, about: 'the axis (default 0)' }],
    (b, xs, s) => concatenate(b, xs, (s.axis as number | undefined) ?? 0),
    OPS.concat.doc,
  ),
  fn(
    'squeeze',
    1,
    [{ name: 'axis', kind: 'axes', optional: true, about: 'the size-1 axes to remove (default: all)' }],
    (b, [x], s) => squeeze(b, x!, s.axis as number[] | undefined),
    { value: 'the same elements without size-1 axes', derivative: OPS.reshape.doc.derivative },
  ),
  fn(
    'expand_dims',
    1,
    [{ name: 'axis', kind: 'int', optional: false, about: 'where the new size-1 axis goes' }],
    (b, [x], s) => expandDims(b, x!, s.axis as number),
    { value: 'the same elements with a new size-1 axis', derivative: OPS.reshape.doc.derivative },
  ),
  fn(
    'index',
    1,
    [{ name: 'index', kind: 'index', optional: false, about: 'NumPy basic index items: integers, slices {start, stop, step}, null for None' }],
    (b, [x], s) => basicIndex(b, x!, s.index as IndexItem[]),
    { value: 'NumPy basic indexing X[i, a:b:c, None]', derivative: OPS.slice.doc.derivative },
  ),
];

/** Every function, by name: the table's exposed primitives, then the composites. */
export const FUNCTIONS: ReadonlyMap<string, FunctionDef> = new Map([...primitiveFunctions(), ...COMPOSITES].map((f) => [f.name, f]));

/** Operators of the expression language and the functions they call (a Map: looked up by the operator's text). */
export const OPERATOR_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ['+', 'add'],
  ['-', 'sub'],
  ['*', 'mul'],
  ['/', 'div'],
  ['^', 'pow'],
  ['@', 'matmul'],
  ['<', 'lt'],
  ['<=', 'le'],
  ['>', 'gt'],
  ['>=', 'ge'],
  ['==', 'eq'],
  ['!=', 'ne'],
]);

/** Names close to `name`, for "did you mean" hints. */
export function similarFunctions(name: string): string[] {
  const lower = name.toLowerCase();
  return [...FUNCTIONS.keys()].filter((f) => f.startsWith(lower.slice(0, 3)) || editDistance(f, lower) <= 2).slice(0, 3);
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
