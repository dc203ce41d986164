// Accuracy through the HTTP layer: a long sum is pairwise (10⁶ × 0.1 is 100000 to 1e-14, where
// a running sum is off by 1e-11), and derivatives that are tiny but not zero keep their digits.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { buildTestApp } from '../helpers.js';

/** Row-major float64 elements as the service's base64 encoding (written independently of the service). */
function encode(shape: number[], values: Float64Array): { dtype: 'float64'; shape: number[]; data: string } {
  return { dtype: 'float64', shape, data: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64') };
}

const relative = (got: number, want: number): number => Math.abs(got - want) / Math.abs(want);

describe('accuracy over HTTP', () => {
  let app: App;
  beforeAll(() => {
    app = buildTestApp({ WORKERS: 0, MAX_EVENT_LOOP_DELAY_MS: 0 });
  });
  afterAll(async () => {
    await app.close();
  });
  const post = async (url: string, payload: object) => {
    const res = await app.inject({ method: 'POST', url, payload });
    expect(res.statusCode, res.body).toBe(200);
    return JSON.parse(res.body) as { value: number; gradient?: Record<string, number[]> };
  };

  it('sums 10⁶ × 0.1 to 100000 within 1e-14 relative, and their mean to 0.1 within 1e-15', async () => {
    const x = encode([1_000_000], new Float64Array(1_000_000).fill(0.1));
    expect(relative((await post('/eval', { expr: 'sum(x)', at: { x } })).value, 1e5)).toBeLessThan(1e-14);
    expect(relative((await post('/eval', { expr: 'mean(x)', at: { x } })).value, 0.1)).toBeLessThan(1e-15);
    // Over the first axis of a matrix too (the reverse pass's sum over a broadcast axis has this layout).
    const m = encode([1000, 1000], new Float64Array(1_000_000).fill(0.1));
    const { gradient } = await post('/grad', { expr: 'sum(m * b)', at: { m, b: new Array<number>(1000).fill(1) }, wrt: ['b'] });
    for (const g of gradient!.b!) expect(relative(g, 100)).toBeLessThan(1e-14);
  });

  it('answers derivatives that are tiny but not zero (50-digit references)', async () => {
    // expm1'(-40) = e^-40, tanh'(-40) = sech²(40), sigmoid'(-40) = σ(40)σ(-40): 1 - tanh² and σ(1 - σ) give 0 or lose the digits.
    const cases: [string, number][] = [
      ['expm1(x)', 4.24835425529158899532923478286e-18],
      ['tanh(x)', 7.2194055513816606892485134294e-35],
      ['sigmoid(x)', 4.24835425529158895923220702595e-18],
    ];
    for (const [expr, want] of cases) {
      const { gradient } = await post('/grad', { expr: `sum(${expr})`, at: { x: [-40] } });
      expect(relative(gradient!.x![0]!, want), expr).toBeLessThan(1e-15);
    }
  });
});
