// A seeded generator, so checks, grading points and probe directions are the same for the same
// seed on every machine: pure-rand's xoroshiro128+ and its 53-bit uniform doubles. Its state is
// filled by SplitMix32 from the seed: pure-rand's own xoroshiro128plus(seed) starts from
// (-1, ~seed, seed, 0), whose first output is ~seed, so nearby seeds would give nearby first draws.

import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

/** `count` 32-bit words from `seed` by SplitMix32 (distinct seeds, distinct words; never all zero). */
function splitMix32(seed: number, count: number): number[] {
  let x = seed >>> 0;
  return Array.from({ length: count }, () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return z ^ (z >>> 16);
  });
}

export class Random {
  private readonly generator: RandomGenerator;
  private spare: number | undefined;

  constructor(seed: number) {
    this.generator = xoroshiro128plusFromState(splitMix32(seed, 4));
  }

  /** Uniform on [0, 1), a multiple of 2^-53. */
  uniform(): number {
    return uniformFloat64(this.generator);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** -1 or 1 with equal probability: the top bit of an output (xoroshiro128+'s low bits are its weakest). */
  rademacher(): number {
    return this.generator.next() < 0 ? -1 : 1;
  }
}
