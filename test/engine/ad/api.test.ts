// The engine's API over tensors (src/engine/ad): named tensors in, tensors out, each computation
// planned (cost known) before it runs, and no request field or endpoint named in its errors.

import { describe, expect, it } from 'vitest';
import { check } from '../../../src/engine/ad/check.js';
import { grad, hessian, hvp, jacobian, jvp, value, vjp } from '../../../src/engine/ad/differentiate.js';
import { trace } from '../../../src/engine/ad/trace.js';
import { Engine } from '../../../src/engine/engine.js';
import { DEFAULT_LIMITS } from '../../../src/engine/prepare.js';
import type { Tensor } from '../../../src/engine/tensor/tensor.js';
import { withAlternative } from '../../../src/service/request.js';
import { engineFailure } from '../harness.js';

const t = (shape: number[], values: number[]): Tensor => ({ shape, data: Float64Array.from(values) });
const list = (x: Tensor | undefined): number[] => Array.from(x!.data);

const engine = new Engine();
const inputs = new Map([
  ['x', t([2], [1, 2])],
  ['M', t([2, 2], [1, 2, 3, 4])],
]);
const quadratic = engine.prepare({ expr: 'x @ M @ x' }, [...inputs].map(([name, x]) => ({ name, shape: x.shape })));

describe('the engine over tensors', () => {
  it('plans before it runs: work, answer size and live elements are known first', () => {
    const planned = grad(quadratic, inputs, ['x', 'M']);
    expect(planned.flops).toBeGreaterThan(0);
    expect(planned.answer).toBe(1 + 2 + 4);
    expect(planned.live).toBeGreaterThan(0);
    const { value: f, gradient, warnings } = planned.run();
    // f = xᵀMx = 27; ∂f/∂x = (M + Mᵀ)x; ∂f/∂M = x xᵀ.
    expect(list(f)).toEqual([27]);
    expect(list(gradient.get('x'))).toEqual([12, 21]);
    expect(list(gradient.get('M'))).toEqual([1, 2, 2, 4]);
    expect(warnings).toEqual([]);
    expect(list(value(quadratic, inputs).run().value)).toEqual([27]);
  });

  it('forward and reverse Jacobians agree, and agree with jvp and vjp', () => {
    const net = engine.prepare({ expr: 'tanh(W @ x)' }, [
      { name: 'W', shape: [2, 2] },
      { name: 'x', shape: [2] },
    ]);
    const at = new Map([
      ['W', t([2, 2], [1, 2, 3, 4])],
      ['x', t([2], [0.1, 0.2])],
    ]);
    const forward = jacobian(net, at, ['x'], 'forward').run();
    const reverse = jacobian(net, at, ['x'], 'reverse').run();
    expect([forward.mode, forward.passes, reverse.mode, reverse.passes]).toEqual(['forward', 2, 'reverse', 2]);
    expect(forward.jacobian.get('x')!.shape).toEqual([2, 2]);
    list(forward.jacobian.get('x')).forEach((v, i) => expect(v).toBeCloseTo(list(reverse.jacobian.get('x'))[i]!, 14));
    const J = list(reverse.jacobian.get('x'));
    const column0 = list(jvp(net, at, new Map([['x', t([2], [1, 0])]])).run().tangent);
    expect(column0[0]).toBeCloseTo(J[0]!, 14);
    expect(column0[1]).toBeCloseTo(J[2]!, 14);
    const row1 = list(vjp(net, at, ['x'], t([2], [0, 1])).run().vjp.get('x'));
    expect(row1[0]).toBeCloseTo(J[2]!, 14);
    expect(row1[1]).toBeCloseTo(J[3]!, 14);
    expect(jacobian(net, at, ['x']).run().mode).toBe('reverse');
  });

  it('Hessians by blocks, and Hessian-vector products that match them', () => {
    const { hessian: H, gradient } = hessian(quadratic, inputs, ['x']).run();
    expect(list(gradient.get('x'))).toEqual([12, 21]);
    // H = M + Mᵀ.
    expect(list(H.get('x')!.get('x'))).toEqual([2, 5, 5, 8]);
    expect(list(hvp(quadratic, inputs, ['x'], new Map([['x', t([2], [1, 0])]])).run().hvp.get('x'))).toEqual([2, 5]);
  });

  it('checks gradients against finite differences, per coordinate or along directions', () => {
    const options = { rtol: 1e-3, atol: 1e-5, method: 'central', seed: 0 } as const;
    const coordinates = check(quadratic, inputs, ['x'], options).run();
    expect(coordinates.ok).toBe(true);
    expect(coordinates.evaluations).toBe(4);
    list(coordinates.coordinates!.numeric.get('x')).forEach((v, i) => expect(v).toBeCloseTo([12, 21][i]!, 6));
    const directions = check(quadratic, inputs, ['x', 'M'], { ...options, method: 'forward', directions: 3 }).run();
    expect(directions.ok).toBe(true);
    expect(directions.directions).toHaveLength(3);
    expect(directions.evaluations).toBe(4);
  });

  it('traces every step with its value, tangent and adjoint', () => {
    const f = engine.prepare({ expr: 'y = x * x; sin(y)' }, [{ name: 'x', shape: [] }]);
    const at = new Map([['x', t([], [0.5])]]);
    const planned = trace(f, at, ['x'], 'both', { tangents: new Map([['x', t([], [1])]]), cotangent: t([], [1]) });
    expect(planned.answer).toBe(3 * 3);
    const result = planned.run();
    expect(result.rows.map((r) => r.label)).toEqual(['x', 'y', 'v1']);
    const dfdx = Math.cos(0.25) * 2 * 0.5;
    expect(result.tangents![2]!.data[0]).toBeCloseTo(dfdx, 15);
    expect(result.adjoints![0]!.data[0]).toBeCloseTo(dfdx, 15);
    expect(result.values[1]!.data[0]).toBe(0.25);
  });

  it('names no endpoint: what to ask for instead is a code the service words', () => {
    const vector = engine.prepare({ expr: 'x * 2' }, [{ name: 'x', shape: [2] }]);
    const e = engineFailure(() => grad(vector, new Map([['x', t([2], [1, 2])]]), ['x']));
    expect(e.code).toBe('not_scalar');
    expect(e.alternative).toBe('jacobian_or_vjp');
    expect(e.message).not.toMatch(/\//);
    expect(e.path).toBeUndefined();
    expect(withAlternative(e).message).toMatch(/reduce it \(e\.g\. sum\(\.\.\.\)\) or use \/jacobian or \/vjp$/);

    const small = new Engine({ ...DEFAULT_LIMITS, maxLiveElements: 400_000 });
    const cubic = small.prepare({ expr: 'sum(x^3)' }, [{ name: 'x', shape: [400] }]);
    const live = engineFailure(() => hessian(cubic, new Map([['x', t([400], new Array<number>(400).fill(1))]]), ['x']));
    expect(live.alternative).toBe('hvp');
    expect(live.message).not.toMatch(/\//);
    expect(withAlternative(live).message).toMatch(/ask for fewer wrt inputs, or use \/hvp$/);
  });
});
