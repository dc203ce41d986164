// Every function of the catalog over empty and extreme shapes, at every endpoint that computes:
// each answer is a success or a 4xx problem with a code, never a 5xx, and none takes long. The
// functions come from the catalog (FUNCTIONS: the op table's exposed primitives and the
// composites), so a new function is swept without editing this file. A tensor of zero elements
// can still have 10¹⁰ rows ([100000, 100000, 0]), whose nested answer used to be built row by row
// on the event loop; dimensions of 2³² and more were 500 "Invalid array length".

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { FUNCTIONS, type FunctionDef, type StaticParam } from '../../src/engine/ops/functions.js';
import { formatTensor } from '../../src/cli/print.js';
import { buildTestApp } from '../helpers.js';
import { answerBytes, waitFor, type JobBody } from '../jobs/jobs-client.js';

const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/** Shapes a client may send or ask for: empty ones, huge dimensions, too many dimensions, and ones that are not shapes. */
const SHAPES: readonly (readonly number[])[] = [
  [],
  [0],
  [0, 3],
  [3, 0],
  [2, 3],
  [0, 0],
  [100_000, 100_000, 0],
  [0, 100_000, 100_000],
  [2 ** 32, 0],
  [2 ** 53, 0],
  [2 ** 31],
  [2 ** 53],
  [1e300, 0],
  new Array<number>(40).fill(1),
  [...new Array<number>(39).fill(2), 0],
  [-1],
  [-3, 0],
  [1.5, 0],
];

/**
 * The shapes of SHAPES an input may have under the default limits: the others are refused where
 * the input is read, before any function sees them (swept once per function at /eval, which is
 * enough; these reach the functions, at every endpoint).
 */
const ADMITTED = SHAPES.filter((shape) => shape.length <= 32 && shape.every((d) => Number.isSafeInteger(d) && d >= 0 && d <= 2 ** 24) && size(shape) <= 64);

/** Generous: a request that once froze the loop for 90 s must now answer at once, but a busy machine may pause. */
const SLOW_MS = 10_000;


/** A tensor of `shape` as a request sends it: base64 zeros (an empty string where the shape holds none or too many). */
function tensorOf(shape: readonly number[]): unknown {
  if (shape.length === 0) return 0.5;
  const n = size(shape);
  const small = Number.isSafeInteger(n) && n > 0 && n <= 64;
  return { dtype: 'float64', shape, data: small ? Buffer.alloc(8 * n).toString('base64') : '' };
}

/** A required static argument, as an expression writes it and as a graph gives it. */
function requiredStatic(param: StaticParam): { text: string; json: unknown } {
  switch (param.kind) {
    case 'int':
      return { text: '0', json: 0 };
    case 'axes':
      return { text: '0', json: 0 };
    case 'bool':
      return { text: 'True', json: true };
    case 'shape':
      return { text: '[-1]', json: [-1] };
    case 'index':
      return { text: '', json: [0] };
  }
}

/** `f` applied to `arg` (as often as it takes tensors) with its required statics, as an expression. */
function callText(f: FunctionDef, arg: string): string {
  if (f.statics.some((s) => s.kind === 'index')) return `(${arg})[0]`;
  const tensors = f.tensors === 'list' ? [`[${arg}, ${arg}]`] : new Array<string>(f.tensors).fill(arg);
  const statics = f.statics.filter((s) => !s.optional).map((s) => `${s.name}=${requiredStatic(s).text}`);
  return `${f.name}(${[...tensors, ...statics].join(', ')})`;
}

/** The same call as a JSON graph. */
function callGraph(f: FunctionDef): unknown {
  const args = f.tensors === 'list' ? ['x', 'x'] : new Array<string>(f.tensors).fill('x');
  const attrs = Object.fromEntries(f.statics.filter((s) => !s.optional).map((s) => [s.name, requiredStatic(s).json]));
  return { nodes: [{ id: 'f', op: f.name, args, attrs }], output: 'f' };
}

/** Extreme values of each kind of static argument. */
const EXTREME_INTS = [0, -1, 40, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1e300];
function extremeStatics(kind: StaticParam['kind']): string[] {
  switch (kind) {
    case 'int':
      return EXTREME_INTS.map(String);
    case 'axes':
      return [...EXTREME_INTS.map(String), '[0, 0]', '[0, 1]', '[]'];
    case 'bool':
      return ['True', 'False'];
    case 'shape':
      return SHAPES.map((s) => `[${s.map(String).join(', ')}]`);
    case 'index':
      return [];
  }
}

/** Index expressions over huge, negative and empty ranges. */
const INDEXES = ['[0]', '[-1]', '[4294967296]', '[9007199254740992]', '[:, None]', '[::-1]', '[0:9007199254740992]', '[1e300:]', '[..., None]', '[None, None, None]'];

let app: App;
beforeAll(async () => {
  app = buildTestApp({ RATE_LIMIT_MAX: 0 });
  await app.ready();
});
afterAll(() => app.close());

interface Outcome {
  what: string;
  status: number;
  ms: number;
  code?: string;
}

const outcomes: Outcome[] = [];

/** POST `payload`, and record how it was answered: 2xx, or a 4xx problem with a code (checked below). */
async function send(url: string, payload: object, what: string): Promise<{ status: number; body: string }> {
  const started = performance.now();
  const res = await app.inject({ method: 'POST', url, payload });
  const ms = performance.now() - started;
  const outcome: Outcome = { what: `${url} ${what}`, status: res.statusCode, ms };
  if (res.statusCode >= 400) {
    expect(res.headers['content-type'], outcome.what).toContain('application/problem+json');
    outcome.code = (res.json() as { code?: string }).code;
  }
  outcomes.push(outcome);
  return { status: res.statusCode, body: res.body };
}

/** Every answer so far was a success or a problem with a code below 500, and none was slow. */
function expectAllAnswered(): void {
  const failures = outcomes.filter((o) => o.status >= 500 || (o.status >= 400 && typeof o.code !== 'string') || o.ms > SLOW_MS);
  const total = outcomes.length;
  outcomes.length = 0;
  expect(failures.slice(0, 20), `${failures.length} of ${total} answers`).toEqual([]);
}

const functions = [...FUNCTIONS.values()];

describe('every function over empty and extreme shapes', () => {
  it('the sweep covers every function GET /ops lists', async () => {
    const listed = (await app.inject({ method: 'GET', url: '/ops' })).json() as { ops: { name: string }[] };
    expect(functions.map((f) => f.name).sort()).toEqual(listed.ops.map((op) => op.name).sort());
  });

  it.each([
    ['/eval', SHAPES],
    ['/grad', ADMITTED],
    ['/trace', ADMITTED],
  ] as const)('%s: every function of inputs of every shape (sent as base64)', async (url, shapes) => {
    for (const f of functions) {
      for (const shape of shapes) {
        const call = callText(f, 'x');
        await send(url, { expr: url === '/grad' ? `sum(${call})` : call, at: { x: tensorOf(shape) } }, `${call} at x of shape [${shape.join(', ')}]`);
      }
    }
    expectAllAnswered();
  }, 120_000);

  it('/eval: every function of tensors reshaped to every shape, and as a JSON graph', async () => {
    for (const f of functions) {
      for (const shape of SHAPES) {
        const text = `[${shape.map(String).join(', ')}]`;
        const n = size(shape);
        const source = Number.isSafeInteger(n) && n > 0 && n <= 64 ? tensorOf([n]) : [];
        const call = callText(f, `reshape(x, shape=${text})`);
        await send('/eval', { expr: call, at: { x: source } }, call);
        if (ADMITTED.includes(shape)) await send('/eval', { graph: callGraph(f), at: { x: tensorOf(shape) } }, `graph ${f.name} at x of shape ${text}`);
      }
    }
    expectAllAnswered();
  }, 120_000);

  it('/eval: every static argument of every function at extreme values, and indexes over extreme ranges', async () => {
    const inputs = [[3, 0], [2, 3]];
    for (const f of functions) {
      for (const param of f.statics) {
        for (const value of extremeStatics(param.kind)) {
          const others = f.statics.filter((s) => !s.optional && s.name !== param.name).map((s) => `${s.name}=${requiredStatic(s).text}`);
          const tensors = f.tensors === 'list' ? ['[x, x]'] : new Array<string>(f.tensors).fill('x');
          const call = `${f.name}(${[...tensors, ...others, `${param.name}=${value}`].join(', ')})`;
          for (const shape of inputs) await send('/eval', { expr: call, at: { x: tensorOf(shape) } }, `${call} at x of shape [${shape.join(', ')}]`);
        }
      }
    }
    for (const index of INDEXES) for (const shape of inputs) await send('/eval', { expr: `x${index}`, at: { x: tensorOf(shape) } }, `x${index}`);
    expectAllAnswered();
  }, 120_000);

  it('derivatives whose answers are empty blocks with many rows, shapes without values, and a job', async () => {
    const x2000 = tensorOf([2000, 0]);
    // A Jacobian [2000] × [2000, 0] has no elements but 4,002,001 arrays; forward mode would make 0 passes.
    for (const mode of ['auto', 'forward', 'reverse']) {
      const { status, body } = await send('/jacobian', { expr: 'sum(x, axis=1) + y', at: { x: x2000, y: new Array(2000).fill(1) }, mode }, `jacobian ${mode}`);
      expect(status, body).toBe(422);
      expect(body).toContain('MAX_JACOBIAN_ELEMENTS');
    }
    await send('/hessian', { expr: 'sum(x)', at: { x: tensorOf([3000, 0]) } }, 'hessian of an empty input');
    for (const url of ['/jvp', '/vjp', '/hvp', '/check']) {
      await send(url, { expr: 'sin(x)', at: { x: tensorOf([3, 0]) }, tangents: {}, vector: {}, cotangent: tensorOf([3, 0]) }, `${url} of an empty input`);
    }
    for (const shape of SHAPES) {
      await send('/analyze', { expr: 'sin(x)', shapes: { x: shape } }, `analyze of shape [${shape.join(', ')}]`);
      await send('/eval', { expr: 'x', at: { x: tensorOf(shape) }, encoding: 'base64' }, `base64 answer of shape [${shape.join(', ')}]`);
    }
    // A job (?async=true): accepted, then failed with the problem the synchronous endpoint answers.
    const payload = { expr: 'reshape(x, shape=[100000, 100000, 0])', at: { x: [] } };
    const submitted = await app.inject({ method: 'POST', url: '/eval?async=true', payload });
    expect(submitted.statusCode).toBe(202);
    const done = await waitFor(app, submitted.json<JobBody>().id, { timeoutMs: 60_000 });
    expect(done.job.state).toBe('failed');
    expect(answerBytes(done.text, 'problem')).toBe((await app.inject({ method: 'POST', url: '/eval', payload })).body);
    expectAllAnswered();
  }, 120_000);
});

describe('what the limits say, and empty answers as they are written', () => {
  it('the 90-byte request that froze the loop is refused at once, naming the limit and where', async () => {
    const started = performance.now();
    const res = await app.inject({ method: 'POST', url: '/eval', payload: '{"expr":"reshape(x, shape=[100000, 100000, 0])","at":{"x":[]}}', headers: { 'content-type': 'application/json' } });
    expect(performance.now() - started).toBeLessThan(SLOW_MS);
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'limit_exceeded', position: { line: 1, column: 1 } });
    expect(res.json().detail).toContain('10000100001 rows');
    expect(res.json().detail).toContain('MAX_TENSOR_ELEMENTS');
  });

  it('a dimension past MAX_DIMENSION is refused as input (nested or base64), in a shape argument and in a graph, naming it', async () => {
    const small = buildTestApp({ MAX_DIMENSION: 10 });
    try {
      const cases: [object, Record<string, unknown>][] = [
        [{ expr: 'x', at: { x: new Array(11).fill(0) } }, { errors: [{ path: 'at.x' }] }],
        [{ expr: 'x', at: { x: { dtype: 'float64', shape: [11, 0], data: '' } } }, { errors: [{ path: 'at.x.shape' }] }],
        [{ expr: 'reshape(x, shape=[0, 11])', at: { x: [] } }, { position: { line: 1, column: 1 } }],
        [{ graph: { nodes: [{ id: 'r', op: 'reshape', args: ['x'], attrs: { shape: [11, 0] } }], output: 'r' }, at: { x: [] } }, { node: 'r' }],
        [{ graph: { nodes: [{ id: 'c', op: 'const', attrs: { value: new Array(11).fill(1) } }], output: 'c' }, at: {} }, {}],
        [{ expr: 'eye(11)', at: {} }, {}],
      ];
      for (const [payload, where] of cases) {
        const res = await small.inject({ method: 'POST', url: '/eval', payload });
        expect(res.statusCode, res.body).toBe(422);
        expect(res.json()).toMatchObject({ code: 'limit_exceeded', ...where });
        expect(res.json().detail).toContain('MAX_DIMENSION');
      }
      const ten = await small.inject({ method: 'POST', url: '/eval', payload: { expr: 'reshape(x, shape=[10, 0])', at: { x: [] } } });
      expect(ten.json()).toEqual({ value: new Array(10).fill([]), shape: [10, 0] });
    } finally {
      await small.close();
    }
  });

  it('rank is bounded wherever a shape is made: more than 32 dimensions is a 422', async () => {
    const res = await app.inject({ method: 'POST', url: '/eval', payload: { expr: `reshape(x, shape=[${new Array(33).fill(1).join(', ')}])`, at: { x: [1] } } });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'limit_exceeded' });
    expect(res.json().detail).toContain('33 dimensions');
    const ok = await app.inject({ method: 'POST', url: '/eval', payload: { expr: `reshape(x, shape=[${new Array(32).fill(1).join(', ')}])`, at: { x: [1] } } });
    expect(ok.statusCode).toBe(200);
  });

  it('zero-size answers: nested rows as NumPy writes them, base64 without data, every reduction by its convention', async () => {
    const answer = async (expr: string, at: object, encoding?: string) =>
      (await app.inject({ method: 'POST', url: '/eval', payload: { expr, at, ...(encoding ? { encoding } : {}) } })).json();
    expect(await answer('reshape(x, shape=[3, 0])', { x: [] })).toEqual({ value: [[], [], []], shape: [3, 0] });
    expect(await answer('reshape(x, shape=[0, 3])', { x: [] })).toEqual({ value: [], shape: [0, 3] });
    expect(await answer('reshape(x, shape=[3, 0])', { x: [] }, 'base64')).toEqual({ value: { dtype: 'float64', shape: [3, 0], data: '' }, shape: [3, 0] });
    const empty = { x: { dtype: 'float64', shape: [2, 0], data: '' } };
    expect((await answer('sum(x, axis=1)', empty)).value).toEqual([0, 0]);
    expect((await answer('prod(x, axis=1)', empty)).value).toEqual([1, 1]);
    expect((await answer('norm(x, axis=1)', empty)).value).toEqual([0, 0]);
    expect((await answer('logsumexp(x, axis=1)', empty)).value).toEqual(['-Infinity', '-Infinity']);
    expect((await answer('max(x, axis=0)', empty)).value).toEqual([]);
    for (const expr of ['max(x, axis=1)', 'min(x)', 'max(x)']) {
      const refused = await answer(expr, empty);
      expect(refused).toMatchObject({ code: 'shape_mismatch', status: 422 });
      expect(refused.detail).toContain('empty axis');
    }
  });

  it('the command line prints empty tensors by their shape, and half a million numbers without overflowing the stack', () => {
    expect(formatTensor([[], [], []])).toBe('[] (shape [3, 0])');
    expect(formatTensor([])).toBe('[]');
    // Math.max(...leaves) overflowed the stack past about 150,000 numbers; large tensors are summarised as NumPy does.
    const rows = Array.from({ length: 500 }, (_, i) => Array.from({ length: 1000 }, (_, j) => i * 1000 + j));
    const text = formatTensor(rows);
    expect(text).toContain('...');
    expect(text.endsWith('499999]]')).toBe(true);
  });
});
