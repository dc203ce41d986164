// Test harness for the op table: build one primitive over random inputs, then its forward,
// reverse and second-order programs, straight from the builder and the transforms.

import { forwardMode, reverseMode } from '../../src/engine/ad/transform.js';
import { EngineError } from '../../src/engine/errors.js';
import { Builder } from '../../src/engine/ir/builder.js';
import { makePlan, run } from '../../src/engine/ir/evaluate.js';
import { dependents, type NodeId } from '../../src/engine/ir/graph.js';
import { Random } from '../../src/engine/random.js';
import { OPS } from '../../src/engine/ops/table.js';
import type { AttrsOf, OpName } from '../../src/engine/ops/types.js';
import { sizeOf, type Shape, type Tensor } from '../../src/engine/tensor/tensor.js';

export type Domain = 'any' | 'positive' | 'unit' | 'nonzero' | 'spd' | 'wellConditioned' | 'binary' | 'someZeros';

export interface ArgSpec {
  shape: Shape;
  domain?: Domain;
  /** Held fixed (a constant node): not differentiated, not perturbed. */
  constant?: boolean;
}

export interface OpCase {
  op: OpName;
  args: ArgSpec[];
  attrs?: Record<string, unknown>;
  label?: string;
}

export function randomTensor(random: Random, spec: ArgSpec): Tensor {
  const n = sizeOf(spec.shape);
  const data = new Float64Array(n);
  const domain = spec.domain ?? 'any';
  for (let i = 0; i < n; i++) {
    const u = random.uniform();
    switch (domain) {
      case 'positive':
        data[i] = 0.5 + 1.5 * u;
        break;
      case 'unit':
        data[i] = -0.8 + 1.6 * u;
        break;
      case 'nonzero':
        data[i] = (random.uniform() < 0.5 ? -1 : 1) * (0.3 + 1.2 * u);
        break;
      case 'binary':
        data[i] = u < 0.5 ? 0 : 1;
        break;
      case 'someZeros':
        // Exact zeros at every third element: one or more per row of the reductions tested.
        data[i] = i % 3 === 0 ? 0 : -1.5 + 3 * u;
        break;
      default:
        data[i] = -1.5 + 3 * u;
    }
  }
  if (domain === 'spd' || domain === 'wellConditioned') {
    // Add n·I to each matrix (and symmetrise for spd) so it is far from singular.
    const m = spec.shape.at(-1)!;
    for (let base = 0; base < n; base += m * m) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) {
          if (domain === 'spd' && j > i) data[base + i * m + j] = data[base + j * m + i]!;
        }
        data[base + i * m + i] = data[base + i * m + i]! + m + 1;
      }
    }
  }
  return { shape: [...spec.shape], data };
}

export interface Built {
  b: Builder;
  inputs: NodeId[];
  out: NodeId;
  count: number;
  /** Indices (into the case's args) of the differentiable arguments. */
  free: number[];
}

/** One primitive over inputs x0, x1, ... (constant args baked in). */
export function build(c: OpCase, values: readonly Tensor[]): Built {
  const b = new Builder({ optimize: true });
  const inputs: NodeId[] = [];
  const free: number[] = [];
  const args = c.args.map((spec, i) => {
    if (spec.constant) return b.constant(values[i]!);
    const id = b.input(`x${i}`, spec.shape);
    inputs.push(id);
    free.push(i);
    return id;
  });
  const out = b.apply(c.op, args, (c.attrs ?? {}) as AttrsOf<OpName>);
  return { b, inputs, out, count: b.nodes.length, free };
}

function bindings(c: OpCase, values: readonly Tensor[], extra: [string, Tensor][] = []): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  c.args.forEach((spec, i) => {
    if (!spec.constant) m.set(`x${i}`, values[i]!);
  });
  for (const [k, v] of extra) m.set(k, v);
  return m;
}

export function evaluate(c: OpCase, values: readonly Tensor[]): Tensor {
  const { b, out } = build(c, values);
  return run(makePlan(b, [out]), bindings(c, values))[0]!;
}

/** Forward mode with tangents `us` (one per free arg), each of shape [...batch, ...arg shape]. */
export function jvp(c: OpCase, values: readonly Tensor[], us: readonly Tensor[], batch: Shape = []): Tensor {
  const built = build(c, values);
  const { b, inputs, out, count } = built;
  const seeds = new Map<NodeId, NodeId>();
  inputs.forEach((id, k) => seeds.set(id, b.input(`t${k}`, [...batch, ...b.shapeOf(id)])));
  const tangent = forwardMode(b, count, seeds, batch);
  const t = tangent[out] ?? b.zeros([...batch, ...b.shapeOf(out)]);
  return run(makePlan(b, [t]), bindings(c, values, us.map((u, k) => [`t${k}`, u])))[0]!;
}

/** Reverse mode with cotangent `v` of shape [...batch, ...output shape]: one adjoint per free arg. */
export function vjp(c: OpCase, values: readonly Tensor[], v: Tensor, batch: Shape = []): Tensor[] {
  const { b, inputs, out, count } = build(c, values);
  const g = b.input('g', [...batch, ...b.shapeOf(out)]);
  const adjoint = reverseMode(b, count, new Map([[out, g]]), dependents(b, inputs), batch);
  const outs = inputs.map((id) => adjoint[id] ?? b.zeros([...batch, ...b.shapeOf(id)]));
  return run(makePlan(b, outs), bindings(c, values, [['g', v]]));
}

/**
 * Second order on f(x) = Σ w ∘ op(x): the gradient and the Hessian-vector product along `us`
 * (forward mode through the reverse-mode graph).
 */
export function gradAndHvp(c: OpCase, values: readonly Tensor[], w: Tensor, us: readonly Tensor[]): { grad: Tensor[]; hvp: Tensor[] } {
  const { b, inputs, out, count } = build(c, values);
  const weight = b.constant(w);
  const rank = b.shapeOf(out).length;
  const f = b.sum(b.mul(out, weight), Array.from({ length: rank }, (_, i) => i - rank), false);
  const adjoint = reverseMode(b, b.nodes.length, new Map([[f, b.scalar(1)]]), dependents(b, inputs), []);
  const grads = inputs.map((id) => adjoint[id] ?? b.zeros(b.shapeOf(id)));
  void count;
  const seeds = new Map<NodeId, NodeId>();
  inputs.forEach((id, k) => seeds.set(id, b.input(`t${k}`, b.shapeOf(id))));
  const tangent = forwardMode(b, b.nodes.length, seeds, []);
  const hvps = grads.map((g) => tangent[g] ?? b.zeros(b.shapeOf(g)));
  const outs = run(makePlan(b, [...grads, ...hvps]), bindings(c, values, us.map((u, k) => [`t${k}`, u])));
  return { grad: outs.slice(0, inputs.length), hvp: outs.slice(inputs.length) };
}

export function dot(a: Tensor, b: Tensor): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i]! * b.data[i]!;
  return s;
}

export function axpy(alpha: number, x: Tensor, y: Tensor): Tensor {
  return { shape: y.shape, data: y.data.map((v, i) => v + alpha * x.data[i]!) };
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

export function maxAbs(a: Tensor): number {
  let m = 0;
  for (const v of a.data) m = Math.max(m, Math.abs(v));
  return m;
}

export { OPS };

/** The EngineError `fn` throws (any other error is rethrown; no error fails the test). */
export function engineFailure(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EngineError) return e;
    throw e;
  }
  throw new Error('expected an EngineError');
}
