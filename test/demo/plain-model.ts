// The committed MNIST demo model read and evaluated without the engine: the fixture's base64 decoded
// with Buffer and DataView, the network run with plain loops. What the demo's engine-computed
// logits, its server and its exact saliency are checked against.

import { readFileSync } from 'node:fs';

export interface PlainModel {
  json: { command: string; accuracy: { test: number; testCount: number }; training: { gradients: string } };
  /** W1 is 784 × 32 and W2 32 × 10, row-major. */
  W1: Float64Array;
  b1: Float64Array;
  W2: Float64Array;
  b2: Float64Array;
}

export interface PlainDigit {
  label: number;
  pixels: number[];
}

function decode(encoded: { dtype: string; shape: number[]; data: string }): Float64Array {
  const bytes = Buffer.from(encoded.data, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = encoded.shape.reduce((p, d) => p * d, 1);
  if (encoded.dtype !== 'float64' || bytes.length !== 8 * size) throw new Error('not a float64 array of its shape');
  return Float64Array.from({ length: size }, (_, i) => view.getFloat64(8 * i, true));
}

export function readPlainModel(): PlainModel {
  const json = JSON.parse(readFileSync(new URL('../../src/demo/mnist-model.json', import.meta.url), 'utf8'));
  const { W1, b1, W2, b2 } = json.weights;
  return { json, W1: decode(W1), b1: decode(b1), W2: decode(W2), b2: decode(b2) };
}

export function readPlainDigits(): PlainDigit[] {
  return JSON.parse(readFileSync(new URL('../../src/demo/mnist-digits.json', import.meta.url), 'utf8')).digits;
}

/** logits = tanh(x W1 + b1) W2 + b2, by loops. */
export function plainLogits(model: PlainModel, x: ArrayLike<number>): number[] {
  const hidden = model.b1.length;
  const classes = model.b2.length;
  const h = new Array<number>(hidden);
  for (let j = 0; j < hidden; j++) {
    let s = model.b1[j]!;
    for (let i = 0; i < x.length; i++) s += x[i]! * model.W1[i * hidden + j]!;
    h[j] = Math.tanh(s);
  }
  const z = new Array<number>(classes);
  for (let k = 0; k < classes; k++) {
    let s = model.b2[k]!;
    for (let j = 0; j < hidden; j++) s += h[j]! * model.W2[j * classes + k]!;
    z[k] = s;
  }
  return z;
}

export function argmax(z: readonly number[]): number {
  return z.indexOf(Math.max(...z));
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}
