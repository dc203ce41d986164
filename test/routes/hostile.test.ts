// Hostile or careless requests get a 4xx problem, never a crash or a 5xx, and refused work is
// refused before it allocates; the server answers normally afterwards.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

let app: App;
beforeAll(async () => {
  app = buildTestApp();
  await app.ready();
});
afterAll(() => app.close());

const post = (url: string, payload: string | object) =>
  app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });

const chain = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `n${i}`, op: 'sin', args: [i === 0 ? 'x' : `n${i - 1}`] }));

describe('hostile requests', () => {
  it.each([
    ['an array nested 10,000 deep', '/eval', `{"expr":"x","at":{"x":${'['.repeat(10_000)}1${']'.repeat(10_000)}}}`],
    ['eye of a huge size', '/eval', { expr: 'sum(eye(100000000))', at: {} }],
    ['an outer product of a hundred million elements', '/eval', { expr: 'sum(x[:, None] * x[None, :])', at: { x: Array(10_000).fill(1) } }],
    ['300 nested parentheses', '/eval', { expr: `${'('.repeat(300)}x${')'.repeat(300)}`, at: { x: 1 } }],
    ['a reshape with two unknowns', '/eval', { expr: 'reshape(x, [-1, -1])', at: { x: [1, 2] } }],
    ['a huge index', '/eval', { expr: 'x[99999999999]', at: { x: [1, 2] } }],
    ['a cycle through 5,000 nodes', '/eval', { graph: { nodes: [...chain(5000).slice(1), { id: 'n0', op: 'sin', args: ['n4999'] }], output: 'n4999' }, at: { x: 1 } }],
    ['an answer of 1.2 million numbers (about 25 MB of JSON)', '/eval', { expr: 'x[:, None] * x[None, :]', at: { x: Array(1100).fill(1) } }],
    ['a trace of a million numbers', '/trace', { expr: 'sum(exp(x[:, None] * x[None, :]))', at: { x: Array(600).fill(0.1) } }],
    ['a Jacobian too large to form', '/jacobian', { expr: 'x * 2', at: { x: Array(3000).fill(1) } }],
    ['an input name that is not an identifier', '/eval', { expr: '1', at: { 'a b': 1 } }],
    ['a graph op that is not a string', '/eval', { graph: { nodes: [{ id: 'a', op: 7 }], output: 'a' }, at: {} }],
  ])('%s: a 4xx problem', async (_what, url, payload) => {
    const res = await post(url, payload);
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });

  it('a valid 20,000-step graph is lowered and differentiated without overflowing the stack', async () => {
    const res = await post('/grad', { graph: { nodes: chain(20_000), output: 'n19999' }, at: { x: 0.5 } });
    expect(res.statusCode).toBe(200);
    const { value, gradient } = res.json();
    let v = 0.5;
    let d = 1;
    for (let i = 0; i < 20_000; i++) {
      d *= Math.cos(v);
      v = Math.sin(v);
    }
    expect(value).toBeCloseTo(v, 12);
    expect(gradient.x).toBeCloseTo(d, 12);
  });

  it('a __proto__ key is refused by the body parser (prototype poisoning), as a 400', async () => {
    const res = await post('/grad', '{"expr":"__proto__ * 2","at":{"__proto__":3}}');
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });

  it('odd but valid requests found by fuzzing are answered (regressions)', async () => {
    // A constant program: its trace has the output row.
    const constant = await post('/trace', { expr: 'exp(exp(0.5))', at: { x: [0, 0] }, mode: 'both' });
    expect(constant.statusCode).toBe(200);
    expect(constant.json().output).toBe('v1');
    // A NaN constant folded from log(-1) shows as "NaN" among a step's arguments.
    const nan = await post('/analyze', { expr: 'log(-1) + x', at: { x: [0, 0] } });
    expect(nan.statusCode).toBe(200);
    expect(nan.json().steps.find((s: { op: string }) => s.op === 'add').args).toContain('NaN');
    // An infinite exact gradient: the probe's cosine is "NaN", not a broken answer.
    const probe = await post('/probe', { target: { expr: '2 / x[0]' }, at: [-1.2e-308, 0], method: 'forward' });
    expect(probe.statusCode).toBe(200);
    expect(probe.json().cosine).toBe('NaN');
  });

  it('the server still answers normally afterwards', async () => {
    expect((await post('/grad', { expr: 'x^2', at: { x: 3 } })).json()).toEqual({ value: 9, gradient: { x: 6 } });
  });
});
