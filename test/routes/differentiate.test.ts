// The differentiation endpoints over HTTP (README "Differentiation endpoints", "Errors"): each endpoint against closed forms,
// `points` batches, non-finite numbers in and out, the error codes, and the lecture's cases.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

let app: App;
beforeAll(async () => {
  app = buildTestApp();
  await app.ready();
});
afterAll(() => app.close());

async function post(url: string, body: unknown) {
  const res = await app.inject({ method: 'POST', url, payload: body as object });
  return { status: res.statusCode, type: String(res.headers['content-type']), body: res.json() as Record<string, any> };
}

function close(got: unknown, want: unknown, tol = 1e-12): void {
  if (Array.isArray(want)) {
    expect(Array.isArray(got)).toBe(true);
    (want as unknown[]).forEach((w, i) => close((got as unknown[])[i], w, tol));
  } else if (typeof want === 'number') {
    expect(Math.abs((got as number) - want)).toBeLessThanOrEqual(tol * (1 + Math.abs(want)));
  } else {
    expect(got).toEqual(want);
  }
}

describe('each endpoint against closed forms', () => {
  const at = { x: [1, 2, 3], A: [[1, 2, 3], [0, 1, -1]] };

  it('/eval gives the value and its shape', async () => {
    const r = await post('/eval', { expr: 'A @ x^2', at });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ value: [36, -5], shape: [2] });
  });

  it('/grad: ∇ Σ x³ = 3x²', async () => {
    const r = await post('/grad', { expr: 'sum(x^3)', at: { x: [1, 2, 3] } });
    expect(r.body).toEqual({ value: 36, gradient: { x: [3, 12, 27] } });
  });

  it('/jvp: J(Ax)·t = A t', async () => {
    const r = await post('/jvp', { expr: 'A @ x', at, tangents: { x: [1, 0, -1] } });
    expect(r.body).toEqual({ value: [14, -1], tangent: [-2, 1] });
  });

  it('/vjp: vᵀ J(Ax) = Aᵀ v, and vᵀ x for A', async () => {
    const r = await post('/vjp', { expr: 'A @ x', at, cotangent: [1, 2] });
    expect(r.body).toEqual({ value: [14, -1], vjp: { x: [1, 4, 1], A: [[1, 2, 3], [2, 4, 6]] } });
  });

  it('/jacobian: J of A x is A by either mode, with the mode and passes', async () => {
    const forward = await post('/jacobian', { expr: 'A @ x', at, wrt: ['x'], mode: 'forward' });
    const reverse = await post('/jacobian', { expr: 'A @ x', at, wrt: ['x'], mode: 'reverse' });
    const auto = await post('/jacobian', { expr: 'A @ x', at, wrt: ['x'] });
    expect(forward.body.jacobian.x).toEqual(at.A);
    expect(reverse.body.jacobian.x).toEqual(at.A);
    expect([forward.body.mode, forward.body.passes]).toEqual(['forward', 3]);
    expect([reverse.body.mode, reverse.body.passes]).toEqual(['reverse', 2]);
    // n = 3 inputs ≥ m = 2 outputs: reverse
    expect(auto.body.mode).toBe('reverse');
    const wide = await post('/jacobian', { expr: 'x * y', at: { x: 2, y: [1, 2, 3] }, wrt: ['x'] });
    expect(wide.body).toMatchObject({ mode: 'forward', passes: 1, jacobian: { x: [1, 2, 3] } });
  });

  it('/jacobian has shape shape(output) ++ shape(input)', async () => {
    const r = await post('/jacobian', { expr: 'A * 2', at: { A: [[1, 2], [3, 4], [5, 6]] } });
    const J = r.body.jacobian.A;
    expect([J.length, J[0].length, J[0][0].length, J[0][0][0].length]).toEqual([3, 2, 3, 2]);
    expect(J[2][1][2][1]).toBe(2);
    expect(J[2][1][1][1]).toBe(0);
  });

  it('/hessian: of xᵀAx it is A + Aᵀ; blocks between inputs', async () => {
    const r = await post('/hessian', { expr: 'x @ M @ x + x[0] * y^2', at: { x: [1, 2], M: [[1, 2], [3, 4]], y: 3 }, wrt: ['x', 'y'] });
    expect(r.status).toBe(200);
    expect(r.body.hessian.x.x).toEqual([[2, 5], [5, 8]]);
    expect(r.body.hessian.x.y).toEqual([6, 0]);
    expect(r.body.hessian.y.x).toEqual([6, 0]);
    expect(r.body.hessian.y.y).toBe(2);
    expect(r.body.gradient).toEqual({ x: [1 * 2 + 5 * 2 + 9, 5 + 8 * 2], y: 6 });
  });

  it('/hvp equals the Hessian times the vector', async () => {
    const r = await post('/hvp', { expr: 'x @ M @ x', at: { x: [1, 2], M: [[1, 2], [3, 4]] }, wrt: ['x'], vector: { x: [1, -1] } });
    expect(r.body.hvp).toEqual({ x: [2 - 5, 5 - 8] });
  });

  it('/check agrees with finite differences, per coordinate and along random directions', async () => {
    const expr = 'sum(tanh(A @ x) * log(1 + x[0:2]^2))';
    const full = await post('/check', { expr, at });
    expect(full.body).toMatchObject({ ok: true, method: 'central', evaluations: 2 * 9, rtol: 1e-3, atol: 1e-5 });
    expect(full.body.maxAbsError).toBeLessThan(1e-8);
    close(full.body.numeric.x, full.body.gradient.x, 1e-7);
    const directions = await post('/check', { expr, at, directions: 4, seed: 7 });
    expect(directions.body).toMatchObject({ ok: true, evaluations: 8 });
    expect(directions.body.directions).toHaveLength(4);
    const again = await post('/check', { expr, at, directions: 4, seed: 7 });
    expect(again.body).toEqual(directions.body);
  });

  it('/check reports an infinite relative error as a JSON-safe string', async () => {
    // At a kink next to 0 the central difference is exactly 0 while AD says 1.
    const r = await post('/check', { expr: 'sum(abs(x))', at: { x: [5e-324, 1] } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: false, maxAbsError: 1, maxRelError: 'Infinity' });
  });

  it('solve_triangular: ‖L⁻¹y‖² with L = cholesky(A) is yᵀA⁻¹y, and the gradient agrees with finite differences', async () => {
    const at = { A: [[4, 2, 0.5], [2, 3, 1], [0.5, 1, 5]], y: [1, 2, -1] };
    const viaCholesky = await post('/grad', { expr: 'L = cholesky(A); sum(solve_triangular(L, y)^2)', at });
    const viaSolve = await post('/grad', { expr: 'y @ solve(A, y)', at });
    close(viaCholesky.body.value, viaSolve.body.value, 1e-12);
    close(viaCholesky.body.gradient.y, viaSolve.body.gradient.y, 1e-12);
    // cholesky reads (A + Aᵀ)/2 and solve reads all of A: for symmetric A their gradients agree once symmetrised.
    const sym = (g: number[][]) => g.map((row, i) => row.map((v, j) => (v + g[j]![i]!) / 2));
    close(sym(viaCholesky.body.gradient.A), sym(viaSolve.body.gradient.A), 1e-12);
    const check = await post('/check', { expr: 'sum(solve_triangular(A, B, lower=False)^2)', at: { A: [[4, 2], [1, 3]], B: [[1, 2], [3, 4]] } });
    expect(check.body.ok).toBe(true);
    expect(check.body.gradient.A[1][0]).toBe(0);
  });

  it('/check catches a wrong gradient: a function whose derivative is discontinuous at the point', async () => {
    const r = await post('/check', { expr: 'abs(x)', at: { x: 0 } });
    // AD uses abs'(0) = 0; the central difference sees the kink symmetrically and agrees.
    expect(r.body.ok).toBe(true);
    const kink = await post('/check', { expr: 'relu(x)', at: { x: 0 } });
    expect(kink.body.ok).toBe(false);
  });
});

describe('at zeros and ties', () => {
  it('prod differentiates exactly where elements are 0', async () => {
    expect((await post('/grad', { expr: 'prod(x)', at: { x: [0, 2, 3] } })).body).toEqual({ value: 0, gradient: { x: [6, 0, 0] } });
    expect((await post('/hessian', { expr: 'prod(x)', at: { x: [0, 0, 3] } })).body.hessian.x.x).toEqual([[0, 3, 0], [3, 0, 0], [0, 0, 0]]);
  });

  it('max, min, maximum and minimum share the gradient equally at a tie', async () => {
    expect((await post('/grad', { expr: 'max(x)', at: { x: [1, 3, 3] } })).body.gradient.x).toEqual([0, 0.5, 0.5]);
    expect((await post('/grad', { expr: 'min(x, axis=0)[1]', at: { x: [[2, 5], [2, 5], [3, 5]] } })).body.gradient.x).toEqual([[0, 1 / 3], [0, 1 / 3], [0, 1 / 3]]);
    expect((await post('/grad', { expr: 'sum(maximum(x, 2))', at: { x: [1, 2, 3] } })).body.gradient.x).toEqual([0, 0.5, 1]);
    expect((await post('/grad', { expr: 'minimum(x, y)', at: { x: 2, y: 2 } })).body.gradient).toEqual({ x: 0.5, y: 0.5 });
  });

  it('x^0 has derivative 0, also at x = 0', async () => {
    expect((await post('/grad', { expr: 'x^0 + x^y', at: { x: 0, y: 0 } })).body).toEqual({ value: 2, gradient: { x: 0, y: 0 } });
  });
});

describe('points, non-finite numbers and warnings', () => {
  it('prepares once and answers every point in order', async () => {
    const r = await post('/grad', { expr: 'x^2 * y', points: [{ x: 1, y: 2 }, { x: 3, y: 4 }] });
    expect(r.body).toEqual({ results: [{ value: 2, gradient: { x: 4, y: 1 } }, { value: 36, gradient: { x: 24, y: 9 } }] });
  });

  it('takes and gives NaN and infinities as strings, with a warning saying where they arose', async () => {
    const r = await post('/grad', { expr: 'a = x^2\nb = log(a - 5)\nb + y', at: { x: 2, y: 'Infinity' } });
    expect(r.status).toBe(200);
    expect(r.body.value).toBe('NaN');
    // log(x² - 5) is NaN at x = 2, but its derivative 2x / (x² - 5) = -4 is finite.
    expect(r.body.gradient).toEqual({ x: -4, y: 1 });
    expect(r.body.warnings[0]).toMatchObject({ code: 'non_finite_input', node: 'y' });
    expect(r.body.warnings[1]).toMatchObject({ code: 'non_finite', node: 'b', position: { line: 2, column: 5 } });
    expect(r.body.warnings[1].message).toContain('log');
  });

  it('says when a derivative, not the value, is infinite: sqrt at 0', async () => {
    const r = await post('/grad', { expr: 'sqrt(x)', at: { x: 0 } });
    expect(r.body).toMatchObject({ value: 0, gradient: { x: 'Infinity' } });
    expect(r.body.warnings[0].message).toMatch(/reverse-mode .* rule of sqrt/);
  });
});

describe('errors (README "Errors")', () => {
  it.each([
    ['a parse error with its position', '/grad', { expr: 'x +\n* 2', at: { x: 1 } }, 400, 'parse_error'],
    ['an unknown function', '/eval', { expr: 'sine(x)', at: { x: 1 } }, 400, 'unknown_function'],
    ['an unknown name', '/eval', { expr: 'x + z', at: { x: 1 } }, 422, 'unknown_input'],
    ['a wrt that is not an input', '/grad', { expr: 'x', at: { x: 1 }, wrt: ['q'] }, 422, 'unknown_input'],
    ['a graph with a cycle', '/eval', { graph: { nodes: [{ id: 'a', op: 'exp', args: ['b'] }, { id: 'b', op: 'exp', args: ['a'] }], output: 'b' }, at: {} }, 422, 'invalid_graph'],
    ['shapes that do not fit', '/eval', { expr: 'x @ x', at: { x: [[1, 2, 3]] } }, 422, 'shape_mismatch'],
    ['a gradient of a vector', '/grad', { expr: 'x * 2', at: { x: [1, 2] } }, 422, 'not_scalar'],
    ['a ragged array', '/eval', { expr: 'x', at: { x: [[1, 2], [3]] } }, 400, 'validation_error'],
    ['a string that is not a number', '/eval', { expr: 'x', at: { x: 'one' } }, 400, 'validation_error'],
    ['both expr and graph', '/eval', { expr: 'x', graph: { nodes: [{ id: 'a', op: 'exp', args: ['x'] }], output: 'a' }, at: { x: 1 } }, 400, 'validation_error'],
    ['neither at nor points', '/eval', { expr: '1' }, 400, 'validation_error'],
    ['a body that does not fit the schema', '/jacobian', { expr: 'x', at: { x: 1 }, mode: 'sideways' }, 400, 'validation_error'],
    ['a cotangent of the wrong shape', '/vjp', { expr: 'x * 2', at: { x: [1, 2] }, cotangent: [1] }, 422, 'shape_mismatch'],
  ])('%s', async (_what, url, body, status, code) => {
    const r = await post(url, body);
    expect(r.status).toBe(status);
    expect(r.type).toContain('application/problem+json');
    expect(r.body.code).toBe(code);
    expect(r.body.detail.length).toBeGreaterThan(10);
  });

  it('a parse error carries line and column', async () => {
    const r = await post('/grad', { expr: 'y = x^2\nz = (y + 1', at: { x: 1 } });
    expect(r.body.position).toEqual({ line: 2, column: 5 });
  });

  it('a graph error names the node', async () => {
    const r = await post('/eval', { graph: { nodes: [{ id: 'n1', op: 'add', args: ['x'] }], output: 'n1' }, at: { x: 1 } });
    expect(r.body).toMatchObject({ code: 'invalid_graph', node: 'n1' });
  });

  it('refuses work past the limits before doing it', async () => {
    const small = buildTestApp({ MAX_FLOPS: 1e4, MAX_TENSOR_ELEMENTS: 1000, MAX_POINTS: 2, MAX_EXPR_LENGTH: 50 });
    await small.ready();
    try {
      const ask = async (body: object) => (await small.inject({ method: 'POST', url: '/eval', payload: body })).json();
      expect(await ask({ expr: 'sum(x @ x)', at: { x: Array.from({ length: 30 }, () => Array(30).fill(1)) } })).toMatchObject({ code: 'limit_exceeded', status: 422 });
      expect(await ask({ expr: 'x[:, None] * x', at: { x: Array(100).fill(1) } })).toMatchObject({ code: 'limit_exceeded' });
      expect(await ask({ expr: 'x', at: { x: Array(2000).fill(1) } })).toMatchObject({ code: 'limit_exceeded' });
      expect(await ask({ expr: 'x', points: [{ x: 1 }, { x: 2 }, { x: 3 }] })).toMatchObject({ code: 'limit_exceeded' });
      expect(await ask({ expr: 'x' + ' + x'.repeat(20), at: { x: 1 } })).toMatchObject({ code: 'limit_exceeded' });
    } finally {
      await small.close();
    }
  });
});

describe("the lecture's cases (test/fixtures/lecture/cases.json, the course's worked cases)", () => {
  const cases = (
    JSON.parse(readFileSync(new URL('../fixtures/lecture/cases.json', import.meta.url), 'utf8')) as {
      cases: { name: string; endpoint: string; request: unknown; expect: Record<string, unknown> }[];
    }
  ).cases.filter((c) => ['/eval', '/grad', '/jvp', '/vjp', '/jacobian', '/hessian', '/hvp', '/check'].includes(c.endpoint));

  it('include the gradient cases', () => expect(cases.length).toBeGreaterThanOrEqual(5));

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await post(c.endpoint, c.request);
    expect(r.status).toBe(200);
    for (const [key, want] of Object.entries(c.expect)) {
      if (key === 'gradient') for (const [name, g] of Object.entries(want as Record<string, unknown>)) close(r.body.gradient[name], g, 1e-9);
      else close(r.body[key], want, 1e-9);
    }
  });
});
