// Type tests, compiled (never run) by `tsc --noEmit -p clients/typescript`: requests the spec
// refuses must not type-check, and answers have the decoded types. Each `@ts-expect-error` fails
// the compilation if the line below it does type-check.

import { type Adjoint, createAdjoint, type Tensor } from '../src/index.js';

const adjoint: Adjoint = createAdjoint({ baseUrl: 'http://127.0.0.1:3000' });
const graph = { nodes: [{ id: 'y', op: 'sin', args: ['x'] }], output: 'y' };

export async function requests(): Promise<void> {
  await adjoint.grad({ expr: 'sin(x)', at: { x: 0.5 } });
  await adjoint.grad({ graph, at: { x: new Float64Array([1, 2]) } });
  await adjoint.grad({ expr: 'sum(x^2)', points: [{ x: [1, Number.NaN] }, { x: [3, 4] }], wrt: ['x'], encoding: 'base64' });
  await adjoint.jvp({ expr: 'sin(x)', at: { x: 1 }, tangents: { x: 1 } });
  await adjoint.check({ expr: 'sin(x)', at: { x: 1 }, rtol: 1e-6, method: 'central' });
  await adjoint.trace({ expr: 'sin(x)', at: { x: 1 }, mode: 'forward' });

  // @ts-expect-error a typo in a field name: `exp`
  await adjoint.grad({ exp: 'sin(x)', at: { x: 0.5 } });
  // @ts-expect-error a typo in a field name: `wrtt`
  await adjoint.grad({ expr: 'sin(x)', at: { x: 0.5 }, wrtt: ['x'] });
  // @ts-expect-error a typo in an endpoint's own field: `tangent` for `tangents`
  await adjoint.jvp({ expr: 'sin(x)', at: { x: 1 }, tangent: { x: 1 } });
  // @ts-expect-error no function: one of `expr` and `graph` is required
  await adjoint.grad({ at: { x: 0.5 } });
  // @ts-expect-error both `expr` and `graph`
  await adjoint.grad({ expr: 'sin(x)', graph, at: { x: 0.5 } });
  // @ts-expect-error no point: one of `at` and `points` is required
  await adjoint.grad({ expr: 'sin(x)' });
  // @ts-expect-error both `at` and `points`
  await adjoint.grad({ expr: 'sin(x)', at: { x: 0.5 }, points: [{ x: 1 }] });
  // @ts-expect-error the empty request
  await adjoint.grad({});
  // @ts-expect-error an encoding the service does not know
  await adjoint.grad({ expr: 'sin(x)', at: { x: 0.5 }, encoding: 'hex' });
  // @ts-expect-error a string that is not a number
  await adjoint.grad({ expr: 'sin(x)', at: { x: 'one' } });
  // @ts-expect-error /trace takes one point only
  await adjoint.trace({ expr: 'sin(x)', points: [{ x: 1 }] });
}

export async function rawRequests(): Promise<void> {
  await adjoint.raw.POST('/grad', { body: { expr: 'sin(x)', at: { x: 0.5 } } });
  // @ts-expect-error the generated types refuse a typo too
  await adjoint.raw.POST('/grad', { body: { exp: 'sin(x)', at: { x: 0.5 } } });
  // @ts-expect-error and the empty body
  await adjoint.raw.POST('/grad', { body: {} });
  // @ts-expect-error and a path the service does not have
  await adjoint.raw.POST('/gradient', { body: { expr: 'sin(x)', at: { x: 0.5 } } });
}

export async function answers(): Promise<number> {
  const one = await adjoint.grad({ expr: 'sin(x)', at: { x: 0.5 } });
  const gradient: Tensor = one.gradient.x as Tensor;
  const value: Tensor = one.value;
  // @ts-expect-error a one-point answer has no `results`
  one.results;
  const many = await adjoint.grad({ expr: 'sin(x)', points: [{ x: 0.5 }, { x: 1 }] });
  const first: Tensor = many.results[0]!.value;
  // @ts-expect-error a batch answer has no top-level `value`
  many.value;
  const check = await adjoint.check({ expr: 'sin(x)', at: { x: 1 } });
  const ok: boolean = check.ok;
  const error: number = check.maxAbsError;
  const jacobian = await adjoint.jacobian({ expr: 'tanh(W @ x)', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] } });
  const mode: 'forward' | 'reverse' = jacobian.mode;
  const passes: number = jacobian.passes;
  return gradient.item() + value.item() + first.item() + error + (ok ? 1 : 0) + (mode === 'forward' ? passes : 0);
}
