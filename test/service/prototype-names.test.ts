// Every name of Object.prototype (and __proto__) sent through every place a request names
// something: an expression's names, functions and keyword arguments, the inputs (`at`, `points`,
// `shapes`), `wrt`, `tangents` and `vector`, a graph's ids, ops, arguments, attributes and output,
// /grade's answer kinds, table rows, per-input answers, `required`, `ranges` and feedback, and a
// probe's target. Each is either a name like any other — an input, a step, a node — answered
// right, or an unknown one, answered with the problem an unknown name gets: never a 5xx, never a
// lookup that finds Object.prototype (a NaN value, a function read as an answer).
//
// `__proto__` as a JSON key is refused by the body parser before any of this (prototype
// poisoning): there only a 4xx with a code is asserted. Inside strings (an expression, a graph
// id, a `wrt` entry, a row id) it is checked in full.

import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

const NAMES = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__'])];
/** The one name the body parser refuses as a JSON key. */
const REFUSED_KEY = '__proto__';

let app: App;
beforeAll(async () => {
  app = buildTestApp({ RATE_LIMIT_MAX: 0 });
  await app.ready();
});
afterAll(() => app.close());


type Json = Record<string, any>;

/** POST `body` as JSON text (so an own `__proto__` key is really sent); never a 5xx. */
async function post(url: string, body: unknown): Promise<LightMyRequestResponse> {
  const payload = JSON.stringify(body);
  const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
  expect(res.statusCode, `${url} ${payload.slice(0, 300)} answered ${res.body.slice(0, 300)}`).toBeLessThan(500);
  return res;
}

/** An object with `name` as an own key — `__proto__` included (Object.fromEntries defines, never sets). */
function keyed(...entries: [string, unknown][]): Json {
  return Object.fromEntries(entries);
}

function ok(res: LightMyRequestResponse): Json {
  expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
  return JSON.parse(res.body) as Json;
}

/** A problem with this status and code; its body. */
function problem(res: LightMyRequestResponse, status: number, code: string): Json {
  expect(res.statusCode, res.body.slice(0, 500)).toBe(status);
  expect(res.headers['content-type']).toContain('application/problem+json');
  const body = JSON.parse(res.body) as Json;
  expect(body.code).toBe(code);
  return body;
}

/** The same status and code as the answer to the same request with an ordinary unknown name. */
async function sameProblemAs(res: LightMyRequestResponse, url: string, control: unknown): Promise<Json> {
  const expected = await post(url, control);
  expect(expected.statusCode).toBeGreaterThanOrEqual(400);
  return problem(res, expected.statusCode, (JSON.parse(expected.body) as Json).code as string);
}

/** A body whose JSON has `__proto__` as a key: refused before the handler, with a code. */
function refused(res: LightMyRequestResponse): void {
  expect(res.statusCode, res.body.slice(0, 300)).toBeGreaterThanOrEqual(400);
  expect(res.statusCode).toBeLessThan(500);
  expect(typeof (JSON.parse(res.body) as Json).code).toBe('string');
}

/** For a request that has `name` as a JSON key: `check` it, or for __proto__ only that it is refused. */
async function withKey(name: string, url: string, body: unknown, check: (res: LightMyRequestResponse) => void | Promise<void>): Promise<void> {
  const res = await post(url, body);
  if (name === REFUSED_KEY) refused(res);
  else await check(res);
}

function stepIds(trace: Json): string[] {
  return (trace.steps as Json[]).map((s) => s.id as string);
}

describe.each(NAMES)('the name %s', (name) => {
  describe('in an expression', () => {
    it('is an unknown name when it is not an input, like any other (never a constant)', async () => {
      for (const url of ['/eval', '/grad', '/jacobian', '/hessian', '/check']) {
        const alone = problem(await post(url, { expr: name, at: { x: 1 } }), 422, 'unknown_input');
        expect(alone.position).toEqual({ line: 1, column: 1 });
        expect(alone.detail).toContain(`unknown name '${name}'`);
        const inSum = problem(await post(url, { expr: `x + ${name}`, at: { x: 1 } }), 422, 'unknown_input');
        expect(inSum.position).toEqual({ line: 1, column: 5 });
      }
      problem(await post('/trace', { expr: `x * ${name}`, at: { x: 1 }, mode: 'both' }), 422, 'unknown_input');
      problem(await post('/analyze', { expr: `x * ${name}`, shapes: { x: [2] } }), 422, 'unknown_input');
      problem(await post('/eval', { expr: `x * ${name}`, points: [{ x: 1 }, { x: 2 }] }), 422, 'unknown_input');
    });

    it('is a function name no function has, like any other', async () => {
      const call = await post('/eval', { expr: `${name}(x)`, at: { x: 1 } });
      const body = await sameProblemAs(call, '/eval', { expr: 'nosuchfunction(x)', at: { x: 1 } });
      expect(body.code).toBe('unknown_function');
      expect(body.position).toEqual({ line: 1, column: 1 });
      expect(body.detail).toContain(`unknown function '${name}'`);
      const nested = problem(await post('/grad', { expr: `sin(x) + ${name}(x, x)`, at: { x: 1 } }), body.status as number, 'unknown_function');
      expect(nested.position).toEqual({ line: 1, column: 10 });
    });

    it('is a keyword argument no function takes', async () => {
      for (const expr of [`sum(x, ${name}=1)`, `sum(x, axis=0, ${name}=True)`, `softmax(x, ${name}=0)`, `eye(${name}=2)`, `transpose(x, ${name}=[0])`]) {
        const body = problem(await post('/eval', { expr, at: { x: [1, 2] } }), 400, 'parse_error');
        expect(body.detail).toContain(`no argument '${name}'`);
        expect(body.position).toMatchObject({ line: 1 });
      }
    });

    it('is a variable like any other once assigned', async () => {
      const expr = `${name} = x * x\n${name} + 1`;
      expect(ok(await post('/eval', { expr, at: { x: 3 } }))).toEqual({ value: 10, shape: [] });
      expect(ok(await post('/grad', { expr, at: { x: 3 } }))).toEqual({ value: 10, gradient: { x: 6 } });
      const trace = ok(await post('/trace', { expr, at: { x: 3 }, mode: 'both' }));
      expect(stepIds(trace)).toContain(name);
      expect((trace.steps as Json[]).find((s) => s.id === name)).toMatchObject({ op: 'mul', value: 9, tangent: 6, adjoint: 1 });
      const analysis = ok(await post('/analyze', { expr, shapes: { x: [] } }));
      expect((analysis.steps as Json[]).map((s) => s.id)).toContain(name);
      const dot = await post('/graph', { expr, format: 'dot' });
      expect(dot.statusCode).toBe(200);
      expect(dot.body).toContain(`label="${name}\\nmul(x, x)`);
    });

    it('is an input named by the point, whose value is its own', async () => {
      const x = 2;
      const v = 3;
      const both = (a: unknown, b: unknown) => keyed([name, a], ['x', b]);
      const f = `${name}^2 * x`;
      await withKey(name, '/eval', { expr: `${name} * 2`, at: keyed([name, v]) }, (res) => expect(ok(res)).toEqual({ value: 6, shape: [] }));
      await withKey(name, '/eval', { expr: `${name} * 2`, points: [keyed([name, 1]), keyed([name, 2])] }, (res) =>
        expect(ok(res)).toEqual({ results: [{ value: 2, shape: [] }, { value: 4, shape: [] }] }),
      );
      await withKey(name, '/grad', { expr: `${name} * 2`, at: keyed([name, v]) }, (res) => {
        const body = ok(res);
        expect(body).toEqual({ value: 6, gradient: keyed([name, 2]) });
        expect(Object.hasOwn(body.gradient as object, name)).toBe(true);
      });
      await withKey(name, '/grad', { expr: f, at: both(v, x), wrt: [name] }, (res) => expect(ok(res).gradient).toEqual(keyed([name, 2 * v * x])));
      await withKey(name, '/vjp', { expr: f, at: both(v, x), cotangent: 1 }, (res) => expect(ok(res).vjp).toEqual(both(2 * v * x, v * v)));
      await withKey(name, '/jvp', { expr: f, at: both(v, x), tangents: keyed([name, 1]) }, (res) => expect(ok(res).tangent).toBe(2 * v * x));
      for (const mode of ['forward', 'reverse']) {
        await withKey(name, '/jacobian', { expr: `stack([${name} * x, x])`, at: both(v, x), mode }, (res) =>
          expect(ok(res).jacobian).toEqual(both([x, 0], [v, 1])),
        );
      }
      const hessian = keyed([name, both(2 * x, 2 * v)], ['x', both(2 * v, 0)]);
      await withKey(name, '/hessian', { expr: f, at: both(v, x) }, (res) => expect(ok(res)).toEqual({ value: v * v * x, gradient: both(2 * v * x, v * v), hessian }));
      await withKey(name, '/hvp', { expr: f, at: both(v, x), vector: both(1, 0) }, (res) => expect(ok(res).hvp).toEqual(both(2 * x, 2 * v)));
      await withKey(name, '/check', { expr: f, at: both(v, x) }, (res) => expect(ok(res)).toMatchObject({ ok: true, gradient: both(2 * v * x, v * v) }));
      await withKey(name, '/trace', { expr: f, at: both(v, x), mode: 'both', tangents: keyed([name, 1]) }, (res) => {
        const trace = ok(res);
        expect(trace.seeds.tangents).toEqual(both(1, 0));
        expect((trace.steps as Json[])[0]).toMatchObject({ id: name, op: 'input', value: v, tangent: 1, adjoint: 2 * v * x });
      });
      await withKey(name, '/trace', { expr: f, at: both(v, x), mode: 'forward' }, (res) => expect(ok(res).seeds.tangents).toEqual(both(1, 0)));
      await withKey(name, '/analyze', { expr: f, at: both(v, x) }, (res) =>
        expect(ok(res).inputs).toEqual([
          { name, shape: [], wrt: true },
          { name: 'x', shape: [], wrt: true },
        ]),
      );
      await withKey(name, '/analyze', { expr: `sum(${name})`, shapes: keyed([name, [4, 2]]) }, (res) => expect(ok(res).inputs).toEqual([{ name, shape: [4, 2], wrt: true }]));
      await withKey(name, '/graph', { expr: f, at: both(v, x), format: 'dot' }, (res) => {
        expect(res.statusCode).toBe(200);
        expect(res.body).toContain(`label="${name}\\ninput`);
      });
      // Without a point, /graph takes the free names as scalar inputs: no JSON key, so __proto__ too.
      const free = await post('/graph', { expr: f, format: 'dot' });
      expect(free.statusCode).toBe(200);
      expect(free.body).toContain(`label="${name}\\ninput`);
    });

    it('as an input, seeds only what `tangents` and `vector` give it (zeros otherwise)', async () => {
      const at = keyed([name, 3], ['x', 2]);
      const f = `${name}^2 * x`;
      await withKey(name, '/jvp', { expr: f, at, tangents: { x: 1 } }, (res) => expect(ok(res).tangent).toBe(9));
      await withKey(name, '/hvp', { expr: f, at, vector: { x: 1 } }, (res) => expect(ok(res).hvp).toEqual(keyed([name, 6], ['x', 0])));
    });

    it('as an input, seeds only what a trace`s `tangents` give it', async () => {
      await withKey(name, '/trace', { expr: `${name} * x`, at: keyed([name, 3], ['x', 2]), mode: 'forward', tangents: { x: 1 } }, (res) => {
        const trace = ok(res);
        expect(trace.seeds.tangents).toEqual(keyed([name, 0], ['x', 1]));
        expect((trace.steps as Json[]).at(-1)).toMatchObject({ value: 6, tangent: 3 });
      });
    });
  });

  describe('in `wrt`, `tangents` and `vector`', () => {
    it('in `wrt`, is not an input unless the point names it', async () => {
      const extra: Record<string, Json> = { '/vjp': { cotangent: 1 }, '/hvp': { vector: { x: 1 } }, '/trace': { mode: 'both' } };
      for (const url of ['/grad', '/vjp', '/jacobian', '/hessian', '/hvp', '/check', '/trace']) {
        const body = problem(await post(url, { expr: 'x * 2', at: { x: 1 }, wrt: [name], ...extra[url] }), 422, 'unknown_input');
        expect(body.detail).toContain(`wrt names '${name}'`);
        expect(body.errors).toEqual([{ path: 'wrt.0', message: body.detail }]);
      }
      problem(await post('/analyze', { expr: 'x * 2', shapes: { x: [] }, wrt: [name] }), 422, 'unknown_input');
      problem(await post('/grad', { expr: 'x * 2', points: [{ x: 1 }], wrt: [name] }), 422, 'unknown_input');
    });

    it('as a key of `tangents` or `vector`, is not an input unless the point names it', async () => {
      const check = (res: LightMyRequestResponse, field: string) => {
        const body = problem(res, 422, 'unknown_input');
        expect(body.detail).toContain(`${field} names '${name}'`);
      };
      await withKey(name, '/jvp', { expr: 'x * 2', at: { x: 1 }, tangents: keyed([name, 1]) }, (res) => check(res, 'tangents'));
      await withKey(name, '/hvp', { expr: 'x * 2', at: { x: 1 }, vector: keyed([name, 1]) }, (res) => check(res, 'vector'));
      await withKey(name, '/trace', { expr: 'x * 2', at: { x: 1 }, mode: 'forward', tangents: keyed([name, 1]) }, (res) => check(res, 'tangents'));
    });
  });

  describe('in a JSON graph', () => {
    it('is a node id like any other', async () => {
      const graph = { nodes: [{ id: name, op: 'mul', args: ['x', 2] }, { id: 'y', op: 'add', args: [name, 1] }], output: 'y' };
      expect(ok(await post('/eval', { graph, at: { x: 3 } }))).toEqual({ value: 7, shape: [] });
      expect(ok(await post('/grad', { graph, at: { x: 3 } }))).toEqual({ value: 7, gradient: { x: 2 } });
      const trace = ok(await post('/trace', { graph, at: { x: 3 }, mode: 'both' }));
      expect(stepIds(trace)).toEqual(['x', name, 'y']);
      const single = { nodes: [{ id: name, op: 'sin', args: ['x'] }], output: name };
      expect(ok(await post('/eval', { graph: single, at: { x: 1 } })).value).toBeCloseTo(Math.sin(1), 15);
      expect(ok(await post('/trace', { graph: single, at: { x: 1 }, mode: 'forward' })).output).toBe(name);
      const dot = await post('/graph', { graph: single, format: 'dot' });
      expect(dot.statusCode).toBe(200);
      expect(dot.body).toContain(`label="${name}\\nsin(x)`);
      const twice = problem(await post('/eval', { graph: { nodes: [single.nodes[0], { id: name, op: 'cos', args: ['x'] }], output: name }, at: { x: 1 } }), 422, 'invalid_graph');
      expect(twice.node).toBe(name);
    });

    it('is an op no function has, like any other', async () => {
      const graph = { nodes: [{ id: 'y', op: name, args: ['x'] }], output: 'y' };
      const body = await sameProblemAs(await post('/eval', { graph, at: { x: 1 } }), '/eval', { graph: { ...graph, nodes: [{ ...graph.nodes[0], op: 'nosuchop' }] }, at: { x: 1 } });
      expect(body.code).toBe('unknown_function');
      expect(body.detail).toContain(`unknown op '${name}'`);
      expect(body.node).toBe('y');
    });

    it('as an argument or the output, is neither a node nor an input unless one has that name', async () => {
      const arg = problem(await post('/eval', { graph: { nodes: [{ id: 'y', op: 'sin', args: [name] }], output: 'y' }, at: { x: 1 } }), 422, 'unknown_input');
      expect(arg.detail).toContain(`argument '${name}'`);
      const output = problem(await post('/eval', { graph: { nodes: [{ id: 'y', op: 'sin', args: ['x'] }], output: name }, at: { x: 1 } }), 422, 'unknown_input');
      expect(output.detail).toContain(`the output '${name}'`);
      // An argument that names an input (a key of `at`).
      const graph = { nodes: [{ id: 'y', op: 'mul', args: [name, 'x'] }], output: 'y' };
      await withKey(name, '/grad', { graph, at: keyed([name, 3], ['x', 2]) }, (res) => expect(ok(res)).toEqual({ value: 6, gradient: keyed([name, 2], ['x', 3]) }));
      await withKey(name, '/eval', { graph: { nodes: [{ id: name, op: 'sin', args: ['x'] }], output: name }, at: keyed([name, 3], ['x', 2]) }, (res) =>
        expect(problem(res, 422, 'invalid_graph').detail).toContain('also the name of an input'),
      );
      // Without a point, /graph takes the arguments that name no node as scalar inputs.
      const dot = await post('/graph', { graph, format: 'dot' });
      expect(dot.statusCode).toBe(200);
      expect(dot.body).toContain(`label="${name}\\ninput`);
    });

    it('as an attribute, is one no op takes', async () => {
      const attr = (op: string, attrs: Json) => ({ graph: { nodes: [{ id: 'y', op, args: op === 'const' ? [] : ['x'], attrs }], output: 'y' }, at: { x: [1, 2] } });
      await withKey(name, '/eval', attr('sum', keyed([name, 1])), (res) => expect(problem(res, 422, 'invalid_graph').detail).toContain(`has no attribute '${name}'`));
      await withKey(name, '/eval', attr('sum', keyed(['axis', 0], [name, true])), (res) => expect(problem(res, 422, 'invalid_graph').detail).toContain(`has no attribute '${name}'`));
      await withKey(name, '/eval', attr('const', keyed(['value', 1], [name, 2])), (res) => expect(problem(res, 422, 'invalid_graph').detail).toContain(`has no attribute '${name}'`));
      await withKey(name, '/eval', attr('const', keyed([name, 2])), (res) => expect(problem(res, 422, 'invalid_graph').detail).toContain('const needs attrs.value'));
      await withKey(name, '/eval', attr('index', { index: [keyed([name, 1])] }), (res) => expect(problem(res, 422, 'invalid_graph').detail).toContain(`got key '${name}'`));
    });
  });

  describe('in /grade', () => {
    const reference = { expr: 'y = x * x\ny + 1' };
    const right = { id: 'right', answers: { derivative: { x: '2*x' }, gradient: { x: 6 } } };
    const grade = (body: Json) => post('/grade', { reference, at: { x: 3 }, ...body });

    it('as an answers key, is an unknown kind of answer of that submission; the batch goes on', async () => {
      for (const format of ['native', 'gradescope', 'prairielearn']) {
        await withKey(name, '/grade', { reference, at: { x: 3 }, format, submissions: [{ id: 'odd', answers: keyed([name, 1], ['gradient', { x: 6 }]) }, right] }, (res) => {
          const [odd, fine] = ok(res).results as Json[];
          const message = `'${name}' is not a kind of answer`;
          if (format === 'native') {
            // The unknown kind is a failed test: out of the same maximum as in Gradescope.
            expect(odd).toMatchObject({ gradable: false, score: 1, max_score: 2 });
            expect(odd!.format_errors).toEqual([{ part: name, message: expect.stringContaining(message) }]);
            expect(fine).toMatchObject({ id: 'right', gradable: true, score: 2, max_score: 2 });
          } else if (format === 'gradescope') {
            expect(odd).toMatchObject({ score: 1, extra_data: { gradable: false, max_score: 2 } });
            expect(odd!.extra_data.format_errors).toEqual([{ part: name, message: expect.stringContaining(message) }]);
            expect(fine).toMatchObject({ score: 2, extra_data: { id: 'right', gradable: true } });
          } else {
            expect(odd).toMatchObject({ gradable: false, score: 0.5 });
            expect(odd!.format_errors).toEqual([expect.stringContaining(`${name}: ${message}`)]);
            expect(fine).toMatchObject({ id: 'right', gradable: true, score: 1 });
          }
        });
      }
    });

    it('as a row of a table, is no step of the reference', async () => {
      const res = await grade({
        submissions: [{ answers: { forwardTrace: [{ id: name, value: 1, tangent: 1 }], reverseTrace: [{ id: name, adjoint: 1 }] } }, right],
      });
      const [odd, fine] = ok(res).results as Json[];
      expect(odd!.format_errors).toEqual([
        { part: `forwardTrace.${name}`, message: expect.stringContaining(`there is no step '${name}'`) },
        { part: `reverseTrace.${name}`, message: expect.stringContaining(`there is no step '${name}'`) },
      ]);
      expect(fine!.gradable).toBe(true);
      await withKey(name, '/grade', { reference, at: { x: 3 }, submissions: [{ answers: { shapes: keyed([name, []]) } }] }, (r) =>
        expect((ok(r).results as Json[])[0]!.format_errors).toEqual([{ part: `shapes.${name}`, message: expect.stringContaining(`there is no step '${name}'`) }]),
      );
    });

    it('as a per-input answer, is not an input of the reference', async () => {
      await withKey(name, '/grade', { reference, at: { x: 3 }, submissions: [{ answers: { gradient: keyed(['x', 6], [name, 1]), derivative: keyed(['x', '2*x'], [name, '1']) } }] }, (res) => {
        const [result] = ok(res).results as Json[];
        expect(result).toMatchObject({ score: 2, max_score: 4, gradable: false });
        expect(result!.format_errors).toEqual([
          { part: `gradient.${name}`, message: expect.stringContaining(`'${name}' is not an input`) },
          { part: `derivative.${name}`, message: expect.stringContaining(`'${name}' is not an input`) },
        ]);
      });
    });

    it('in `required`, `ranges`, `points`, `tangents` and feedback, is no kind, step or input of the reference', async () => {
      for (const entry of [name, `forwardTrace.${name}`, `reverseTrace.${name}`, `shapes.${name}`, `gradient.${name}`, `derivative.${name}`]) {
        const body = problem(await grade({ required: [entry], submissions: [right] }), 422, 'unknown_input');
        expect(body.errors).toEqual([{ path: 'required.0', message: expect.stringContaining(`'${entry}'`) }]);
      }
      const feedback = problem(await post('/grade', { reference: { ...reference, feedback: [{ expr: 'x', message: 'no', wrt: name }] }, at: { x: 3 }, submissions: [right] }), 422, 'unknown_input');
      expect(feedback.detail).toContain(`names '${name}', which is not an input`);
      await withKey(name, '/grade', { reference, ranges: keyed([name, [0, 1]]), submissions: [right] }, (res) => {
        expect(problem(res, 422, 'unknown_input').detail).toContain(`ranges names '${name}'`);
      });
      await withKey(name, '/grade', { reference, points: [keyed(['x', 1], [name, 1])], submissions: [right] }, (res) => {
        expect(problem(res, 422, 'unknown_input').detail).toContain(`names '${name}', which is not an input`);
      });
      await withKey(name, '/grade', { reference, at: { x: 3 }, tangents: keyed([name, 1]), submissions: [right] }, (res) => {
        expect(problem(res, 422, 'unknown_input').detail).toContain(`tangents names '${name}'`);
      });
    });

    it('as a step of the reference, is graded like any other row', async () => {
      const named = { expr: `${name} = x * x\n${name} + 1` };
      const answers = {
        forwardTrace: [
          { id: 'x', value: 3, tangent: 1 },
          { id: name, value: 9, tangent: 5 },
        ],
        reverseTrace: [{ id: name, adjoint: 1 }],
      };
      const res = await post('/grade', { reference: named, at: { x: 3 }, required: [name, `forwardTrace.${name}.value`], submissions: [{ answers }] });
      const [result] = ok(res).results as Json[];
      expect(result!.gradable).toBe(true);
      const tests = Object.fromEntries((result!.tests as Json[]).map((t) => [t.part, t.status]));
      expect(tests).toEqual(
        keyed(['forwardTrace.x.value', 'passed'], ['forwardTrace.x.tangent', 'passed'], [`forwardTrace.${name}.value`, 'passed'], [`forwardTrace.${name}.tangent`, 'failed'], [`reverseTrace.${name}.adjoint`, 'passed'], [name, 'failed']),
      );
      await withKey(name, '/grade', { reference: named, at: { x: 3 }, submissions: [{ answers: { shapes: keyed([name, []]) } }] }, (r) =>
        expect((ok(r).results as Json[])[0]).toMatchObject({ gradable: true, score: 1, max_score: 1 }),
      );
    });

    it('as an input of the reference, is graded like any other input', async () => {
      const ref = { expr: `${name}^2 * x` };
      // Without a point the inputs are the reference's free names, and one input's answer may be given alone: no JSON key.
      const alone = await post('/grade', { reference: { expr: `${name}^2` }, submissions: [{ answers: { derivative: `2*${name}` } }, { answers: { derivative: `2 + ${name}` } }] });
      const [good, bad] = ok(alone).results as Json[];
      expect(good).toMatchObject({ gradable: true, score: 1, max_score: 1 });
      expect(good!.tests[0]).toMatchObject({ part: `derivative.${name}`, status: 'passed' });
      expect(bad).toMatchObject({ gradable: true, score: 0, max_score: 1 });
      const at = keyed([name, 3], ['x', 2]);
      const submission = { answers: { derivative: keyed([name, `2*${name}*x`], ['x', `${name}^2`]), gradient: keyed([name, 12], ['x', 9]) } };
      await withKey(name, '/grade', { reference: ref, at, ranges: keyed([name, [1, 2]]), required: ['gradient', `derivative.${name}`], submissions: [submission] }, (res) => {
        const body = ok(res);
        // What `required` names: gradient (both inputs) and one derivative; derivative.x is not asked for.
        expect((body.results as Json[])[0]).toMatchObject({ gradable: true, score: 3, max_score: 3 });
        expect(body.settings.ranges).toEqual(keyed([name, [1, 2]], ['x', [-2, 2]]));
        expect(Object.keys(body.points as object).sort()).toEqual([name, 'x'].sort());
      });
      // Required but not given: a failed test, not an answer read from Object.prototype.
      await withKey(name, '/grade', { reference: ref, at, required: ['gradient'], submissions: [{ answers: { gradient: { x: 9 } } }] }, (res) => {
        const [result] = ok(res).results as Json[];
        expect(result).toMatchObject({ gradable: true, score: 1, max_score: 2, format_errors: [] });
        expect((result!.tests as Json[]).find((t) => t.part === `gradient.${name}`)).toMatchObject({ status: 'failed' });
      });
      // Points given by the request: one that lacks the input is refused, even though Object.prototype has the name.
      await withKey(name, '/grade', { reference: ref, points: [{ x: 1 }], submissions: [submission] }, (res) =>
        expect(problem(res, 422, 'missing_input').detail).toContain(`no value for the input '${name}'`),
      );
      await withKey(name, '/grade', { reference: ref, points: [keyed([name, 1], ['x', 1])], submissions: [{ answers: { derivative: keyed([name, `2*${name}*x`]) } }] }, (res) =>
        expect((ok(res).results as Json[])[0]).toMatchObject({ gradable: true, score: 1 }),
      );
    });
  });

  it('is the input of a probe`s target expression', async () => {
    const res = await post('/probe', { target: { expr: `sum(${name}^2)` }, at: [1, 2], method: 'central' });
    const body = ok(res);
    expect(body.exact).toEqual([2, 4]);
    (body.gradient as number[]).forEach((g, i) => expect(g).toBeCloseTo([2, 4][i]!, 6));
    const scalar = ok(await post('/probe', { target: { expr: `${name}^2` }, at: 1.5, method: 'central' }));
    expect(scalar.exact).toBe(3);
  });
});

it('the names are every one of Object.prototype, and __proto__', () => {
  expect(NAMES).toEqual(expect.arrayContaining(['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__proto__', '__defineGetter__']));
});
