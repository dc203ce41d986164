// Builds graphs node by node, inferring each shape as it goes. The front ends (expressions, JSON
// graphs) and the derivative rules all build through this one class, so shape errors, constant
// folding, common-subexpression sharing and algebraic shortcuts live in one place.

import { EngineError, type SourceSpan } from '../errors.js';
import { DEFAULT_MAX_DIMENSION, shapeBeyondLimits } from '../ops/shapes.js';
import { matmulAttrs, OPS } from '../ops/table.js';
import { ShapeError, type AttrsOf, type OpName, type RuleBuilder } from '../ops/types.js';
import type { UnaryName, BinaryName } from '../tensor/elementwise.js';
import type { VectorOperands } from '../tensor/matmul.js';
import { formatShape, shapesEqual, sizeOf, type Shape, type Tensor } from '../tensor/tensor.js';
import type { Graph, Node, NodeId, NodeOrigin } from './graph.js';

export interface BuilderOptions {
  /** Share identical nodes and apply algebraic shortcuts (x*1, x+0, ...). Off for user programs, so traces show what was written. */
  readonly optimize: boolean;
  /** Largest tensor (elements; rows for one of zero elements) a build may describe; past it, limit_exceeded before any allocation. */
  readonly maxElements?: number;
  /** Longest dimension a build may describe (MAX_DIMENSION; default 2²⁴). */
  readonly maxDimension?: number;
  /** Most nodes a build may create. */
  readonly maxNodes?: number;
  /** The setting that bounds `maxNodes`, named in the error (default MAX_NODES). */
  readonly nodesLimitName?: string;
}

/** Where nodes being built come from: for error messages, traces and warnings. */
export interface BuildSite {
  span?: SourceSpan | undefined;
  /** A JSON graph node's id. */
  node?: string | undefined;
  origin?: NodeOrigin | undefined;
}

const FOLD_LIMIT = 256;

export class Builder implements Graph, RuleBuilder {
  readonly nodes: Node[] = [];
  readonly inputs = new Map<string, NodeId>();
  site: BuildSite = {};
  /**
   * While true, `apply` builds each node as asked (no shortcut, no sharing with an equal node)
   * but still records it for sharing, so nodes built afterwards (derivatives) may reuse it: how a
   * trace copies the function as written into an optimising builder, one node per step.
   */
  verbatim = false;
  private readonly shared = new Map<string, NodeId>();
  private readonly options: BuilderOptions;

  constructor(options: BuilderOptions) {
    this.options = options;
  }

  shapeOf(id: NodeId): Shape {
    return this.nodes[id]!.shape;
  }

  node(id: NodeId): Node {
    return this.nodes[id]!;
  }

  input(name: string, shape: Shape): NodeId {
    const existing = this.inputs.get(name);
    if (existing !== undefined) return existing;
    this.checkSize(shape, `the input '${name}'`);
    const id = this.push('input', [], { name }, [...shape]);
    this.nodes[id]!.label = name;
    this.inputs.set(name, id);
    return id;
  }

  constant(value: Tensor): NodeId {
    this.checkSize(value.shape, 'a constant');
    if (value.data.length <= 16) {
      const key = `const|${value.shape.join(',')}|${Array.from(value.data, numberKey).join(',')}`;
      const known = this.shared.get(key);
      if (known !== undefined) return known;
      const id = this.push('const', [], { value }, value.shape);
      this.shared.set(key, id);
      return id;
    }
    return this.push('const', [], { value }, value.shape);
  }

  scalar(v: number): NodeId {
    return this.constant({ shape: [], data: Float64Array.of(v) });
  }

  /** Zeros of `shape` without allocating them at build time. */
  zeros(shape: Shape): NodeId {
    if (shape.length === 0) return this.scalar(0);
    const one = this.constant({ shape: shape.map(() => 1), data: Float64Array.of(0) });
    return this.apply('broadcast_to', [one], { shape: [...shape] });
  }

  /** Apply a primitive: shape rule, then shortcuts, sharing and constant folding. */
  apply<K extends OpName>(op: K, args: readonly NodeId[], attrs: AttrsOf<K>): NodeId {
    const def = OPS[op];
    if (def.arity !== 'variadic' && def.arity !== args.length) {
      throw new Error(`internal: ${op} takes ${def.arity} arguments, got ${args.length}`);
    }
    const argShapes = args.map((a) => this.nodes[a]!.shape);
    let shape: Shape;
    try {
      shape = (def.shape as (s: readonly Shape[], a: AttrsOf<K>) => Shape)(argShapes, attrs);
    } catch (e) {
      if (e instanceof ShapeError) {
        throw new EngineError('shape_mismatch', this.locate(e.message), { position: this.site.span, node: this.site.node });
      }
      throw e;
    }
    this.checkSize(shape);
    if (this.options.optimize && !this.verbatim) {
      const shortcut = this.shortcut(op, args, attrs, shape);
      if (shortcut !== undefined) return shortcut;
    }
    if (args.length > 0 && sizeOf(shape) <= FOLD_LIMIT && args.every((a) => this.nodes[a]!.op === 'const')) {
      const values = args.map((a) => (this.nodes[a] as Node<'const'>).attrs.value);
      return this.constant((def.impl as (t: readonly Tensor[], a: AttrsOf<K>, s: Shape) => Tensor)(values, attrs, shape));
    }
    if (!this.options.optimize) return this.push(op, args, attrs, shape);
    const key = `${op}|${args.join(',')}|${JSON.stringify(attrs)}`;
    const known = this.shared.get(key);
    if (known !== undefined && !this.verbatim) return known;
    const id = this.push(op, args, attrs, shape);
    if (known === undefined) this.shared.set(key, id);
    return id;
  }

  // --- the vocabulary derivative rules are written in -------------------------------------

  un(name: UnaryName, x: NodeId): NodeId {
    return this.apply(name, [x], {} as AttrsOf<UnaryName>);
  }
  bin(name: BinaryName, a: NodeId, b: NodeId): NodeId {
    return this.apply(name, [a, b], {} as AttrsOf<BinaryName>);
  }
  add(a: NodeId, b: NodeId): NodeId {
    return this.bin('add', a, b);
  }
  sub(a: NodeId, b: NodeId): NodeId {
    return this.bin('sub', a, b);
  }
  mul(a: NodeId, b: NodeId): NodeId {
    return this.bin('mul', a, b);
  }
  div(a: NodeId, b: NodeId): NodeId {
    return this.bin('div', a, b);
  }
  neg(x: NodeId): NodeId {
    return this.un('neg', x);
  }
  where(c: NodeId, a: NodeId, b: NodeId): NodeId {
    return this.apply('where', [c, a, b], {} as AttrsOf<'where'>);
  }
  /** Sum over negative `axes`. */
  sum(x: NodeId, axes: readonly number[], keepdims: boolean): NodeId {
    if (axes.length === 0) return x;
    return this.apply('sum', [x], { axes: [...axes], keepdims });
  }
  reshape(x: NodeId, from: Shape, to: Shape): NodeId {
    return this.apply('reshape', [x], { from: [...from], to: [...to] });
  }
  broadcastTo(x: NodeId, shape: Shape): NodeId {
    return this.apply('broadcast_to', [x], { shape: [...shape] });
  }
  permute(x: NodeId, perm: readonly number[]): NodeId {
    return this.apply('permute', [x], { perm: [...perm] });
  }
  /** Swap the last two dims: the matrix transpose of a batch of matrices. */
  mT(x: NodeId): NodeId {
    return this.permute(x, [1, 0]);
  }
  matmul(a: NodeId, b: NodeId, vectors: VectorOperands = 'none'): NodeId {
    return this.apply('matmul', [a, b], { vectors });
  }
  solve(a: NodeId, b: NodeId, vector = false): NodeId {
    return this.apply('solve', [a, b], vector ? { vector } : {});
  }
  inv(a: NodeId): NodeId {
    return this.apply('inv', [a], {} as AttrsOf<'inv'>);
  }

  /** Sum of a list of nodes, skipping nulls (zeros); null when all are zero. */
  sumOf(terms: readonly (NodeId | null)[]): NodeId | null {
    let acc: NodeId | null = null;
    for (const t of terms) {
      if (t === null) continue;
      acc = acc === null ? t : this.add(acc, t);
    }
    return acc;
  }

  /** Is `id` a constant whose every element equals `v`? */
  isConstant(id: NodeId, v: number): boolean {
    const node = this.nodes[id]!;
    if (node.op !== 'const') return false;
    const data = (node as Node<'const'>).attrs.value.data;
    for (let i = 0; i < data.length; i++) if (data[i] !== v) return false;
    return true;
  }

  // --- internals ------------------------------------------------------------------------

  private push<K extends OpName>(op: K, args: readonly NodeId[], attrs: AttrsOf<K>, shape: Shape): NodeId {
    const id = this.nodes.length;
    if (this.options.maxNodes !== undefined && id >= this.options.maxNodes) {
      const name = this.options.nodesLimitName ?? 'MAX_NODES';
      const what = name === 'MAX_NODES' ? 'the function needs' : 'its derivative program needs';
      throw new EngineError('limit_exceeded', `${what} more than ${this.options.maxNodes} primitive steps (${name}): ask for fewer derivatives or a smaller function`);
    }
    const node: Node<K> = { id, op, args: [...args], attrs, shape: [...shape] };
    if (this.site.span) node.span = this.site.span;
    if (this.site.origin) node.origin = this.site.origin;
    this.nodes.push(node);
    return id;
  }

  /**
   * Refuse a shape past the limits (limit_exceeded): rank, elements, each dimension, and the rows
   * of a tensor of zero elements (ops/shapes.ts), before anything of that size exists.
   */
  checkSize(shape: Shape, what = 'an intermediate'): void {
    const why = shapeBeyondLimits(shape, {
      maxTensorElements: this.options.maxElements ?? Infinity,
      maxDimension: this.options.maxDimension ?? DEFAULT_MAX_DIMENSION,
    });
    if (why !== undefined) {
      throw new EngineError('limit_exceeded', this.locate(`${what} of shape ${formatShape(shape)} ${why}`), { position: this.site.span, node: this.site.node });
    }
  }

  private locate(message: string): string {
    if (this.site.node !== undefined) return `node '${this.site.node}': ${message}`;
    if (this.site.span) return `${message} (line ${this.site.span.line}, column ${this.site.span.column})`;
    return message;
  }

  /** Is this node the matrix transpose (the last two dims swapped) of a tensor of rank ≥ 2? */
  private isMatrixTranspose(node: Node): boolean {
    if (node.op !== 'permute') return false;
    const { perm } = (node as Node<'permute'>).attrs;
    return perm.length === 2 && perm[0] === 1 && perm[1] === 0 && this.shapeOf(node.args[0]!).length >= 2;
  }

  /** A⁻¹ v for a vector v (its last dimension), as a solve against the column v. */
  private solveColumn(m: NodeId, v: NodeId): NodeId {
    const k = this.shapeOf(v).at(-1)!;
    const x = this.solve(m, this.reshape(v, [k], [k, 1]));
    return this.reshape(x, [k, 1], [k]);
  }

  /** Algebraic identities that save work in derivative graphs. Only where the shape is unchanged. */
  private shortcut<K extends OpName>(op: K, args: readonly NodeId[], attrs: AttrsOf<K>, shape: Shape): NodeId | undefined {
    const same = (id: NodeId): boolean => shapesEqual(this.nodes[id]!.shape, shape);
    const [a, b] = args as [NodeId, NodeId];
    switch (op) {
      case 'add':
        if (this.isConstant(b, 0) && same(a)) return a;
        if (this.isConstant(a, 0) && same(b)) return b;
        return undefined;
      case 'sub':
        if (this.isConstant(b, 0) && same(a)) return a;
        if (this.isConstant(a, 0) && same(b)) return this.neg(b);
        return undefined;
      case 'mul':
        if (this.isConstant(b, 1) && same(a)) return a;
        if (this.isConstant(a, 1) && same(b)) return b;
        if (this.isConstant(b, -1) && same(a)) return this.neg(a);
        if (this.isConstant(a, -1) && same(b)) return this.neg(b);
        return undefined;
      case 'div':
        if (this.isConstant(b, 1) && same(a)) return a;
        return undefined;
      case 'pow':
        if (this.isConstant(b, 1) && same(a)) return a;
        return undefined;
      case 'where': {
        // A condition known when the program is built (a rule's guard such as y = 0 for a
        // constant y) picks its branch: no select over every element.
        const branch = this.isConstant(a, 0) ? args[2]! : this.isConstant(a, 1) ? b : undefined;
        if (branch === undefined) return undefined;
        const from = this.shapeOf(branch);
        const padded = from.length < shape.length ? this.reshape(branch, from, [...new Array<number>(shape.length - from.length).fill(1), ...from]) : branch;
        return this.broadcastTo(padded, shape);
      }
      case 'matmul': {
        // A⁻¹ B = solve(A, B) and B A⁻¹ = (A⁻ᵀ Bᵀ)ᵀ: fewer flops, better accuracy, and the
        // adjoint of a solve against a vector is a vector solve, not two matrix products. A
        // vector operand is solved for as a column.
        const { vectors, transA = false, transB = false } = attrs as AttrsOf<'matmul'>;
        const left = this.nodes[a]!;
        const right = this.nodes[b]!;
        if (left.op === 'inv' && !transA && vectors !== 'left' && vectors !== 'both') {
          return vectors === 'right' ? this.solveColumn(left.args[0]!, b) : this.solve(left.args[0]!, b);
        }
        if (right.op === 'inv' && !transB && vectors !== 'right' && vectors !== 'both') {
          return vectors === 'left' ? this.solveColumn(this.mT(right.args[0]!), a) : this.mT(this.solve(this.mT(right.args[0]!), this.mT(a)));
        }
        // Aᵀ B, A Bᵀ: the transpose folded into the product (gemm's transa/transb), not copied.
        if (vectors === 'none') {
          if (this.isMatrixTranspose(left)) return this.apply('matmul', [left.args[0]!, b], matmulAttrs('none', !transA, transB));
          if (this.isMatrixTranspose(right)) return this.apply('matmul', [a, right.args[0]!], matmulAttrs('none', transA, !transB));
        }
        return undefined;
      }
      case 'solve': {
        // solve(Aᵀ, B) from A's own factors (getrs with trans), so an adjoint reuses the forward LU.
        const matrix = this.nodes[a]!;
        if (!this.isMatrixTranspose(matrix)) return undefined;
        const solve = attrs as AttrsOf<'solve'>;
        return this.apply('solve', [matrix.args[0]!, b], { ...(solve.vector === true ? { vector: true } : {}), ...(solve.transposed === true ? {} : { transposed: true }) });
      }
      case 'trisolve': {
        // Tᵀ read as one triangle is the other triangle of T, transposed.
        const matrix = this.nodes[a]!;
        if (!this.isMatrixTranspose(matrix)) return undefined;
        const tri = attrs as AttrsOf<'trisolve'>;
        return this.apply('trisolve', [matrix.args[0]!, b], {
          lower: !tri.lower,
          ...(tri.vector === true ? { vector: true } : {}),
          ...(tri.transposed === true ? {} : { transposed: true }),
        });
      }
      case 'neg': {
        const inner = this.nodes[a]!;
        if (inner.op === 'neg') return inner.args[0];
        return undefined;
      }
      case 'reshape': {
        const { from, to } = attrs as AttrsOf<'reshape'>;
        if (shapesEqual(from, to)) return a;
        const inner = this.nodes[a]!;
        if (inner.op === 'reshape') {
          const innerAttrs = (inner as Node<'reshape'>).attrs;
          if (shapesEqual(innerAttrs.to, from)) return this.reshape(inner.args[0]!, innerAttrs.from, to);
        }
        return undefined;
      }
      case 'broadcast_to':
        return same(a) ? a : undefined;
      case 'permute': {
        const { perm } = attrs as AttrsOf<'permute'>;
        if (perm.every((p, i) => p === i)) return a;
        const inner = this.nodes[a]!;
        if (inner.op === 'permute') {
          const innerPerm = (inner as Node<'permute'>).attrs.perm;
          if (innerPerm.length === perm.length) {
            // permute(permute(x, p), q)[i] = x[p[q[i]]]
            return this.permute(inner.args[0]!, perm.map((q) => innerPerm[q]!));
          }
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }
}

function numberKey(v: number): string {
  return Object.is(v, -0) ? '-0' : String(v);
}
