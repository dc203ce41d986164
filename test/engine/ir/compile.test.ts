// Compiled plans compute exactly what the interpreter computes (bit for bit), on every PyTorch
// fixture's value, gradient and Hessian programs; and the generated source carries no request text.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePlan } from '../../../src/engine/ir/compile.js';
import { interpret, makePlan, run, type Plan } from '../../../src/engine/ir/evaluate.js';
import { identityBlocks } from '../../../src/engine/ad/plan.js';
import { Engine } from '../../../src/engine/engine.js';
import { readPoint } from '../../../src/service/request.js';
import type { Tensor } from '../../../src/engine/tensor/tensor.js';

const fixtures = JSON.parse(readFileSync(new URL('../../fixtures/torch/cases.json', import.meta.url), 'utf8')) as {
  cases: { name: string; expr: string; at: Record<string, unknown>; gradient?: unknown; hessian?: unknown }[];
};
const engine = new Engine();

function sameBits(a: Tensor, b: Tensor): boolean {
  if (a.shape.join() !== b.shape.join() || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (!Object.is(a.data[i], b.data[i])) return false;
  return true;
}

function expectSame(plan: Plan, bindings: Map<string, Tensor>): void {
  const interpreted = interpret(plan, bindings);
  const compiled = compilePlan(plan)(bindings);
  expect(compiled.length).toBe(interpreted.length);
  compiled.forEach((t, i) => expect(sameBits(t, interpreted[i]!), `output ${i}`).toBe(true));
}

describe('compiled plans', () => {
  it.each(fixtures.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const point = readPoint(engine, { expr: c.expr, at: c.at }, c.at, ['at']);
    expectSame(point.prepared.valueProgram().plan, point.inputs);
    if (c.gradient) expectSame(point.prepared.gradientProgram(point.wrt).plan, point.inputs);
    if (c.hessian) {
      const n = [...point.inputs.values()].reduce((s, t) => s + t.data.length, 0);
      const program = point.prepared.secondOrderProgram(point.wrt, [n]);
      const seeds = identityBlocks(point.wrt.map((name) => point.inputs.get(name)!.shape));
      const bindings = new Map(point.inputs);
      point.wrt.forEach((name, i) => bindings.set(`tangent:${name}`, seeds[i]!));
      expectSame(program.plan, bindings);
    }
  });

  it('release every tensor after its last use, fused loops or not', () => {
    let loops = 0;
    for (const c of fixtures.cases.filter((f) => f.gradient)) {
      const point = readPoint(engine, { expr: c.expr, at: c.at }, c.at, ['at']);
      const plan = point.prepared.gradientProgram(point.wrt).plan;
      const source = compilePlan(plan).source;
      loops += source.split('for (').length - 1;
      const returned = new Set(source.match(/return \[(.*)\];/)![1]!.split(', '));
      for (const [, v] of source.matchAll(/^let (v\d+) =/gm)) {
        // A scalar input is read once as a number (s<id>): its one-element tensor is not released.
        const scalar = source.includes(`const s${v!.slice(1)} = ${v}.data[0];`);
        if (!returned.has(v!) && !scalar) expect(source, `${c.name}: ${v}`).toContain(`\n${v} = undefined;`);
      }
    }
    expect(loops).toBeGreaterThan(0);
  });

  it('are used from the second run of a plan on, with the same answers', () => {
    const point = readPoint(engine, { expr: 'sum(tanh(W @ x))^2 + x[0]', at: {} }, { W: [[1, 2], [3, 4]], x: [0.1, 0.2] }, ['at']);
    const plan = makePlan(point.prepared.gradientProgram(point.wrt).graph, point.prepared.gradientProgram(point.wrt).plan.outputs);
    const first = run(plan, point.inputs);
    expect(plan.compiled.runner).toBeUndefined();
    const second = run(plan, point.inputs);
    expect(plan.compiled.runner).toBeTruthy();
    second.forEach((t, i) => expect(sameBits(t, first[i]!)).toBe(true));
  });

  it('carry no request text in the generated source', () => {
    const hostile = 'x"); globalThis.pwned = 1; ("';
    const graph = {
      nodes: [
        { id: hostile, op: 'const', attrs: { value: [1.5, 2.5] } },
        { id: `${hostile}2`, op: 'mul', args: [hostile, 'x'] },
        { id: 'out', op: 'sum', args: [`${hostile}2`] },
      ],
      output: 'out',
    };
    const at = { x: [3, 4] };
    const point = readPoint(engine, { graph, at }, at, ['at']);
    const runner = compilePlan(point.prepared.gradientProgram(point.wrt).plan);
    expect(runner.source).not.toContain('pwned');
    expect(runner.source).not.toContain('1.5');
    expect(runner.source).toMatch(/^[\w\s"();=[\],.+\-*/<>!?:{}]*$/);
    expect(runner(point.inputs).map((t) => Array.from(t.data))).toEqual([[1.5 * 3 + 2.5 * 4], [1.5, 2.5]]);
    expect((globalThis as Record<string, unknown>).pwned).toBeUndefined();
  });
});
