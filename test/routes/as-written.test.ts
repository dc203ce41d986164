// Traces show the function as written (issue 10): a matrix-vector product is one `matmul` step,
// with NumPy's rules for 1-D operands, not a matmul between reshapes the user never wrote (and a
// solve against a vector one `solve` or `trisolve` step). The lecture's picture of tanh(W @ x)
// is W, x → matmul(W, x) → tanh, in /trace and in /graph.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

type Step = { id: string; op: string; args: (string | number)[]; shape: number[]; value: unknown; tangent?: unknown; adjoint?: unknown };

let app: App;
beforeAll(async () => {
  app = buildTestApp();
  await app.ready();
});
afterAll(() => app.close());

async function trace(expr: string, at: Record<string, unknown>): Promise<{ steps: Step[]; output: string }> {
  const res = await app.inject({ method: 'POST', url: '/trace', payload: { expr, at, mode: 'both' } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { steps: Step[]; output: string };
}

const W = [[1, 2], [3, 4]];
const x = [0.1, 0.2];

describe('traces show the function as written', () => {
  it("tanh(W @ x) is W, x, matmul(W, x), tanh: the lecture's picture", async () => {
    const { steps } = await trace('tanh(W @ x)', { W, x });
    expect(steps.map((s) => [s.op, s.args, s.shape])).toEqual([
      ['input', [], [2, 2]],
      ['input', [], [2]],
      ['matmul', ['W', 'x'], [2]],
      ['tanh', [steps[2]!.id], [2]],
    ]);
    expect(steps[2]!.value).toEqual([1 * 0.1 + 2 * 0.2, 3 * 0.1 + 4 * 0.2]);
    // Reverse mode: the adjoint of x is Wᵀ ȳ with ȳ = 1 - tanh², as one step's rule gives it.
    const g = (steps[3]!.value as number[]).map((t) => 1 - t * t);
    const xBar = steps[1]!.adjoint as number[];
    [0, 1].forEach((j) => expect(xBar[j]).toBeCloseTo(W[0]![j]! * g[0]! + W[1]![j]! * g[1]!, 14));
  });

  it.each([
    ['x @ W', [2]],
    ['x @ x', []],
    ['dot(x, x)', []],
    ['matmul(W, x)', [2]],
    ['W @ W', [2, 2]],
  ])('%s is one matmul step of NumPy shape %j', async (expr, shape) => {
    const { steps, output } = await trace(expr, { W, x });
    expect(steps.filter((s) => s.op !== 'input').map((s) => s.op)).toEqual(['matmul']);
    expect(steps.find((s) => s.id === output)!.shape).toEqual(shape);
  });

  it.each([
    ['solve(A, x)', 'solve'],
    ['solve_triangular(A, x)', 'trisolve'],
    ['solve_triangular(A, x, lower=False)', 'trisolve'],
  ])('%s against a vector is one %s step, its answer a vector', async (expr, op) => {
    const { steps, output } = await trace(expr, { A: [[2, 0], [1, 4]], x: [2, 6] });
    expect(steps.filter((s) => s.op !== 'input').map((s) => [s.op, s.args])).toEqual([[op, ['A', 'x']]]);
    expect(steps.find((s) => s.id === output)!.shape).toEqual([2]);
  });

  it('batched matrices times a vector keep their batch dimension, in one step', async () => {
    const { steps, output } = await trace('B @ x', { B: [W, W], x });
    expect(steps.filter((s) => s.op !== 'input').map((s) => s.op)).toEqual(['matmul']);
    expect(steps.find((s) => s.id === output)!.value).toEqual([[0.5, 1.1], [0.5, 1.1]]);
  });

  it('/graph draws matmul(W, x) then tanh, with no reshape', async () => {
    const res = await app.inject({ method: 'POST', url: '/graph', payload: { expr: 'tanh(W @ x)', shapes: { W: [2, 2], x: [2] }, format: 'dot' } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('matmul(W, x)');
    expect(res.body).toContain('tanh(v1)');
    expect(res.body).not.toContain('reshape');
  });

  it('a shape error names the shapes as written', async () => {
    let res = await app.inject({ method: 'POST', url: '/eval', payload: { expr: 'W @ y', at: { W, y: [1, 2, 3] } } });
    expect(res.statusCode).toBe(422);
    expect(res.json().detail).toContain('matmul: shapes [2, 2] and [3] do not fit: 2 columns on the left, 3 rows on the right (line 1, column 1)');
    res = await app.inject({ method: 'POST', url: '/eval', payload: { expr: 'solve(W, y)', at: { W, y: [1, 2, 3] } } });
    expect(res.json().detail).toBe('solve: A of shape [2, 2] and b of shape [3] do not fit (line 1, column 1)');
  });
});
