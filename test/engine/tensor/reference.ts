// Independent references for the tensor kernels: naive index-walking implementations that
// share no code with src/engine/tensor (only the Tensor type), plus deterministic random data.

import { expect } from 'vitest';
import type { Shape, Tensor } from '../../../src/engine/tensor/tensor.js';

/** mulberry32: a small deterministic generator, so failures reproduce. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function count(shape: Shape): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Uniform values in [-1, 1). */
export function randomTensor(shape: Shape, seed: number): Tensor {
  const next = rng(seed);
  const data = new Float64Array(count(shape));
  for (let i = 0; i < data.length; i++) data[i] = 2 * next() - 1;
  return { shape: [...shape], data };
}

export function tensor(shape: Shape, values: readonly number[]): Tensor {
  return { shape: [...shape], data: Float64Array.from(values) };
}

/** Flat row-major index -> multi-index. */
export function unravel(flat: number, shape: Shape): number[] {
  const index = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return index;
}

/** Multi-index -> flat row-major index. */
export function ravel(index: readonly number[], shape: Shape): number {
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d]! + index[d]!;
  return flat;
}

export function naiveBroadcastShape(a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)]!;
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)]!;
    if (da !== db && da !== 1 && db !== 1) throw new Error('no broadcast');
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The element of x that output index `index` (of a broadcast shape) reads. */
export function broadcastRead(x: Tensor, index: readonly number[]): number {
  const lead = index.length - x.shape.length;
  const own = x.shape.map((d, i) => (d === 1 ? 0 : index[lead + i]!));
  return x.data[ravel(own, x.shape)]!;
}

export function naiveBinary(f: (a: number, b: number) => number, a: Tensor, b: Tensor): Tensor {
  const shape = naiveBroadcastShape(a.shape, b.shape);
  const data = new Float64Array(count(shape));
  for (let i = 0; i < data.length; i++) {
    const index = unravel(i, shape);
    data[i] = f(broadcastRead(a, index), broadcastRead(b, index));
  }
  return { shape, data };
}

export function naiveMatmul(a: Tensor, b: Tensor): Tensor {
  const m = a.shape[a.shape.length - 2]!;
  const k = a.shape[a.shape.length - 1]!;
  const n = b.shape[b.shape.length - 1]!;
  const batch = naiveBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, m, n];
  const data = new Float64Array(count(shape));
  for (let t = 0; t < count(batch); t++) {
    const index = unravel(t, batch);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += broadcastRead(a, [...index, i, p]) * broadcastRead(b, [...index, p, j]);
        data[ravel([...index, i, j], shape)] = s;
      }
    }
  }
  return { shape, data };
}

export function naiveReduce(f: (acc: number, v: number) => number, init: number, x: Tensor, axes: readonly number[]): Tensor {
  const shape = x.shape.filter((_, d) => !axes.includes(d));
  const data = new Float64Array(count(shape)).fill(init);
  for (let i = 0; i < x.data.length; i++) {
    const index = unravel(i, x.shape).filter((_, d) => !axes.includes(d));
    const o = ravel(index, shape);
    data[o] = f(data[o]!, x.data[i]!);
  }
  return { shape, data };
}

export function naivePermute(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]!);
  const data = new Float64Array(x.data.length);
  for (let i = 0; i < data.length; i++) {
    const index = unravel(i, shape);
    const src = new Array<number>(perm.length);
    perm.forEach((p, d) => (src[p] = index[d]!));
    data[i] = x.data[ravel(src, x.shape)]!;
  }
  return { shape, data };
}

export function naiveSlice(x: Tensor, starts: readonly number[], steps: readonly number[], counts: readonly number[]): Tensor {
  const lead = x.shape.length - starts.length;
  const shape = [...x.shape.slice(0, lead), ...counts];
  const data = new Float64Array(count(shape));
  for (let i = 0; i < data.length; i++) {
    const index = unravel(i, shape);
    const src = index.map((j, d) => (d < lead ? j : starts[d - lead]! + j * steps[d - lead]!));
    data[i] = x.data[ravel(src, x.shape)]!;
  }
  return { shape, data };
}

export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Shapes equal, and values equal within |a - e| <= atol + rtol |e| (NaN matches NaN, ±Infinity itself). */
export function expectClose(actual: Tensor, expected: Tensor, rtol = 1e-12, atol = 1e-12): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(actual.data.length).toBe(expected.data.length);
  for (let i = 0; i < expected.data.length; i++) {
    const a = actual.data[i]!;
    const e = expected.data[i]!;
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      if (!Object.is(a, e)) expect.fail(`element ${i}: got ${a}, expected ${e}`);
    } else if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      expect.fail(`element ${i} of ${expected.shape.join('x')}: got ${a}, expected ${e}`);
    }
  }
}
