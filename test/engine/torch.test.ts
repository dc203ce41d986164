// The engine against an independent oracle: values, gradients, Hessians, JVPs and VJPs that
// PyTorch (float64) computed for 200 programs of the expression language covering every function
// of the expression language (test/fixtures/torch/generate.py; committed, so CI needs no PyTorch).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { planRequest } from '../../src/service/request.js';

interface TorchCase {
  name: string;
  expr: string;
  at: Record<string, unknown>;
  value: unknown;
  gradient?: Record<string, unknown>;
  hessian?: Record<string, Record<string, unknown>>;
  cotangent?: unknown;
  vjp?: Record<string, unknown>;
  tangents?: Record<string, unknown>;
  jvp?: unknown;
}

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/torch/cases.json', import.meta.url), 'utf8')) as { cases: TorchCase[] };
const engine = new Engine();

function flat(v: unknown): number[] {
  if (Array.isArray(v)) return v.flatMap(flat);
  if (typeof v === 'number') return [v];
  return [Number(v)];
}

/** Same nesting, and every number within 1e-9 relative to the tensor's largest element. */
function expectClose(got: unknown, want: unknown, what: string): void {
  expect(JSON.stringify(shapeOf(got)), `${what}: shape`).toBe(JSON.stringify(shapeOf(want)));
  const g = flat(got);
  const w = flat(want);
  const scale = Math.max(1, ...w.map(Math.abs));
  g.forEach((x, i) => expect(Math.abs(x - w[i]!), `${what}[${i}]: ${x} vs ${w[i]}`).toBeLessThanOrEqual(1e-9 * scale));
}

function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

describe('PyTorch fixtures', () => {
  it('cover at least 150 programs', () => expect(fixtures.cases.length).toBeGreaterThanOrEqual(150));

  it.each(fixtures.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const base = { expr: c.expr, at: c.at };
    const value = planRequest(engine, 'eval', base).run();
    expectClose(value.value, c.value, 'value');
    if (c.gradient) {
      const grad = planRequest(engine, 'grad', base).run();
      for (const [name, want] of Object.entries(c.gradient)) expectClose((grad.gradient as Record<string, unknown>)[name], want, `gradient.${name}`);
    }
    if (c.hessian) {
      const hess = planRequest(engine, 'hessian', base).run().hessian as Record<string, Record<string, unknown>>;
      for (const [a, row] of Object.entries(c.hessian)) {
        for (const [b, want] of Object.entries(row)) expectClose(hess[a]![b], want, `hessian.${a}.${b}`);
      }
    }
    if (c.vjp) {
      const out = planRequest(engine, 'vjp', { ...base, cotangent: c.cotangent }).run().vjp as Record<string, unknown>;
      for (const [name, want] of Object.entries(c.vjp)) expectClose(out[name], want, `vjp.${name}`);
    }
    if (c.jvp !== undefined) {
      const out = planRequest(engine, 'jvp', { ...base, tangents: c.tangents! }).run();
      expectClose(out.tangent, c.jvp, 'jvp');
    }
  });
});
