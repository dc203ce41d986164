// Comparing a student's numbers with the expected ones, and saying how they differ.

import { formatShape, shapesEqual, sizeOf, type Shape, type Tensor } from '../engine/tensor/tensor.js';

export interface Tolerance {
  rtol: number;
  atol: number;
}

/** NumPy's isclose, as PrairieLearn grades numbers: |given − expected| ≤ atol + rtol·|expected|; NaN matches NaN. */
export function isClose(given: number, expected: number, tol: Tolerance): boolean {
  if (Number.isNaN(expected)) return Number.isNaN(given);
  if (!Number.isFinite(expected)) return given === expected;
  return Math.abs(given - expected) <= tol.atol + tol.rtol * Math.abs(expected);
}

export interface Mismatch {
  /** The element's index (empty for a scalar). */
  index: number[];
  expected: number;
  given: number;
}

/**
 * The first element where `given` is not close to `expected`, or undefined when all are. A scalar
 * `given` stands for every element when `broadcastScalar` (a constant derivative of a tensor input).
 */
export function firstMismatch(given: Tensor, expected: Tensor, tol: Tolerance, broadcastScalar = false): Mismatch | undefined {
  const scalar = broadcastScalar && given.shape.length === 0;
  for (let k = 0; k < expected.data.length; k++) {
    const g = scalar ? given.data[0]! : given.data[k]!;
    if (!isClose(g, expected.data[k]!, tol)) return { index: unravel(k, expected.shape), expected: expected.data[k]!, given: g };
  }
  return undefined;
}

/** Whether `given` can be compared with a value of shape `expected` (a scalar may stand for a constant tensor). */
export function comparableShape(given: Shape, expected: Shape, broadcastScalar = false): boolean {
  return shapesEqual(given, expected) || (broadcastScalar && given.length === 0);
}

export function allClose(given: Tensor, expected: Tensor, tol: Tolerance, broadcastScalar = false): boolean {
  return comparableShape(given.shape, expected.shape, broadcastScalar) && firstMismatch(given, expected, tol, broadcastScalar) === undefined;
}

function unravel(k: number, shape: Shape): number[] {
  const index = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = k % shape[d]!;
    k = Math.floor(k / shape[d]!);
  }
  return index;
}

/** A number as a student reads it: six significant digits. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  return String(Number(v.toPrecision(6)));
}

/** A value in a sentence: the number for a scalar, the elements for a small tensor, else its shape. */
export function formatValue(t: Tensor): string {
  if (t.shape.length === 0) return formatNumber(t.data[0]!);
  if (sizeOf(t.shape) <= 6) return nested(t);
  return `an array of shape ${formatShape(t.shape)}`;
}

function nested(t: Tensor): string {
  const walk = (dim: number, offset: number): string => {
    if (dim === t.shape.length) return formatNumber(t.data[offset]!);
    const n = t.shape[dim]!;
    const stride = sizeOf(t.shape.slice(dim + 1));
    return `[${Array.from({ length: n }, (_, i) => walk(dim + 1, offset + i * stride)).join(', ')}]`;
  };
  return walk(0, 0);
}

/** "expected 0.141302, given 0.0707" — at the first differing element of a tensor. */
export function describeMismatch(m: Mismatch, shape: Shape): string {
  const at = shape.length === 0 ? '' : ` at index ${formatShape(m.index)}`;
  return `expected ${formatNumber(m.expected)}, given ${formatNumber(m.given)}${at}`;
}

/**
 * A hint when `given` is a constant multiple of `expected` over every sample (pairs of tensors):
 * "the sign is wrong", "off by a factor of 2". Undefined when there is no such factor.
 */
export function factorHint(samples: readonly { given: Tensor; expected: Tensor }[], tol: Tolerance): string | undefined {
  let factor: number | undefined;
  let pairs = 0;
  for (const { given, expected } of samples) {
    const scalar = given.shape.length === 0;
    for (let k = 0; k < expected.data.length; k++) {
      const e = expected.data[k]!;
      const g = scalar ? given.data[0]! : given.data[k]!;
      if (!Number.isFinite(e) || !Number.isFinite(g)) return undefined;
      if (Math.abs(e) <= tol.atol) continue;
      if (factor === undefined) factor = g / e;
      else if (!isClose(g, factor * e, tol)) return undefined;
      pairs++;
    }
  }
  if (factor === undefined || pairs < 2 || isClose(factor, 1, tol) || Math.abs(factor) <= tol.atol) return undefined;
  if (isClose(factor, -1, tol)) return 'It is the negative of the right answer: check the sign.';
  return `It is ${formatNumber(factor)} times the right answer everywhere: a constant factor is off.`;
}
