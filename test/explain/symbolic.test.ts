// Symbolic tables (docs/symbolic.md): POST /trace with `"symbolic": true`. Question 1's product rule,
// section 5.1's function against mathjs's own derivative, section 5.3's recipe (every parent a term),
// the rule table against the op table, the limits, and 200 random scalar programs whose formulas,
// read back by the service's parser, evaluate to the numeric table's values.

import fc from 'fast-check';
import { all, create, derivative, parse, simplify, SymbolNode, type MathNode } from 'mathjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProgram, type Expr } from '../../src/engine/lang/index.js';
import { ENTRIES } from '../../src/engine/ops/table.js';
import { fromServiceExpr } from '../../src/explain/symbolic/convert.js';
import { RULES, UNSUPPORTED } from '../../src/explain/symbolic/rules.js';
import { MAX_SYMBOLIC_STEPS } from '../../src/explain/symbolic/table.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

type Json = Record<string, any>;
type Formula = { text: string; latex: string };

let app: App;
beforeAll(async () => {
  app = buildTestApp();
  await app.ready();
});
afterAll(() => app.close());

async function trace(payload: object): Promise<{ status: number; body: Json }> {
  const res = await app.inject({ method: 'POST', url: '/trace', payload });
  return { status: res.statusCode, body: res.json() as Json };
}

// Evaluation as JavaScript numbers (no complex results) with the service's extra functions.
const math = create(all, { predictable: true });
math.import({ sigmoid: (x: number) => 1 / (1 + Math.exp(-x)), softplus: (x: number) => Math.log1p(Math.exp(x)) }, { override: true });

/** A formula's text, read back by the service's own parser, as a mathjs node. */
function parsed(text: string): MathNode {
  const program = parseProgram(text);
  expect(program.statements).toHaveLength(1);
  return fromServiceExpr(program.statements[0]!.value as Expr, (name) => new SymbolNode(name));
}

function evaluate(text: string, scope: Record<string, unknown>): number {
  // Evaluated by the predictable instance (real results only, NaN where a real one has none).
  const value = math.parse(parsed(text).toString()).compile().evaluate({ ...scope }) as unknown;
  expect(typeof value, `${text} evaluates to a number`).toBe('number');
  return value as number;
}

function stepOf(body: Json, id: string): Json {
  const step = (body.steps as Json[]).find((s) => s.id === id);
  expect(step, id).toBeDefined();
  return step!;
}

/** Every formula of the answer parses with the service's parser, and has LaTeX. */
function everyFormula(body: Json, check: (f: Formula, where: string) => void): void {
  for (const step of body.steps as Json[]) {
    const sets = [step.symbolic, step.symbolic.expanded ?? {}];
    for (const set of sets) for (const key of ['value', 'tangent', 'adjoint']) if (set[key]) check(set[key] as Formula, `${step.id}.${key}`);
  }
}

const formulasParse = (body: Json): void =>
  everyFormula(body, (f, where) => {
    expect(() => parsed(f.text), where).not.toThrow();
    expect(f.latex.length, where).toBeGreaterThan(0);
  });

/** Two formulas agree at random points, with the unspecified functions replaced by random smooth ones. */
function sameFunction(got: string, want: string, names: string[], seed = 1): void {
  let s = seed;
  const rnd = (): number => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  for (let trial = 0; trial < 5; trial++) {
    const c = [rnd(), rnd(), rnd(), rnd()];
    const scope: Record<string, unknown> = {
      a: (x: number) => Math.sin(c[0]! * x) + c[1]!,
      d_a: (x: number) => c[0]! * Math.cos(c[0]! * x),
      b: (x: number) => Math.exp(c[2]! * x) + c[3]!,
      d_b: (x: number) => c[2]! * Math.exp(c[2]! * x),
    };
    for (const n of names) scope[n] = rnd() * 1.5;
    const g = evaluate(got, scope);
    const w = evaluate(want, scope);
    expect(Math.abs(g - w), `${got} vs ${want}`).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(w)));
  }
}

describe("Question 1: forward mode is the product rule", () => {
  it('a = a(x); b = b(x); a * b: the output tangent is a\'(x)·b(x) + a(x)·b\'(x), equivalent as mathjs decides', async () => {
    const { status, body } = await trace({ expr: 'a = a(x); b = b(x); a * b', symbolic: true });
    expect(status).toBe(200);
    formulasParse(body);
    const out = stepOf(body, body.output as string);
    // The recipe: both tangents carried, by the names of the program.
    expect(out.symbolic.tangent.text).toMatch(/dot_a/);
    expect(out.symbolic.tangent.text).toMatch(/dot_b/);
    const expanded = out.symbolic.expanded.tangent.text as string;
    const difference = simplify(parse(`(${expanded}) - (d_a(x) * b(x) + a(x) * d_b(x))`));
    expect(difference.toString()).toBe('0');
    sameFunction(expanded, 'd_a(x) * b(x) + a(x) * d_b(x)', ['x']);
    // The derivative of an unspecified function, in LaTeX.
    expect(out.symbolic.expanded.tangent.latex).toMatch(/a'\\left\(/);
    expect(body.symbolic.functions).toEqual([
      { name: 'a', arity: 1, derivatives: ['d_a'] },
      { name: 'b', arity: 1, derivatives: ['d_b'] },
    ]);
    // Reverse mode gives the same derivative at the input.
    sameFunction(stepOf(body, 'x').symbolic.expanded.adjoint.text, expanded, ['x'], 7);
  });

  it('a = x; b = x; a * b gives exactly 2 * x (the output tangent with dot_x = 1, and the adjoint of x)', async () => {
    const { body } = await trace({ expr: 'a = x; b = x; a * b', symbolic: true });
    const out = stepOf(body, body.output as string);
    expect(out.symbolic.expanded.tangent.text).toBe('2 * x');
    expect(stepOf(body, 'x').symbolic.expanded.adjoint.text).toBe('2 * x');
  });

  it('several arguments: d1_f / d2_f in text, ∂₁f in LaTeX', async () => {
    const { status, body } = await trace({ expr: 'f(x, y) * y', symbolic: true });
    expect(status).toBe(200);
    formulasParse(body);
    const f = (body.steps as Json[]).find((s) => s.op === 'f')!;
    expect(f.symbolic.tangent.text).toBe('d1_f(x, y) * dot_x + d2_f(x, y) * dot_y');
    expect(f.symbolic.tangent.latex).toContain('\\partial_{1} f');
  });
});

describe("Section 5.1's function and section 5.3's recipe", () => {
  const expr = 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; sqrt(x3) + cos(x3)';
  const reference = derivative('sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', 'x').toString();

  it('the output tangent and the adjoint of x are the derivative of sqrt(x² + exp(x²)) + cos(x² + exp(x²))', async () => {
    for (const simplifyFormulas of [true, false]) {
      const { status, body } = await trace({ expr, symbolic: true, simplify: simplifyFormulas });
      expect(status).toBe(200);
      formulasParse(body);
      sameFunction(stepOf(body, body.output as string).symbolic.expanded.tangent.text, reference, ['x']);
      sameFunction(stepOf(body, 'x').symbolic.expanded.adjoint.text, reference, ['x'], 3);
      // Common subexpressions keep the program's names.
      expect(stepOf(body, 'x2').symbolic.value.text).toBe('exp(x1)');
    }
  });

  it('unsimplified, each adjoint is the sum over its parents of parent adjoint × local partial', async () => {
    const { body } = await trace({ expr, symbolic: true, simplify: false, mode: 'reverse' });
    // x1 is used by x2 = exp(x1) and x3 = x1 + x2: two parents, two terms.
    expect(stepOf(body, 'x1').symbolic.adjoint.text).toBe('bar_x2 * exp(x1) + bar_x3 * 1');
    // x3 is used by sqrt and cos.
    const x3 = stepOf(body, 'x3').symbolic.adjoint.text as string;
    const root = parseProgram(x3).statements[0]!.value;
    expect(root.kind === 'binary' && root.op).toBe('+');
    expect(x3).toMatch(/^bar_v1 \* .*sqrt\(x3\).* \+ bar_v2 \* .*sin\(x3\)/);
    expect(stepOf(body, 'x').symbolic.tangent).toBeUndefined();
  });

  it('with `at`, the numbers stand beside the formulas', async () => {
    const { body } = await trace({ expr, symbolic: true, at: { x: 0.7 } });
    const plain = await trace({ expr, at: { x: 0.7 } });
    expect(body.steps.map((s: Json) => s.id)).toEqual(plain.body.steps.map((s: Json) => s.id));
    body.steps.forEach((s: Json, i: number) => {
      expect(s.value).toBe(plain.body.steps[i].value);
      expect(s.tangent).toBe(plain.body.steps[i].tangent);
      expect(s.adjoint).toBe(plain.body.steps[i].adjoint);
    });
  });
});

describe('the rule table', () => {
  it('every scalar elementwise op of the op table has a symbolic rule or is listed as unsupported', () => {
    const elementwise = Object.entries(ENTRIES).filter(([, def]) => def.scalar !== null).map(([name]) => name);
    expect(elementwise.length).toBeGreaterThan(20);
    for (const op of elementwise) expect(RULES.has(op) || UNSUPPORTED.has(op), op).toBe(true);
    for (const op of [...RULES.keys(), ...UNSUPPORTED.keys()]) expect(elementwise, op).toContain(op);
  });

  it.each([...RULES.keys()])('%s: the formulas agree with the numeric table', async (op) => {
    const arity = (ENTRIES as Record<string, { arity: unknown }>)[op]!.arity;
    const expr = arity === 1 ? `${op}(x)` : `${op}(x, y)`;
    const at: Record<string, number> = arity === 1 ? { x: 0.3 } : { x: 0.6, y: 1.3 };
    const { status, body } = await trace({ expr, symbolic: true, at });
    expect(status, JSON.stringify(body)).toBe(200);
    agreesWithNumbers(body, at);
  });

  it('an op without a rule is a 422 naming it', async () => {
    const { status, body } = await trace({ expr: 'x1 = x^2; relu(x1)', symbolic: true });
    expect(status).toBe(422);
    expect(body.code).toBe('symbolic_unsupported');
    expect(body.detail).toMatch(/relu/);
  });
});

describe('on a worker thread', () => {
  let pooled: App;
  beforeAll(async () => {
    pooled = buildTestApp({ WORKERS: 1, INLINE_FLOPS: 0, WORK_TIMEOUT_MS: 120_000 });
    await pooled.ready();
  }, 120_000);
  afterAll(() => pooled.close());

  it('the same table as inline, and the same refusals', async () => {
    const payload = { expr: 'a = a(x); b = b(x); a * b', symbolic: true };
    const there = await pooled.inject({ method: 'POST', url: '/trace', payload });
    expect(there.statusCode).toBe(200);
    expect(there.json()).toEqual((await trace(payload)).body);
    const refused = await pooled.inject({ method: 'POST', url: '/trace', payload: { expr: 'maximum(x, 1)', symbolic: true } });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().code).toBe('symbolic_unsupported');
  }, 120_000);
});

describe('names a client chooses', () => {
  it('names like __proto__, constructor and toString are steps, inputs and unspecified functions like any other', async () => {
    const { status, body } = await trace({ expr: '__proto__ = toString(constructor); __proto__ * hasOwnProperty(constructor)', symbolic: true });
    expect(status).toBe(200);
    formulasParse(body);
    expect(body.symbolic.functions.map((f: Json) => f.name)).toEqual(['toString', 'hasOwnProperty']);
    expect(stepOf(body, 'constructor').symbolic.adjoint.text).toMatch(/^bar___proto__ \* d_toString\(constructor\) \+ /);
  });

  it('dot_, bar_ and d_ names are reserved for inputs', async () => {
    const { status, body } = await trace({ expr: 'dot_x * 2', symbolic: true });
    expect(status).toBe(400);
    expect(body.detail).toMatch(/reserved/);
  });
});

describe('limits and refusals', () => {
  it('too many steps: 422 limit_exceeded with the reason', async () => {
    const expr = Array.from({ length: MAX_SYMBOLIC_STEPS + 1 }, (_, i) => `x${i + 1} = sin(${i === 0 ? 'x' : `x${i}`})`).join('; ') + `; x${MAX_SYMBOLIC_STEPS + 1}`;
    const { status, body } = await trace({ expr, symbolic: true });
    expect(status).toBe(422);
    expect(body.code).toBe('limit_exceeded');
    expect(body.detail).toMatch(/steps/);
  });

  it('a formula too big: expanded forms left out with a note, the recipes kept', async () => {
    // Each step uses the last twice: the expanded formula doubles in size at every step.
    const expr = Array.from({ length: 12 }, (_, i) => `x${i + 1} = ${i === 0 ? 'x' : `x${i}`} * sin(${i === 0 ? 'x' : `x${i}`})`).join('; ') + '; x12';
    const { status, body } = await trace({ expr, symbolic: true, simplify: false });
    expect(status).toBe(200);
    expect(body.symbolic.notes.length).toBeGreaterThan(0);
    expect(stepOf(body, 'x12').symbolic.expanded.tangent).toBeUndefined();
    // The recipe stays local: the product rule on x11 and its sine, by their names.
    expect(stepOf(body, 'x12').symbolic.tangent.text).toMatch(/^v\d+ \* dot_x11 \+ x11 \* dot_v\d+$/);
  });

  it('tensors, graphs and unspecified functions with numbers: 422 with the reason', async () => {
    const tensor = await trace({ expr: 'sum(X)', symbolic: true, at: { X: [1, 2] } });
    expect(tensor.status).toBe(422);
    expect(tensor.body.detail).toMatch(/scalar programs/);
    const unspecified = await trace({ expr: 'a(x)', symbolic: true, at: { x: 1 } });
    expect(unspecified.status).toBe(422);
    expect(unspecified.body.detail).toMatch(/'a' is an unspecified function/);
    const noPoint = await trace({ expr: 'x^2' });
    expect(noPoint.status).toBe(400);
  });
});

/** Every formula, read back and evaluated, equals the numeric table: recipes with the table's numbers, expanded forms with the inputs alone. */
function agreesWithNumbers(body: Json, at: Record<string, number>): void {
  const scope: Record<string, number> = {};
  for (const s of body.steps as Json[]) {
    scope[s.id] = s.value;
    if (s.tangent !== undefined) scope[`dot_${s.id}`] = s.tangent;
    if (s.adjoint !== undefined) scope[`bar_${s.id}`] = s.adjoint;
  }
  const near = (got: number, want: number, where: string): void => {
    expect(Math.abs(got - want), `${where}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));
  };
  for (const s of body.steps as Json[]) {
    for (const key of ['value', 'tangent', 'adjoint'] as const) {
      const recipe = s.symbolic[key] as Formula | undefined;
      if (recipe) near(evaluate(recipe.text, scope), s[key], `${s.id}.${key} = ${recipe.text}`);
      const expanded = s.symbolic.expanded?.[key] as Formula | undefined;
      if (expanded) near(evaluate(expanded.text, at), s[key], `${s.id}.${key} (expanded) = ${expanded.text}`);
    }
  }
}

// Random small scalar programs: each step a smooth op of earlier names, inputs or constants, as the
// language's fuzz test builds terms (test/routes/fuzz.test.ts), here always well defined.
const UNARY = ['sin', 'cos', 'tanh', 'sigmoid', 'atan', 'exp', 'softplus', 'sinh'];
const program = fc
  .array(
    fc.record({
      kind: fc.constantFrom('unary', 'binary', 'positive'),
      f: fc.constantFrom(...UNARY),
      op: fc.constantFrom('+', '-', '*', '/'),
      positive: fc.constantFrom('sqrt', 'log'),
      a: fc.nat(),
      b: fc.nat(),
      constant: fc.constantFrom('2', '0.5', '3', 'pi'),
      useConstant: fc.boolean(),
      named: fc.boolean(),
    }),
    { minLength: 1, maxLength: 4 },
  )
  .map((steps) => {
    const names = ['x', 'y'];
    const lines: string[] = [];
    steps.forEach((s, i) => {
      const a = names[s.a % names.length]!;
      // Any name, a itself included (x - x), or a constant (a divisor of constants only: 2 + cos(pi)).
      const b = s.useConstant ? s.constant : names[s.b % names.length]!;
      const value =
        s.kind === 'unary' ? `${s.f}(${a})` : s.kind === 'positive' ? `${s.positive}(1 + ${a}^2)` : s.op === '/' ? `${a} / (2 + cos(${b}))` : `${a} ${s.op} ${b}`;
      const id = s.named ? `x${i + 1}` : `t${i + 1}`;
      lines.push(`${id} = ${value}`);
      names.push(id);
    });
    lines.push(names.slice(-2).join(' * '));
    return lines.join('; ');
  });

describe('200 random scalar programs', () => {
  it('every formula, parsed by the service and evaluated, equals the numeric table at random points (1e-12 relative)', async () => {
    let count = 0;
    await fc.assert(
      fc.asyncProperty(program, fc.double({ min: -1.5, max: 1.5, noNaN: true }), fc.double({ min: -1.5, max: 1.5, noNaN: true }), fc.boolean(), async (expr, x, y, simplifyFormulas) => {
        const at = { x, y };
        const { status, body } = await trace({ expr, symbolic: true, at, simplify: simplifyFormulas, tangents: { x: 1, y: 0.5 } });
        expect(status, `${expr}: ${JSON.stringify(body)}`).toBe(200);
        count++;
        agreesWithNumbers(body, at);
      }),
      { numRuns: 200, seed: 25 },
    );
    expect(count).toBe(200);
  }, 600_000);
});
