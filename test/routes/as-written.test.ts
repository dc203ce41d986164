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

  // A step that lowers to several primitives is one row named for what was written: its value,
  // tangent and adjoint are those of the step's result, checked here against closed forms.
  it('x[0] * x[1]: each index is one step (no slice-then-reshape), with the product rule\'s adjoints', async () => {
    const { steps } = await trace('x[0] * x[1]', { x: [2, 3] });
    expect(steps.map((s) => [s.op, s.args, s.shape])).toEqual([
      ['input', [], [2]],
      ['index', ['x'], []],
      ['index', ['x'], []],
      ['mul', [steps[1]!.id, steps[2]!.id], []],
    ]);
    expect(steps.map((s) => s.value)).toEqual([[2, 3], 2, 3, 6]);
    // d(x0 x1)/dx = [x1, x0]; the index rows' adjoints are the other factor.
    expect(steps[0]!.adjoint).toEqual([3, 2]);
    expect([steps[1]!.adjoint, steps[2]!.adjoint]).toEqual([3, 2]);
  });

  it.each([
    ['sum(outer(x, y))', 'outer', ['x', 'y'], [2, 3]],
    ['sum(stack([x[0], y[1]]))', 'stack', null, [2]],
    ['mean(y)', 'mean', ['y'], []],
  ])('%s shows %s as one step', async (expr, op, args, shape) => {
    const { steps } = await trace(expr, { x: [1, 2], y: [3, 4, 5] });
    const step = steps.find((s) => s.op === op)!;
    expect(step, JSON.stringify(steps.map((s) => s.op))).toBeDefined();
    if (args) expect(step.args).toEqual(args);
    expect(step.shape).toEqual(shape);
    expect(steps.map((s) => s.op)).not.toContain('reshape');
    expect(steps.map((s) => s.op)).not.toContain('slice');
  });

  it('outer(x, y) rows carry the closed-form adjoints: x̄ = Σy, ȳ = Σx', async () => {
    const { steps } = await trace('sum(outer(x, y))', { x: [1, 2], y: [3, 4, 5] });
    expect(steps.find((s) => s.id === 'x')!.adjoint).toEqual([12, 12]);
    expect(steps.find((s) => s.id === 'y')!.adjoint).toEqual([3, 3, 3]);
    expect(steps.find((s) => s.op === 'outer')!.value).toEqual([[3, 4, 5], [6, 8, 10]]);
  });

  it('/graph draws an index that drops a dimension as one step with its window', async () => {
    const res = await app.inject({ method: 'POST', url: '/graph', payload: { expr: 'x[1] * 2', shapes: { x: [3] }, format: 'dot' } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('index(x)');
    expect(res.body).toContain('[1:2]');
    expect(res.body).not.toContain('reshape');
  });

  it('a forward table with index steps is graded by replaying each step (right gets full marks, a wrong tangent is named)', async () => {
    const request = { expr: 'x[0] * x[1]', at: { x: [2, 3] }, tangents: { x: [1, 0] } };
    const res = await app.inject({ method: 'POST', url: '/trace', payload: { ...request, mode: 'forward' } });
    const rows = (res.json() as { steps: Step[] }).steps.map((s) => ({ id: s.id, value: s.value, tangent: s.tangent }));
    const wrong = rows.map((r, i) => (i === 1 ? { ...r, tangent: 0 } : r));
    const grade = await app.inject({
      method: 'POST',
      url: '/grade',
      payload: { reference: { expr: request.expr }, at: request.at, tangents: request.tangents, submissions: [{ id: 'right', answers: { forwardTrace: rows } }, { id: 'wrong', answers: { forwardTrace: wrong } }] },
    });
    expect(grade.statusCode, grade.body).toBe(200);
    const [right, bad] = grade.json().results as { score: number; max_score: number; tests: { name: string; status: string }[] }[];
    expect(right!.score).toBe(right!.max_score);
    expect(bad!.score).toBeLessThan(bad!.max_score);
    expect(bad!.tests.filter((t) => t.status === 'failed').map((t) => t.name).join(' ')).toContain(rows[1]!.id);
  });
});
