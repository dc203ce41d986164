// The MNIST demo model: a 784 → 32 → 10 tanh network trained by src/demo/train-mnist.ts with this
// service's own gradients, its weights kept in mnist-model.json and ten test digits in
// mnist-digits.json, so nothing here needs the mnist package. Its logits and their exact gradient
// with respect to the pixels (the saliency map a prober tries to recover) come from the engine.

import { readFileSync } from 'node:fs';
import { grad, value } from '../engine/ad/differentiate.js';
import { Engine, type InputShape } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor/tensor.js';
import { toTensor } from '../engine/values.js';

export const IMAGE_SIDE = 28;
export const PIXELS = IMAGE_SIDE * IMAGE_SIDE;
export const CLASSES = 10;
export const HIDDEN = 32;

/** The network's parameters: logits = tanh(x W1 + b1) W2 + b2 for a flattened image x. */
export interface Weights {
  W1: Tensor;
  b1: Tensor;
  W2: Tensor;
  b2: Tensor;
}

export const WEIGHT_SHAPES: Readonly<Record<keyof Weights, readonly number[]>> = {
  W1: [PIXELS, HIDDEN],
  b1: [HIDDEN],
  W2: [HIDDEN, CLASSES],
  b2: [CLASSES],
};

/** One test digit: its label and its 784 pixels (row-major, 0 = background, 1 = ink). */
export interface Digit {
  label: number;
  pixels: number[];
}

/** The logits of a batch X (rows are flattened images) or of one image x: the same expression. */
export const LOGITS_EXPR = 'tanh(x @ W1 + b1) @ W2 + b2';

const MODEL_FILE = new URL('./mnist-model.json', import.meta.url);
const DIGITS_FILE = new URL('./mnist-digits.json', import.meta.url);

const engine = new Engine();

function weightInputs(): InputShape[] {
  return (Object.keys(WEIGHT_SHAPES) as (keyof Weights)[]).map((name) => ({ name, shape: [...WEIGHT_SHAPES[name]] }));
}

/** The weights as the fixture stores them: encoded float64 arrays ({dtype, shape, data}), checked against their shapes. */
export function readWeights(json: Record<string, unknown>): Weights {
  const tensor = (name: keyof Weights): Tensor => {
    const t = toTensor(json[name], [name]);
    if (t.shape.join() !== WEIGHT_SHAPES[name].join()) throw new Error(`${name} has shape [${t.shape.join(', ')}], expected [${WEIGHT_SHAPES[name].join(', ')}]`);
    return t;
  };
  return { W1: tensor('W1'), b1: tensor('b1'), W2: tensor('W2'), b2: tensor('b2') };
}

let cachedWeights: Weights | undefined;

/** The committed model's weights (read once). */
export function demoWeights(): Weights {
  cachedWeights ??= readWeights((JSON.parse(readFileSync(MODEL_FILE, 'utf8')) as { weights: Record<string, unknown> }).weights);
  return cachedWeights;
}

/** The ten committed test digits, one per class, in class order. */
export function demoDigits(): Digit[] {
  return (JSON.parse(readFileSync(DIGITS_FILE, 'utf8')) as { digits: Digit[] }).digits;
}

function bound(weights: Weights, x: Tensor): Map<string, Tensor> {
  return new Map([['x', x], ['W1', weights.W1], ['b1', weights.b1], ['W2', weights.W2], ['b2', weights.b2]]);
}

/** The logits of a batch of flattened images (shape [B, 784]) or of one (shape [784]). */
export function logits(x: Tensor, weights: Weights = demoWeights()): Tensor {
  const prepared = engine.prepare({ expr: LOGITS_EXPR }, [{ name: 'x', shape: x.shape }, ...weightInputs()]);
  return value(prepared, bound(weights, x)).run().value;
}

/** ∂ logit[cls] / ∂ pixels at `pixels` (784 numbers), exactly, by reverse mode: the saliency map. */
export function exactSaliency(pixels: readonly number[], cls: number, weights: Weights = demoWeights()): Float64Array {
  if (pixels.length !== PIXELS) throw new RangeError(`an image has ${PIXELS} pixels, got ${pixels.length}`);
  if (!Number.isInteger(cls) || cls < 0 || cls >= CLASSES) throw new RangeError(`the class is an integer from 0 to ${CLASSES - 1}, got ${cls}`);
  const prepared = engine.prepare({ expr: `z = ${LOGITS_EXPR}; z[${cls}]` }, [{ name: 'x', shape: [PIXELS] }, ...weightInputs()]);
  const x = { shape: [PIXELS], data: Float64Array.from(pixels) };
  return grad(prepared, bound(weights, x), ['x']).run().gradient.get('x')!.data;
}
