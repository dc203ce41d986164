// Whatever a client sends, the answer is a success or a 4xx problem: never a 5xx, never a crash.
// Random bodies, half-sensible requests (token-soup expressions, ragged values, odd options) and
// random JSON graphs, against every endpoint that takes a function.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

// Deterministic in CI; FUZZ_SEED=<n> (or FUZZ_SEED=random) explores other inputs.
const seed = process.env.FUZZ_SEED === 'random' ? Date.now() : Number(process.env.FUZZ_SEED ?? 20261126);
const runs = Number(process.env.FUZZ_RUNS ?? 1);

let app: App;
beforeAll(async () => {
  // FUZZ_WORKERS=1 sends every job through a worker thread (errors must cross it intact).
  const workers = Number(process.env.FUZZ_WORKERS ?? 0);
  app = buildTestApp({ RATE_LIMIT_MAX: 0, MAX_FLOPS: 1e7, MAX_TENSOR_ELEMENTS: 10_000, WORKERS: workers, INLINE_FLOPS: workers > 0 ? 0 : 2e6 });
  await app.ready();
});
afterAll(() => app.close());

const ENDPOINTS = ['/eval', '/grad', '/jvp', '/vjp', '/jacobian', '/hessian', '/hvp', '/check', '/trace', '/analyze', '/graph', '/grade'];

const TOKENS = [
  'x', 'y', 'X', 'pi', 'e', 'None', 'True', '1', '2.5', '1e3', '0', '-', '+', '*', '/', '^', '**', '@', '<', '==', '(', ')', '[', ']',
  ',', ':', ';', '\n', '=', '.T', 'sum', 'exp', 'log', 'sqrt', 'inv', 'det', 'cholesky', 'softmax', 'reshape', 'stack', 'concat',
  'where', 'max', 'norm', 'diag', 'eye', 'axis=', 'keepdims=', 'transpose', 'matmul', 'solve', 'squeeze', 'expand_dims', ' ',
];
const expr = fc.array(fc.constantFrom(...TOKENS), { maxLength: 24 }).map((t) => t.join(''));
const scalar = fc.oneof(fc.double(), fc.integer({ min: -5, max: 5 }), fc.constantFrom('NaN', 'Infinity', '-Infinity', 'nan', null, true));
const value = fc.oneof(
  scalar,
  fc.array(scalar, { maxLength: 4 }),
  fc.array(fc.array(scalar, { maxLength: 3 }), { maxLength: 3 }),
  fc.array(fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 2, maxLength: 2 }), { minLength: 2, maxLength: 2 }),
);
const at = fc.dictionary(fc.constantFrom('x', 'y', 'X', 'z', '_', '1a', ''), value, { maxKeys: 3 });
const graph = fc.record({
  nodes: fc.array(
    fc.record({
      id: fc.constantFrom('a', 'b', 'c', 'x', ''),
      op: fc.constantFrom('add', 'mul', 'exp', 'sum', 'matmul', 'const', 'index', 'reshape', 'nope', 'stack'),
      args: fc.array(fc.oneof(fc.constantFrom('a', 'b', 'c', 'x', 'y'), fc.integer({ min: -2, max: 2 })), { maxLength: 3 }),
      attrs: fc.option(fc.dictionary(fc.constantFrom('axis', 'keepdims', 'shape', 'value', 'index', 'n', 'bogus'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }), { nil: undefined }),
    }),
    { maxLength: 4 },
  ),
  output: fc.constantFrom('a', 'b', 'c', 'x'),
});
const request = fc.record(
  {
    expr,
    graph,
    at,
    points: fc.array(at, { maxLength: 2 }),
    wrt: fc.array(fc.constantFrom('x', 'y', 'q'), { maxLength: 2 }),
    tangents: at,
    cotangent: value,
    vector: at,
    mode: fc.constantFrom('auto', 'forward', 'reverse', 'both', 'sideways'),
    shapes: fc.dictionary(fc.constantFrom('x', 'y'), fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 3 }), { maxKeys: 2 }),
    format: fc.constantFrom('dot', 'svg', 'gradescope', 'png'),
    directions: fc.integer({ min: -1, max: 3 }),
    reference: fc.record({ expr }, { requiredKeys: [] }),
    submissions: fc.array(fc.record({ id: fc.string(), answers: fc.jsonValue({ maxDepth: 3 }) }), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

/** Well-formed expressions over x (a vector), X (a matrix) and y (a scalar), so requests reach evaluation. */
const { term } = fc.letrec<{ term: string }>((tie) => ({
  term: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('x', 'X', 'y', '2', '0.5', '-1', 'pi', '[1, 2]', '[[1, 0], [0, 1]]', 'eye(2)'),
    fc.tuple(fc.constantFrom('exp', 'log', 'sqrt', 'tanh', 'abs', 'relu', 'sum', 'max', 'norm', 'softmax', 'inv', 'det', 'logdet', 'cholesky', 'trace', 'diag', 'transpose', 'squeeze'), tie('term')).map(([f, a]) => `${f}(${a})`),
    fc.tuple(tie('term'), fc.constantFrom('+', '-', '*', '/', '^', '@', '<', '=='), tie('term')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(fc.constantFrom('sum', 'mean', 'max', 'logsumexp', 'prod'), tie('term'), fc.constantFrom('0', '-1', '[0, 1]', '1')).map(([f, a, ax]) => `${f}(${a}, axis=${ax})`),
    fc.tuple(tie('term'), fc.constantFrom('[0]', '[-1]', '[:, None]', '[::-1]', '[1:, 0]', '[None]', '.T')).map(([a, ix]) => `(${a})${ix}`),
    fc.tuple(fc.constantFrom('stack', 'concat'), tie('term'), tie('term')).map(([f, a, b]) => `${f}([${a}, ${b}])`),
    fc.tuple(tie('term'), tie('term'), tie('term')).map(([c, a, b]) => `where(${c}, ${a}, ${b})`),
    fc.tuple(tie('term'), fc.constantFrom('[2, 2]', '[-1]', '[4]', '[1, -1]')).map(([a, sh]) => `reshape(${a}, ${sh})`),
  ),
}));
const point = fc.record({
  x: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 2, maxLength: 2 }),
  X: fc.array(fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 2, maxLength: 2 }), { minLength: 2, maxLength: 2 }),
  y: fc.double({ min: -3, max: 3, noNaN: true }),
});

async function expectNo5xx(url: string, payload: unknown): Promise<void> {
  const res = await app.inject({ method: 'POST', url, payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } });
  // A probe target that misbehaves is a 502/504 (README "Black-box probing"), not a server fault.
  const targetFault = url === '/probe' && [502, 504].includes(res.statusCode) && ['probe_target_error', 'probe_timeout'].includes(res.json().code);
  if (res.statusCode >= 500 && !targetFault) throw new Error(`${url} answered ${res.statusCode} to ${JSON.stringify(payload).slice(0, 400)}: ${res.body.slice(0, 300)}`);
  if (res.statusCode >= 400) expect(res.headers['content-type']).toContain('application/problem+json');
}

describe('fuzzing the endpoints', () => {
  it('half-sensible requests get an answer or a 4xx problem', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS), request, async (url, body) => expectNo5xx(url, body)),
      { numRuns: 600 * runs, seed },
    );
  });

  it('well-formed expressions at real points get an answer or a 4xx problem, on every endpoint', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS), term, point, async (url, e, at) =>
        expectNo5xx(url, {
          expr: e,
          at,
          tangents: { x: [1, 0] },
          cotangent: 1,
          vector: { y: 1 },
          mode: 'both',
          format: 'dot',
          reference: { expr: e },
          submissions: [{ id: 's', answers: { derivative: { y: e }, value: 1 } }],
        }),
      ),
      { numRuns: 800 * runs, seed: seed + 1 },
    );
  });

  it('probes of well-formed expressions get an answer or a 4xx problem', async () => {
    const methods = fc.constantFrom('forward', 'central', 'spsa', 'nes', 'occlusion', 'bogus');
    const input = fc.oneof(point.map((p) => p.x), point.map((p) => p.y), fc.constant(['a', 'b']), fc.constant([]));
    await fc.assert(
      fc.asyncProperty(term.map((t) => t.replaceAll('X', 'x').replaceAll('y', 'x')), input, methods, fc.integer({ min: 1, max: 40 }), async (e, at, method, budget) =>
        expectNo5xx('/probe', { target: { expr: e }, at, method, budget, output: 0 }),
      ),
      { numRuns: 300 * runs, seed: seed + 3 },
    );
  });

  it('arbitrary JSON bodies get a 4xx problem', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS, '/probe'), fc.jsonValue({ maxDepth: 4 }), async (url, body) => expectNo5xx(url, body)),
      { numRuns: 300 * runs, seed: seed + 2 },
    );
  });

  it('the server still answers normally afterwards', async () => {
    const res = await app.inject({ method: 'POST', url: '/grad', payload: { expr: 'x^2', at: { x: 3 } } });
    expect(res.json()).toEqual({ value: 9, gradient: { x: 6 } });
  });
});
