// POST /trace and POST /analyze (README "Seeing the computation"): the lecture's tables and cases, forward and reverse
// tables that agree, shapes of broadcasting and indexing intermediates, and the mode rule.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

type Json = Record<string, any>;

let app: App;
beforeAll(async () => {
  app = buildTestApp();
  await app.ready();
});
afterAll(() => app.close());

async function post(url: string, payload: unknown): Promise<{ status: number; body: Json; type: string }> {
  const res = await app.inject({ method: 'POST', url, payload: payload as object });
  return { status: res.statusCode, body: res.json() as Json, type: String(res.headers['content-type']) };
}

/** Numbers (or nested arrays) within rtol. */
function close(got: unknown, want: unknown, rtol = 1e-9, path = ''): void {
  if (Array.isArray(want)) {
    expect(Array.isArray(got), path).toBe(true);
    expect((got as unknown[]).length, path).toBe(want.length);
    want.forEach((w, i) => close((got as unknown[])[i], w, rtol, `${path}[${i}]`));
  } else if (typeof want === 'number') {
    expect(typeof got, path).toBe('number');
    expect(Math.abs((got as number) - want), `${path}: ${String(got)} vs ${want}`).toBeLessThanOrEqual(1e-12 + rtol * Math.abs(want));
  } else {
    expect(got, path).toEqual(want);
  }
}

function flat(v: unknown): number[] {
  return Array.isArray(v) ? v.flatMap(flat) : [v as number];
}

function dot(a: unknown, b: unknown): number {
  const x = flat(a);
  const y = flat(b);
  expect(x.length).toBe(y.length);
  return x.reduce((s, xi, i) => s + xi * y[i]!, 0);
}

/** A nested array of `shape` with entries from `next`. */
function tensor(shape: number[], next: () => number): unknown {
  if (shape.length === 0) return next();
  return Array.from({ length: shape[0]! }, () => tensor(shape.slice(1), next));
}

const LECTURE_F = 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))';
const LECTURE_STEPS = 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x4 + x5';
const QUESTION_2 =
  'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\nK1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\ny.T @ inv(K1 + K2) @ y';

describe("the lecture's /trace and /analyze cases (test/fixtures/lecture/cases.json, the course's worked cases)", () => {
  const cases = (
    JSON.parse(readFileSync(new URL('../fixtures/lecture/cases.json', import.meta.url), 'utf8')) as {
      cases: { name: string; endpoint: string; request: unknown; expect: Json }[];
    }
  ).cases.filter((c) => c.endpoint === '/trace' || c.endpoint === '/analyze');

  it('include a trace and an analysis', () => {
    expect(cases.map((c) => c.endpoint).sort()).toEqual(expect.arrayContaining(['/analyze', '/trace']));
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await post(c.endpoint, c.request);
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    const steps = new Map<string, Json>((r.body.steps as Json[]).map((s) => [s.id as string, s]));
    for (const [key, want] of Object.entries(c.expect)) {
      if (key === 'steps') {
        for (const { id, ...fields } of want as Json[]) {
          expect(steps.has(id), `step ${id}`).toBe(true);
          for (const [field, value] of Object.entries(fields)) close(steps.get(id)![field], value, 1e-9, `${id}.${field}`);
        }
      } else if (key === 'shapes') {
        for (const [id, shape] of Object.entries(want as Json)) expect(steps.get(id)?.shape, id).toEqual(shape);
      } else {
        close(r.body[key], want, 1e-9, key);
      }
    }
  });
});

describe('POST /trace', () => {
  it("gives the lecture's section 5.3 tables: values, tangents and adjoints of every step, inputs included", async () => {
    const r = await post('/trace', { expr: LECTURE_STEPS, at: { x: 0.7 }, mode: 'both' });
    expect(r.status).toBe(200);
    const { steps, output, seeds } = r.body;
    expect(steps.map((s: Json) => s.id)).toEqual(['x', 'x1', 'x2', 'x3', 'x4', 'x5', output]);
    expect(steps.map((s: Json) => s.op)).toEqual(['input', 'pow', 'exp', 'add', 'sqrt', 'cos', 'add']);
    expect(steps[1].args).toEqual(['x', 2]);
    expect(steps[3].position).toEqual({ line: 1, column: 30 });
    const x = 0.7;
    const x1 = x * x;
    const x3 = x1 + Math.exp(x1);
    const dfdx3 = 1 / (2 * Math.sqrt(x3)) - Math.sin(x3);
    const byId = new Map<string, Json>(steps.map((s: Json) => [s.id, s]));
    close(byId.get('x3')!.value, x3);
    close(byId.get('x3')!.adjoint, dfdx3);
    close(byId.get('x2')!.adjoint, dfdx3);
    close(byId.get('x1')!.adjoint, dfdx3 * (1 + Math.exp(x1)));
    close(byId.get('x')!.adjoint, -1.874001704964713);
    // Forward mode, seeded with 1 on x by default: the output's tangent is the same derivative.
    close(byId.get(output)!.tangent, -1.874001704964713);
    expect(seeds).toEqual({ tangents: { x: 1 }, cotangent: 1 });
  });

  it('defaults: forward seeds ones on the first wrt input and zeros elsewhere; reverse seeds ones', async () => {
    const forward = await post('/trace', { expr: 'a * b', at: { a: [1, 2], b: [3, 4] }, mode: 'forward' });
    expect(forward.body.seeds).toEqual({ tangents: { a: [1, 1], b: [0, 0] } });
    expect(forward.body.steps.at(-1).tangent).toEqual([3, 4]);
    expect(forward.body.steps.at(-1).adjoint).toBeUndefined();
    const byWrt = await post('/trace', { expr: 'a * b', at: { a: [1, 2], b: [3, 4] }, wrt: ['b'], mode: 'forward' });
    expect(byWrt.body.steps.at(-1).tangent).toEqual([1, 2]);
    const reverse = await post('/trace', { expr: 'a * b', at: { a: [1, 2], b: [3, 4] }, mode: 'reverse' });
    expect(reverse.body.seeds).toEqual({ cotangent: [1, 1] });
    expect(reverse.body.steps[0]).toMatchObject({ id: 'a', adjoint: [3, 4] });
    expect(reverse.body.steps.at(-1).tangent).toBeUndefined();
    const both = await post('/trace', { expr: 'a * b', at: { a: 1, b: 2 } });
    expect(both.status).toBe(200);
    expect(both.body.steps.at(-1)).toMatchObject({ tangent: 2, adjoint: 1 });
  });

  it('says what is wrong with a request', async () => {
    expect((await post('/trace', { expr: 'x +', at: { x: 1 } })).body).toMatchObject({ code: 'parse_error', position: { line: 1 } });
    expect((await post('/trace', { expr: 'x' })).body).toMatchObject({ code: 'validation_error' });
    expect((await post('/trace', { expr: 'x', at: { x: 1 }, mode: 'sideways' })).body).toMatchObject({ code: 'validation_error' });
    expect((await post('/trace', { expr: 'x', at: { x: 1 }, tangents: { z: 1 } })).body).toMatchObject({ code: 'unknown_input' });
    expect((await post('/trace', { expr: 'x', at: { x: [1, 2] }, cotangent: [1, 2, 3] })).body).toMatchObject({ code: 'shape_mismatch' });
  });

  it('refuses a trace past MAX_FLOPS before computing it', async () => {
    const small = buildTestApp({ MAX_FLOPS: 1e4 });
    await small.ready();
    try {
      const res = await small.inject({ method: 'POST', url: '/trace', payload: { expr: 'sum(x @ x)', at: { x: tensor([30, 30], () => 1) } } });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'limit_exceeded' });
    } finally {
      await small.close();
    }
  });

  // ⟨cotangent, J·tangent⟩ = Σ over inputs ⟨adjoint, tangent⟩: the two tables are the same derivative.
  const functions: { name: string; expr: string; shapes: Record<string, number[]> }[] = [
    { name: "the lecture's f", expr: LECTURE_F, shapes: { x: [] } },
    { name: 'a tiny network (section 5.1)', expr: 'x1 = W0 * x; x2 = tanh(x1); x3 = W1 * x2; (x3 - y)^2', shapes: { x: [], W0: [], W1: [], y: [] } },
    { name: 'question 2 (indexing, broadcasting, inv, matmul)', expr: QUESTION_2, shapes: { X: [4, 2], l: [2], y: [4] } },
    { name: 'a layer with softmax (vector output)', expr: 'z = W @ x + b; softmax(z) * log1p(exp(z))', shapes: { W: [3, 2], x: [2], b: [3] } },
    { name: 'broadcasting and reductions', expr: 'a = x[:, None] * y[None, :]; sum(a * a, axis=0) + mean(x) * y', shapes: { x: [3], y: [4] } },
    { name: 'slices, transpose and det', expr: 'B = A[1:, ::2].T @ A[:2, 1:]; det(B + 3 * eye(2)) * A', shapes: { A: [3, 3] } },
  ];

  it.each(functions.map((f) => [f.name, f] as const))('forward and reverse tables agree: %s', async (_name, f) => {
    const random = new Random(7);
    const next = (): number => Math.round(random.normal() * 1000) / 1000;
    const positive = (): number => 0.5 + random.uniform();
    const at = Object.fromEntries(Object.entries(f.shapes).map(([name, shape]) => [name, tensor(shape, positive)]));
    const tangents = Object.fromEntries(Object.entries(f.shapes).map(([name, shape]) => [name, tensor(shape, next)]));
    const shape = (await post('/eval', { expr: f.expr, at })).body.shape as number[];
    const cotangent = tensor(shape, next);
    const r = await post('/trace', { expr: f.expr, at, mode: 'both', tangents, cotangent });
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    const steps = new Map<string, Json>(r.body.steps.map((s: Json) => [s.id, s]));
    const out = steps.get(r.body.output)!;
    expect(out.adjoint).toEqual(cotangent);
    const forward = dot(cotangent, out.tangent);
    const reverse = Object.keys(f.shapes).reduce((s, name) => s + dot(steps.get(name)!.adjoint, tangents[name]), 0);
    expect(Math.abs(forward - reverse)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(forward)));
    // And every tangent and adjoint has its step's shape.
    for (const step of steps.values()) {
      expect(flat(step.tangent).length).toBe(step.shape.reduce((a: number, b: number) => a * b, 1));
      expect(flat(step.adjoint).length).toBe(flat(step.value).length);
    }
  });
});

describe('POST /analyze', () => {
  it("gives question 2a's shapes from shapes alone, and the same from a point", async () => {
    const fromShapes = await post('/analyze', { expr: QUESTION_2, shapes: { X: [5, 2], l: [2], y: [5] } });
    expect(fromShapes.status).toBe(200);
    const shapes = Object.fromEntries(fromShapes.body.steps.map((s: Json) => [s.id, s.shape]));
    expect(shapes).toMatchObject({ X: [5, 2], l: [2], y: [5], D1: [5, 5], D2: [5, 5], K1: [5, 5], K2: [5, 5] });
    expect(fromShapes.body.outputShape).toEqual([]);
    const at = { X: tensor([5, 2], () => 1), l: [1, 2], y: [1, 2, 3, 4, 5] };
    const fromPoint = await post('/analyze', { expr: QUESTION_2, at });
    expect(fromPoint.body).toEqual(fromShapes.body);
  });

  it('gives the shapes of broadcasting and indexing intermediates', async () => {
    const expr = [
      'a = x[:, None]', // [3, 1]
      'b = y[None, :]', // [1, 4]
      'c = a * b', // [3, 4]
      'd = M[1:, ::2]', // [2, 2] of a [3, 4]
      'e = M[-1]', // [4]
      'f = M[:, None, 1:3]', // [3, 1, 2]
      'g = c + e', // [3, 4]
      'h = sum(g, axis=0)', // [4]
      'k = sum(f, axis=-1, keepdims=True)', // [3, 1, 1]
      'n = d @ d.T', // [2, 2]
      'sum(h) + sum(k) + sum(n)',
    ].join('\n');
    const r = await post('/analyze', { expr, shapes: { x: [3], y: [4], M: [3, 4] } });
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    const shapes = Object.fromEntries(r.body.steps.map((s: Json) => [s.id, s.shape]));
    expect(shapes).toMatchObject({ a: [3, 1], b: [1, 4], c: [3, 4], d: [2, 2], e: [4], f: [3, 1, 2], g: [3, 4], h: [4], k: [3, 1, 1], n: [2, 2] });
    const trace = await post('/trace', { expr, at: { x: [1, 2, 3], y: [1, 2, 3, 4], M: tensor([3, 4], () => 1) }, mode: 'reverse' });
    expect(Object.fromEntries(trace.body.steps.map((s: Json) => [s.id, s.shape]))).toMatchObject(shapes);
  });

  it('weighs every step, and the totals are the sums of the steps', async () => {
    const r = await post('/analyze', { expr: LECTURE_STEPS, shapes: { x: [] } });
    const { steps, cost } = r.body;
    const sum = (pick: (s: Json) => number): number => steps.reduce((a: number, s: Json) => a + pick(s), 0);
    expect(cost.eval.flops).toBe(sum((s) => s.flops));
    expect(cost.eval.bytes).toBe(sum((s) => s.bytes));
    expect(cost.jvp.flops).toBe(sum((s) => s.jvp.flops));
    expect(cost.vjp.flops).toBe(sum((s) => s.vjp.flops));
    const byId = new Map<string, Json>(steps.map((s: Json) => [s.id, s]));
    // x1 = x^2 reads one element and writes one (the constant 2 is read too): 8 bytes each.
    expect(byId.get('x1')).toMatchObject({ op: 'pow', args: ['x', 2], flops: 1, bytes: 24 });
    expect(byId.get('x')).toMatchObject({ flops: 0, bytes: 0 });
    for (const id of ['x1', 'x2', 'x3', 'x4', 'x5']) {
      expect(byId.get(id)!.jvp.flops, id).toBeGreaterThan(0);
    }
    // Reverse mode keeps what its rules read: x (for 2x), exp(x1) (its own derivative), x3 (for sin x3) and sqrt(x3).
    expect(steps.filter((s: Json) => s.kept).map((s: Json) => s.id)).toEqual(['x', 'x2', 'x3', 'x4']);
    expect(cost.reverseMemory).toBe(4 * 8);
    expect(cost.jacobian).toEqual({
      n: 1,
      m: 1,
      forward: { passes: 1, flops: cost.eval.flops + cost.jvp.flops },
      reverse: { passes: 1, flops: cost.eval.flops + cost.vjp.flops },
    });
  });

  it('recommends reverse mode for many inputs and one output, citing the numbers', async () => {
    const r = await post('/analyze', { expr: QUESTION_2, shapes: { X: [4, 2], l: [2], y: [4] } });
    const { cost, recommendation } = r.body;
    expect(cost.jacobian).toMatchObject({ n: 14, m: 1, forward: { passes: 14 }, reverse: { passes: 1 } });
    expect(cost.jacobian.forward.flops).toBe(cost.eval.flops + 14 * cost.jvp.flops);
    expect(recommendation.mode).toBe('reverse');
    expect(recommendation.reason).toContain('n = 14');
    expect(recommendation.reason).toContain('m = 1 pass');
    expect(recommendation.reason).toContain(`${cost.reverseMemory.toLocaleString('en-US')} bytes`);
    // wrt narrows n: only l (2 coordinates) against 1 output is still reverse.
    const onlyL = await post('/analyze', { expr: QUESTION_2, shapes: { X: [4, 2], l: [2], y: [4] }, wrt: ['l'] });
    expect(onlyL.body.cost.jacobian).toMatchObject({ n: 2, m: 1 });
    expect(onlyL.body.inputs).toEqual([
      { name: 'X', shape: [4, 2], wrt: false },
      { name: 'l', shape: [2], wrt: true },
      { name: 'y', shape: [4], wrt: false },
    ]);
  });

  it('recommends forward mode for few inputs and many outputs, and reverse at a tie', async () => {
    const wide = await post('/analyze', { expr: 'exp(t * w) * sin(w)', shapes: { t: [], w: [50] }, wrt: ['t'] });
    expect(wide.body.cost.jacobian).toMatchObject({ n: 1, m: 50, forward: { passes: 1 }, reverse: { passes: 50 } });
    expect(wide.body.recommendation.mode).toBe('forward');
    expect(wide.body.recommendation.reason).toMatch(/n = 1 pass\b/);
    expect(wide.body.recommendation.reason).toContain('m = 50 passes');
    expect(wide.body.cost.jacobian.forward.flops).toBeLessThan(wide.body.cost.jacobian.reverse.flops);
    const square = await post('/analyze', { expr: 'A @ x', shapes: { A: [3, 3], x: [3] }, wrt: ['x'] });
    expect(square.body.cost.jacobian).toMatchObject({ n: 3, m: 3 });
    expect(square.body.recommendation.mode).toBe('reverse');
  });

  it('says what is wrong with a request', async () => {
    expect((await post('/analyze', { expr: 'x' })).body).toMatchObject({ code: 'validation_error' });
    expect((await post('/analyze', { expr: 'x', at: { x: 1 }, shapes: { x: [] } })).body).toMatchObject({ code: 'validation_error' });
    expect((await post('/analyze', { expr: 'x', shapes: { x: [-1] } })).body).toMatchObject({ code: 'validation_error' });
    expect((await post('/analyze', { expr: 'x', shapes: { x: [2] }, wrt: ['y'] })).body).toMatchObject({ code: 'unknown_input', status: 422 });
    expect((await post('/analyze', { expr: 'x @ y', shapes: { x: [2, 3], y: [2, 3] } })).body).toMatchObject({ code: 'shape_mismatch', position: { line: 1 } });
    expect((await post('/analyze', { expr: 'x', shapes: { x: [100000, 100000] } })).body).toMatchObject({ code: 'limit_exceeded' });
    expect((await post('/analyze', { expr: 'x', points: [{ x: 1 }] })).body).toMatchObject({ code: 'validation_error' });
  });
});
