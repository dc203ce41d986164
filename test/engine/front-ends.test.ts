// The two front ends (expressions and JSON graphs): they lower to the same computation, every
// error is precise (line and column, or the node id), and printing a parsed program then parsing
// it again gives the same graph.

import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { planRequest } from '../../src/service/request.js';
import { parseProgram, printProgram } from '../../src/engine/lang/index.js';
import { Prepared, DEFAULT_LIMITS } from '../../src/engine/prepare.js';
import type { Node } from '../../src/engine/ir/graph.js';
import { engineFailure } from './harness.js';

const engine = new Engine();

const grad = (expr: string, at: Record<string, unknown>) => planRequest(engine, 'grad', { expr, at }).run();

describe('expressions', () => {
  it('the three lecture forms of f agree', () => {
    const at = { x: 0.7 };
    const a = grad('sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at);
    const b = grad('x1 = x^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x4 + x5', at);
    const c = planRequest(engine, 'grad', {
      graph: {
        nodes: [
          { id: 'x1', op: 'pow', args: ['x', 2] },
          { id: 'x2', op: 'exp', args: ['x1'] },
          { id: 'x3', op: 'add', args: ['x1', 'x2'] },
          { id: 'x4', op: 'sqrt', args: ['x3'] },
          { id: 'x5', op: 'cos', args: ['x3'] },
          { id: 'x6', op: 'add', args: ['x4', 'x5'] },
        ],
        output: 'x6',
      },
      at,
    }).run();
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('binds names in order: assignments, then inputs, then pi and e', () => {
    expect(planRequest(engine, 'eval', { expr: 'pi + e', at: {} }).run().value).toBeCloseTo(Math.PI + Math.E, 15);
    expect(planRequest(engine, 'eval', { expr: 'e = 2; e * pi', at: {} }).run().value).toBeCloseTo(2 * Math.PI, 15);
    expect(planRequest(engine, 'eval', { expr: 'pi * 2', at: { pi: 3 } }).run().value).toBe(6);
  });

  it('keeps assigned names and generates stable ids for the rest', () => {
    const p = new Prepared({ expr: 'a = x * 2\nb = sin(a) + x\nb * b' }, [{ name: 'x', shape: [] }], DEFAULT_LIMITS);
    const labels = p.primal.nodes.filter((n) => n.op !== 'const').map((n) => `${n.label}:${n.op}`);
    expect(labels).toEqual(['x:input', 'a:mul', 'v1:sin', 'b:add', 'v2:mul']);
  });

  it('gives an unused input a zero gradient', () => {
    expect(grad('x^2', { x: 3, unused: [1, 2] })).toEqual({ value: 9, gradient: { x: 6, unused: [0, 0] } });
  });

  it.each([
    ['x +', 1, 'parse_error'],
    ['y = x\nz + 1', 2, 'unknown_input'],
    ['a = 1\nfoo(x)', 2, 'unknown_function'],
    ['sum(x, axis=0, keepdim=True)', 1, 'parse_error'],
    ['x @ [1, 2, 3]', 1, 'shape_mismatch'],
    ['\n\nX[5]', 3, 'shape_mismatch'],
    ['[[1, 2], [3]]', 1, 'parse_error'],
    ['exp(x, x)', 1, 'parse_error'],
    ['reshape(x, [3, 3])', 1, 'shape_mismatch'],
  ])('%j fails with a position on line %i (%s)', (expr, line, code) => {
    const e = engineFailure(() => planRequest(engine, 'eval', { expr, at: { x: [1, 2], X: [1, 2, 3] } }));
    expect(e.code).toBe(code);
    expect(e.position?.line).toBe(line);
    expect(e.message).toMatch(/line \d+, column \d+/);
  });

  it('names both shapes when they do not fit', () => {
    const e = engineFailure(() => planRequest(engine, 'eval', { expr: 'A @ B', at: { A: [[1, 2, 3]], B: [[1, 2]] } }));
    expect(e.code).toBe('shape_mismatch');
    expect(e.message).toContain('[1, 3]');
    expect(e.message).toContain('[1, 2]');
  });

  it('refuses a non-scalar output for a gradient', () => {
    expect(engineFailure(() => grad('x * 2', { x: [1, 2] })).code).toBe('not_scalar');
  });

  it('lowers a 20,000-term chain without overflowing the stack', () => {
    const expr = Array.from({ length: 20_000 }, () => 'x').join(' + ');
    expect(grad(expr, { x: 1 })).toEqual({ value: 20_000, gradient: { x: 20_000 } });
  });

  it.each([
    'x1 = l[0]^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x4 + x5',
    'D = (X[:, None, 0] - X[None, :, 0])^2; K = exp(-D / (2 * l[0]^2)); sum(K @ X[:, 1]) + -l[1]^-2',
    'a = softmax(X, axis=0); sum(a * log(a)) - logsumexp(X[1:, ::-1])',
    'mean(tanh(X @ X.T + 1)^2, axis=[0, 1], keepdims=True)[0, 0] * (l[0] > 0)',
  ])('printing %j and parsing it again gives the same graph', (source) => {
    const at = { X: [[0.1, 0.2], [0.3, -0.4], [1.5, 0.6]], l: [0.9, 1.1] };
    const shapes = [
      { name: 'X', shape: [3, 2] },
      { name: 'l', shape: [2] },
    ];
    const graph = (src: string) =>
      new Prepared({ expr: src }, shapes, DEFAULT_LIMITS).primal.nodes.map(({ op, args, shape, label }: Node) => ({ op, args, shape, label }));
    const printed = printProgram(parseProgram(source));
    expect(graph(printed)).toEqual(graph(source));
    expect(grad(printed, at)).toEqual(grad(source, at));
  });
});

describe('JSON graphs', () => {
  const at = { x: 2 };
  const run = (nodes: unknown[], output = 'out') => planRequest(engine, 'eval', { graph: { nodes, output } as never, at }).run();

  it.each([
    ['a duplicate id', [{ id: 'a', op: 'exp', args: ['x'] }, { id: 'a', op: 'sin', args: ['x'] }], 'invalid_graph', 'a'],
    ['an unknown op', [{ id: 'a', op: 'expo', args: ['x'] }], 'unknown_function', 'a'],
    ['an undefined argument', [{ id: 'a', op: 'exp', args: ['y'] }], 'unknown_input', 'a'],
    ['a cycle', [{ id: 'a', op: 'exp', args: ['b'] }, { id: 'b', op: 'sin', args: ['a'] }], 'invalid_graph', 'a'],
    ['a wrong arity', [{ id: 'a', op: 'add', args: ['x'] }], 'invalid_graph', 'a'],
    ['an unknown attribute', [{ id: 'a', op: 'sum', args: ['x'], attrs: { axes: 0 } }], 'invalid_graph', 'a'],
    ['a badly typed attribute', [{ id: 'a', op: 'sum', args: ['x'], attrs: { axis: 'rows' } }], 'invalid_graph', 'a'],
    ['shapes that do not fit', [{ id: 'v', op: 'const', attrs: { value: [1, 2] } }, { id: 'a', op: 'matmul', args: ['v', 'x'] }], 'shape_mismatch', 'a'],
  ])('names the node for %s', (_what, nodes, code, node) => {
    const e = engineFailure(() => run(nodes, (nodes as { id: string }[]).at(-1)!.id));
    expect(e.code).toBe(code);
    expect(e.node).toBe(node);
    expect(e.message).toContain(`'${node}'`);
  });

  it('accepts nodes in any order, attributes and constants', () => {
    const out = run(
      [
        { id: 'out', op: 'sum', args: ['s'], attrs: { axis: 0 } },
        { id: 's', op: 'mul', args: ['v', 'x'] },
        { id: 'v', op: 'const', attrs: { value: [[1, 2], [3, 4]] } },
      ],
      'out',
    );
    expect(out).toEqual({ value: [8, 12], shape: [2] });
  });
});
