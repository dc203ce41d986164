// Where formulas are checked: random points drawn from the request's seed and the part alone, so
// every student of a request is checked at the same points, and adding a part moves no other.

import { Random } from '../engine/random.js';
import { sizeOf, type Shape, type Tensor } from '../engine/tensor/tensor.js';

/** The generator for one part (`derivative.x`): the seed mixed with an FNV-1a hash of the part's name. */
export function partRandom(seed: number, part: string): Random {
  let h = 0x811c9dc5;
  for (let i = 0; i < part.length; i++) h = Math.imul(h ^ part.charCodeAt(i), 0x01000193) >>> 0;
  return new Random((h ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0);
}

/** One point: every element of every input uniform in its range [lo, hi]. */
export function drawPoint(random: Random, inputs: readonly { name: string; shape: Shape }[], ranges: Readonly<Record<string, readonly [number, number]>>): Map<string, Tensor> {
  const point = new Map<string, Tensor>();
  for (const { name, shape } of inputs) {
    const [lo, hi] = ranges[name]!;
    const data = new Float64Array(sizeOf(shape));
    for (let k = 0; k < data.length; k++) data[k] = lo + (hi - lo) * random.uniform();
    point.set(name, { shape, data });
  }
  return point;
}
