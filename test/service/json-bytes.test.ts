// Large answers' JSON written as bytes (src/service/json-bytes.ts) and requests' inputs read once
// and moved to a worker (readInputsOnce): both must change nothing but the time they take.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { toTensor } from '../../src/engine/values.js';
import { jsonBytes } from '../../src/service/json-bytes.js';
import { planRequest, readInputsOnce } from '../../src/service/request.js';

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** A base64-looking string of `length` characters (long ones are set aside), maybe padded. */
const base64Text = (length: number) =>
  fc.tuple(fc.array(fc.constantFrom(...BASE64), { minLength: length, maxLength: length }), fc.constantFrom('', '=', '==')).map(([cs, pad]) => cs.join('') + pad);
/** A long string that must not be set aside: one character needs escaping or is not ASCII. */
const longOther = fc.tuple(base64Text(70_000), fc.constantFrom('"', '\\', 'é', '\n', '\u2028', ' ', '😀'), fc.nat(69_999)).map(([text, c, at]) => text.slice(0, at) + c + text.slice(at));

const answerLike: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.double(),
    fc.constantFrom('NaN', 'Infinity', 'aside-0123456789abcdef:0', null, true, 'x"y', 'é'),
    fc.oneof(base64Text(3), base64Text(66_000), longOther),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.double(), { maxLength: 20 }),
    fc.dictionary(fc.constantFrom('data', 'gradient', 'x', '__proto__ ', 'é'), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('jsonBytes', () => {
  it('writes the bytes JSON.stringify gives, long base64 strings and all, and leaves the value as it was', () => {
    fc.assert(
      fc.property(answerLike, (value) => {
        const before = JSON.stringify(value);
        const bytes = jsonBytes(value);
        expect(Buffer.from(bytes).equals(Buffer.from(before ?? 'null', 'utf8'))).toBe(true);
        expect(JSON.stringify(value)).toBe(before);
      }),
      { numRuns: 60 },
    );
  });

  it('owns its memory (it may be moved to another thread), large or small', () => {
    for (const value of [{ x: 1 }, { data: 'A'.repeat(1 << 17) }]) {
      const bytes = jsonBytes(value);
      expect(bytes.byteOffset).toBe(0);
      expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    }
  });

  it('keeps an encoded gradient exact', () => {
    const values = Float64Array.from({ length: 20_000 }, (_, i) => Math.sin(i) * 1e-300 * (i % 7 === 0 ? -1 : 1));
    const answer = { value: 1.5, gradient: { W: { dtype: 'float64', shape: [100, 200], data: Buffer.from(values.buffer).toString('base64') } } };
    const parsed = JSON.parse(Buffer.from(jsonBytes(answer)).toString('utf8')) as typeof answer;
    const bytes = Buffer.from(parsed.gradient.W.data, 'base64');
    expect(new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8)).toEqual(values);
  });
});

describe('readInputsOnce', () => {
  const engine = new Engine();
  const encoded = (values: number[], shape: number[]) => ({ dtype: 'float64', shape, data: Buffer.from(Float64Array.from(values).buffer).toString('base64') });

  it('gives the same answers as reading the request while planning, and moves only memory it read', () => {
    const request = {
      expr: 'sum(A @ x) + y',
      at: { A: encoded([1, 2, 3, 4, 5, 6], [2, 3]), x: [0.5, -1, 2], y: 3 },
      encoding: 'base64' as const,
    };
    const read = readInputsOnce(engine, request);
    expect(read.request.at).not.toBe(request.at);
    expect(request.at.x).toEqual([0.5, -1, 2]);
    expect(read.transfer).toHaveLength(3);
    expect(planRequest(engine, 'grad', read.request).run()).toEqual(planRequest(engine, 'grad', request).run());
    // Read again, the tensors are the caller's: none of their memory may move.
    expect(readInputsOnce(engine, read.request).transfer).toHaveLength(0);
  });

  it('reads every point of `points`, and raises the errors planning would, at the same paths', () => {
    const points = { expr: 'x * y', points: [{ x: 1, y: 2 }, { x: [1, 2], y: 3 }] };
    const read = readInputsOnce(engine, points);
    expect(planRequest(engine, 'eval', read.request).run()).toEqual(planRequest(engine, 'eval', points).run());
    for (const bad of [
      { expr: 'x', at: { x: [[1, 2], [3]] } },
      { expr: 'x', at: { x: { dtype: 'float64', shape: [2], data: 'AAAA' } } },
      { expr: 'x', points: [{ x: 1 }, { x: 'one' }] },
    ]) {
      const planned = (() => {
        try {
          planRequest(engine, 'eval', bad);
        } catch (e) {
          return e;
        }
      })();
      expect(() => readInputsOnce(engine, bad)).toThrow(planned as Error);
      expect((planned as { path: unknown }).path).toBeDefined();
    }
  });

  it('refuses a read array whose elements do not fill its shape', () => {
    expect(() => toTensor({ dtype: 'float64', shape: [3], data: new Float64Array(2) }, ['at', 'x'])).toThrow(/holds 2 elements, but shape \[3\] needs 3/);
  });
});
