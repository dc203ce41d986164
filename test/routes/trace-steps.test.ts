// /trace's rows are the program as written, and each row's value, tangent and adjoint are those of
// THAT step: two steps computing the same thing are two rows with their own adjoints (an adjoint is
// the sum over the step's own users), and a step the optimiser could skip (x / 1, x * 1) or fold is
// still its own row. Closed forms for the lecture's examples and two tensor ones; then random scalar programs, full of
// repeated steps, x - x and constant divisors, checked row by row against an unrolled evaluation of
// the rows in which that one step is perturbed (its adjoint) or the inputs are (its tangent).

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

type Step = { id: string; op: string; args: (string | number)[]; shape: number[]; value: number; tangent?: number; adjoint?: number };
type Body = { steps: Step[]; output: string };

let app: App;
beforeAll(async () => {
  app = buildTestApp();
  await app.ready();
});
afterAll(() => app.close());

async function trace(payload: object): Promise<Body> {
  const res = await app.inject({ method: 'POST', url: '/trace', payload });
  expect(res.statusCode, `${JSON.stringify(payload)}: ${res.body}`).toBe(200);
  return res.json() as Body;
}

const stepOf = (body: Body, id: string): Step => {
  const step = body.steps.find((s) => s.id === id);
  expect(step, id).toBeDefined();
  return step!;
};

describe('each row is its own step', () => {
  it('t1 = sqrt(1 + y^2); t2 = sqrt(1 + y^2); t1 * t2: bar_t1 = t2, bar_t2 = t1, every row of each copy its own', async () => {
    const y = 0.3;
    const body = await trace({ expr: 't1 = sqrt(1 + y^2); t2 = sqrt(1 + y^2); t1 * t2', at: { y }, mode: 'both' });
    const s = Math.sqrt(1 + y * y);
    const ds = y / s; // d sqrt(1 + y²)/dy
    expect(body.steps.map((r) => r.op)).toEqual(['input', 'pow', 'add', 'sqrt', 'pow', 'add', 'sqrt', 'mul']);
    const [, p1, a1, t1, p2, a2, t2, out] = body.steps as [Step, Step, Step, Step, Step, Step, Step, Step];
    expect(t1.id).toBe('t1');
    expect(t2.id).toBe('t2');
    expect(t1.adjoint).toBeCloseTo(t2.value, 14);
    expect(t2.adjoint).toBeCloseTo(t1.value, 14);
    expect(t1.adjoint).toBeCloseTo(s, 14);
    // Each 1 + y² feeds its own sqrt only: bar = bar_t / (2 t), the same for each copy, and y² likewise.
    for (const [add, pow, t, other] of [[a1, p1, t1, t2], [a2, p2, t2, t1]] as const) {
      expect(add.adjoint).toBeCloseTo(other.value / (2 * t.value), 14);
      expect(pow.adjoint).toBeCloseTo(other.value / (2 * t.value), 14);
      expect(t.tangent).toBeCloseTo(ds, 14);
      expect(pow.tangent).toBeCloseTo(2 * y, 14);
    }
    expect(out.adjoint).toBe(1);
    expect(out.tangent).toBeCloseTo(2 * s * ds, 14);
    // bar_y = 2 t1 t2' (from both copies: y's own users are the two y² steps).
    expect(stepOf(body, 'y').adjoint).toBeCloseTo(2 * s * ds, 14);
  });

  it('reverse mode alone gives the same adjoints as both modes', async () => {
    const expr = 't1 = sqrt(1 + y^2); t2 = sqrt(1 + y^2); t1 * t2';
    const both = await trace({ expr, at: { y: 0.3 }, mode: 'both' });
    const reverse = await trace({ expr, at: { y: 0.3 }, mode: 'reverse' });
    expect(reverse.steps.map((s) => s.adjoint)).toEqual(both.steps.map((s) => s.adjoint));
  });

  it('a dead step (x / (2 + cos(pi)), a division by 1) is a row with its own adjoint, not x\'s', async () => {
    const x = 0.7;
    const body = await trace({ expr: 'v = x / (2 + cos(pi)); v * x', at: { x }, mode: 'both' });
    const v = stepOf(body, 'v');
    expect(v.op).toBe('div');
    expect(v.args).toEqual(['x', 1]);
    expect(v.value).toBe(x);
    expect(v.tangent).toBe(1);
    expect(v.adjoint).toBeCloseTo(x, 14); // ∂(v·x)/∂v = x
    expect(stepOf(body, 'x').adjoint).toBeCloseTo(2 * x, 14); // v + x·∂v/∂x
  });

  it('a step the optimiser would drop (a = x * (3 - 2)) keeps its row and its adjoint', async () => {
    const x = 0.7;
    const y = -1.1;
    const body = await trace({ expr: 'a = x * (3 - 2); b = a + x; b * y', at: { x, y }, mode: 'both' });
    const a = stepOf(body, 'a');
    expect([a.op, a.args]).toEqual(['mul', ['x', 1]]);
    expect(a.adjoint).toBeCloseTo(y, 14); // a feeds b only, and ∂(b·y)/∂b = y
    expect(stepOf(body, 'b').adjoint).toBeCloseTo(y, 14);
    expect(stepOf(body, 'x').adjoint).toBeCloseTo(2 * y, 14);
    expect(stepOf(body, 'b').tangent).toBe(2);
  });

  it('x - x: value 0, tangent 0, its own adjoint; x\'s adjoint through it is 0', async () => {
    const x = 0.7;
    const y = 1.3;
    const body = await trace({ expr: 'd = x - x; e = d + y; e * y', at: { x, y }, mode: 'both', tangents: { x: 1, y: 0 } });
    const d = stepOf(body, 'd');
    expect([d.op, d.args, d.value, d.tangent]).toEqual(['sub', ['x', 'x'], 0, 0]);
    expect(d.adjoint).toBeCloseTo(y, 14);
    expect(stepOf(body, 'e').adjoint).toBeCloseTo(y, 14);
    expect(stepOf(body, 'x').adjoint).toBe(0);
    expect(stepOf(body, 'y').adjoint).toBeCloseTo(2 * y, 14); // e + y
  });

  it('three equal steps sin(x), two in a product and one added, keep their own adjoints', async () => {
    const x = 0.4;
    const body = await trace({ expr: 'a = sin(x); b = sin(x); c = sin(x); a * b + c', at: { x }, mode: 'reverse' });
    const s = Math.sin(x);
    expect(stepOf(body, 'a').adjoint).toBeCloseTo(s, 14);
    expect(stepOf(body, 'b').adjoint).toBeCloseTo(s, 14);
    expect(stepOf(body, 'c').adjoint).toBe(1);
    expect(stepOf(body, 'x').adjoint).toBeCloseTo((2 * s + 1) * Math.cos(x), 14);
  });
});

describe('tensors', () => {
  const W = [[1, 2], [3, 4]];
  const x = [0.5, -1];
  const Wx = [W[0]![0]! * x[0]! + W[0]![1]! * x[1]!, W[1]![0]! * x[0]! + W[1]![1]! * x[1]!];
  const WTx = [W[0]![0]! * x[0]! + W[1]![0]! * x[1]!, W[0]![1]! * x[0]! + W[1]![1]! * x[1]!];

  it('A = W @ x; B = W @ x; sum(A * B): bar_A = B and bar_B = A, elementwise', async () => {
    const body = await trace({ expr: 'A = W @ x; B = W @ x; sum(A * B)', at: { W, x }, mode: 'reverse' });
    expect(stepOf(body, 'A').adjoint).toEqual(Wx);
    expect(stepOf(body, 'B').adjoint).toEqual(Wx);
    // bar_x = Wᵀ (bar_A + bar_B) = 2 Wᵀ W x
    const twice = Wx.map((v) => 2 * v);
    expect(stepOf(body, 'x').adjoint).toEqual([W[0]![0]! * twice[0]! + W[1]![0]! * twice[1]!, W[0]![1]! * twice[0]! + W[1]![1]! * twice[1]!]);
  });

  it('T = W.T; y = T @ x; sum(y): the transpose is a row with its own adjoint (ȳ xᵀ)', async () => {
    const body = await trace({ expr: 'T = W.T; y = T @ x; sum(y)', at: { W, x }, mode: 'both', tangents: { W: [[0, 0], [0, 0]], x: [1, 0] } });
    const T = stepOf(body, 'T');
    expect(T.value).toEqual([[1, 3], [2, 4]]);
    expect(stepOf(body, 'y').value).toEqual(WTx);
    expect(T.adjoint).toEqual([x, x]); // ∂ sum(T x)/∂T[i][j] = x[j]
    expect(stepOf(body, 'W').adjoint).toEqual([[x[0], x[0]], [x[1], x[1]]]);
    expect(stepOf(body, 'y').tangent).toEqual([1, 2]); // T's first column
  });
});

// --- an unrolled evaluation of the rows ----------------------------------------------------

const softplus = (v: number): number => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
const FUNCTIONS: Record<string, (...a: number[]) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  neg: (a) => -a,
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  atan: Math.atan,
  exp: Math.exp,
  sinh: Math.sinh,
  sqrt: Math.sqrt,
  log: Math.log,
  sigmoid: (a) => 1 / (1 + Math.exp(-a)),
  softplus,
};

/**
 * The rows evaluated in order from the inputs, with row `k` (if given) moved by `h` after it is
 * computed; the output's value.
 */
function unrolled(steps: readonly Step[], output: string, inputs: Record<string, number>, k = -1, h = 0): number {
  const value = new Map<string, number>();
  steps.forEach((s, i) => {
    let v: number;
    if (s.op === 'input') v = inputs[s.id]!;
    else {
      const f = FUNCTIONS[s.op];
      if (!f) throw new Error(`no reference for the op '${s.op}'`);
      v = f(...s.args.map((a) => (typeof a === 'number' ? a : value.get(a)!)));
    }
    value.set(s.id, i === k ? v + h : v);
  });
  return value.get(output)!;
}

/** Central difference of `f` at 0, step `h`. */
const central = (f: (h: number) => number, h: number): number => (f(h) - f(-h)) / (2 * h);

// Random scalar programs as a student writes them: smooth steps of earlier names or constants, often
// repeating an earlier step word for word, subtracting a name from itself, or dividing by a constant.
const UNARY = ['sin', 'cos', 'tanh', 'sigmoid', 'atan', 'exp', 'softplus', 'sqrt(1 + ', 'log(1 + '];
const program = fc
  .array(
    fc.record({
      kind: fc.constantFrom('unary', 'binary', 'self', 'constantDivisor', 'repeat', 'repeat'),
      f: fc.nat(UNARY.length - 1),
      op: fc.constantFrom('+', '-', '*', '/'),
      a: fc.nat(),
      b: fc.nat(),
      constant: fc.constantFrom('2', '0.5', '(3 - 2)', 'pi'),
      useConstant: fc.boolean(),
      named: fc.boolean(),
    }),
    { minLength: 1, maxLength: 6 },
  )
  .map((steps) => {
    const names = ['x', 'y'];
    const texts: string[] = [];
    const lines: string[] = [];
    steps.forEach((s, i) => {
      const a = names[s.a % names.length]!;
      const b = s.useConstant ? s.constant : names[s.b % names.length]!;
      const f = UNARY[s.f]!;
      const unary = f.endsWith('+ ') ? `${f}${a}^2)` : `${f}(${a})`;
      let text: string;
      if (s.kind === 'repeat' && texts.length > 0) text = texts[s.b % texts.length]!;
      else if (s.kind === 'unary') text = unary;
      else if (s.kind === 'self') text = `${a} ${s.op === '/' ? '-' : s.op} ${a}`;
      else if (s.kind === 'constantDivisor') text = `${a} / (2 + cos(${s.constant}))`;
      else text = s.op === '/' ? `${a} / (2 + cos(${b}))` : `${a} ${s.op} ${b}`;
      texts.push(text);
      const id = s.named ? `x${i + 1}` : `t${i + 1}`;
      lines.push(`${id} = ${text}`);
      names.push(id);
    });
    // The last two names' product, or the last one alone when there is only one step.
    lines.push(names.length > 3 ? names.slice(-2).join(' * ') : names.at(-1)!);
    return lines.join('; ');
  });

const point = fc.double({ min: -1.2, max: 1.2, noNaN: true });

describe('random programs, row by row', () => {
  it('every row\'s value, tangent and adjoint match an unrolled evaluation with that step (or the inputs) perturbed', async () => {
    await fc.assert(
      fc.asyncProperty(program, point, point, async (expr, x, y) => {
        const tangents = { x: 1, y: -0.5 };
        const cotangent = 0.75;
        const body = await trace({ expr, at: { x, y }, mode: 'both', tangents, cotangent });
        const { steps, output } = body;
        const near = (got: number | undefined, want: number, what: string): void => {
          expect(Math.abs(got! - want), `${expr} at x=${x}, y=${y}: ${what}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-8 * Math.max(1, Math.abs(want)));
        };
        const at = { x, y };
        near(steps.find((s) => s.id === output)!.value, unrolled(steps, output, at), 'the output');
        steps.forEach((s, k) => {
          // The value: the rows up to this one, evaluated as written.
          near(s.value, unrolled(steps.slice(0, k + 1), s.id, at), `${s.id}.value`);
          // The tangent: d(step)/dh with the inputs moved along the tangents.
          const hx = 1e-5;
          const moved = (h: number): number => unrolled(steps.slice(0, k + 1), s.id, { x: x + h * tangents.x, y: y + h * tangents.y });
          near(s.tangent, central(moved, hx), `${s.id}.tangent`);
          // The adjoint: the output's change when this one step (alone) is moved, times the cotangent.
          const h = 1e-5 * Math.max(1, Math.abs(s.value));
          near(s.adjoint, cotangent * central((d) => unrolled(steps, output, at, k, d), h), `${s.id}.adjoint`);
        });
      }),
      { numRuns: 300, seed: 7 },
    );
  }, 600_000);
});
