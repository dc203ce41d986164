// The committed MNIST demo model (src/demo): its fixture is what it says (an accurate classifier,
// trained by the script it names), the engine computes the same logits as plain loops, and the
// exact saliency map (reverse mode) agrees with central differences of the plain forward.

import { describe, expect, it } from 'vitest';
import { demoDigits, demoWeights, exactSaliency, logits, PIXELS } from '../../src/demo/model.js';
import { argmax, plainLogits, readPlainDigits, readPlainModel } from './plain-model.js';

const model = readPlainModel();
const digits = readPlainDigits();

describe('the MNIST demo model fixture', () => {
  it('classifies at least 8 of its 10 test digits, one per class, by a forward pass in plain loops', () => {
    expect(digits.map((d) => d.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const d of digits) {
      expect(d.pixels).toHaveLength(PIXELS);
      expect(d.pixels.every((p) => p >= 0 && p <= 1)).toBe(true);
    }
    const right = digits.filter((d) => argmax(plainLogits(model, d.pixels)) === d.label).length;
    expect(right).toBeGreaterThanOrEqual(8);
  });

  it('records how it was made and how well it did on the held-out digits', () => {
    expect(model.json.command).toMatch(/^npx tsx src\/demo\/train-mnist\.ts --seed=\d+ --epochs=\d+$/);
    expect(model.json.training.gradients).toMatch(/engine/);
    expect(model.json.accuracy.test).toBeGreaterThanOrEqual(0.9);
    expect(model.json.accuracy.testCount).toBeGreaterThanOrEqual(1000);
  });

  it('is what src/demo reads: the same weights and digits', () => {
    const weights = demoWeights();
    expect(Array.from(weights.W1.data)).toEqual(Array.from(model.W1));
    expect(Array.from(weights.b2.data)).toEqual(Array.from(model.b2));
    expect(demoDigits()).toEqual(digits);
  });
});

describe('the demo model through the engine', () => {
  it('gives the logits of plain loops, one image at a time and as a batch', () => {
    const batch = new Float64Array(digits.length * PIXELS);
    digits.forEach((d, i) => batch.set(d.pixels, i * PIXELS));
    const batched = logits({ shape: [digits.length, PIXELS], data: batch }).data;
    digits.forEach((d, i) => {
      const expected = plainLogits(model, d.pixels);
      const single = logits({ shape: [PIXELS], data: Float64Array.from(d.pixels) }).data;
      expected.forEach((z, k) => {
        expect(single[k]).toBeCloseTo(z, 11);
        expect(batched[i * 10 + k]).toBeCloseTo(z, 11);
      });
    });
  });

  it('gives the exact saliency map: central differences of the plain forward agree on sampled pixels', () => {
    const h = 1e-4;
    for (const d of [digits[0]!, digits[3]!, digits[7]!]) {
      for (const cls of [d.label, (d.label + 5) % 10]) {
        const exact = exactSaliency(d.pixels, cls);
        expect(exact).toHaveLength(PIXELS);
        // The three most salient pixels, a background corner and a pixel in the middle.
        const ranked = Array.from(exact.keys()).sort((a, b) => Math.abs(exact[b]!) - Math.abs(exact[a]!));
        for (const i of [...ranked.slice(0, 3), 0, 14 * 28 + 14]) {
          const up = [...d.pixels];
          const down = [...d.pixels];
          up[i]! += h;
          down[i]! -= h;
          const difference = (plainLogits(model, up)[cls]! - plainLogits(model, down)[cls]!) / (2 * h);
          expect(Math.abs(difference - exact[i]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(exact[i]!)));
        }
      }
    }
  });

  it('refuses an image of the wrong size or a class out of range', () => {
    expect(() => exactSaliency(digits[0]!.pixels.slice(1), 0)).toThrow(/784 pixels, got 783/);
    expect(() => exactSaliency(digits[0]!.pixels, 10)).toThrow(/integer from 0 to 9/);
  });
});
