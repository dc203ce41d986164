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

export async function helpers(): Promise<number> {
  const job = await adjoint.submit('hessian', { expr: 'x @ x', at: { x: [1, 2] } });
  const hessian: Tensor = (await adjoint.wait(job)).hessian.x!.x!;
  const batch = await adjoint.wait(await adjoint.submit('grad', { expr: 'x^2', points: [{ x: 1 }, { x: 2 }] }));
  const first: Tensor = batch.results[0]!.value;
  // @ts-expect-error a one-point job's answer has no `results`
  (await adjoint.wait(job)).results;
  // @ts-expect-error a typo in a job's request, as in the method's
  await adjoint.submit('grad', { exp: 'x', at: { x: 1 } });
  // @ts-expect-error no job runs /trace
  await adjoint.submit('trace', { expr: 'x', at: { x: 1 } });
  const probed = await adjoint.run('probe', { target: { expr: 'sum(sin(x))' }, at: new Float64Array([0.1, 0.2]), method: 'spsa', budget: 50 }, { onProgress: (view) => view.progress.done });
  const tokens = await adjoint.probe({ target: { url: 'http://127.0.0.1:8081/sentiment', body: { tokens: '$input' }, outputPath: '/logit' }, at: ['not', 'good'], method: 'shapley' });
  // @ts-expect-error a method /probe does not know
  await adjoint.probe({ target: { expr: 'x' }, at: [1], method: 'newton' });
  const graded = await adjoint.grade({ reference: { expr: 'x^2' }, submissions: [{ id: 's', answers: { derivative: { x: '2*x' } } }] });
  // @ts-expect-error grading needs submissions
  await adjoint.grade({ reference: { expr: 'x^2' } });
  const unknown: unknown = await adjoint.wait('an-id');
  for await (const view of adjoint.events(job)) if (view.state === 'succeeded') break;
  return hessian.item() + first.item() + probed.queries + (tokens.method === 'shapley' ? tokens.scores[0]! : 0) + (graded.format === 'native' ? graded.results.length : 0) + (unknown === undefined ? 0 : 1);
}
