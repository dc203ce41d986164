// Shape arithmetic shared by the op table's shape rules and the front ends.

import { broadcastShapes, formatShape, sizeOf, type Shape } from '../tensor/tensor.js';
import { ShapeError } from './types.js';

export function broadcastAll(shapes: readonly Shape[]): Shape {
  let out: Shape = [];
  for (const s of shapes) {
    const next = broadcastShapes(out, s);
    if (next === null) {
      throw new ShapeError(`shapes ${shapes.map(formatShape).join(' and ')} do not broadcast together`);
    }
    out = next;
  }
  return out;
}

/** Normalise an axis (negative allowed) against a rank, as a negative axis. */
export function negativeAxis(axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new ShapeError(`axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return axis < 0 ? axis : axis - rank;
}

/** Distinct negative axes in increasing order; `undefined` means all axes. */
export function normaliseAxes(axes: readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i - rank);
  const out = axes.map((a) => negativeAxis(a, rank));
  const set = new Set(out);
  if (set.size !== out.length) throw new ShapeError(`repeated axis in [${axes.join(', ')}]`);
  return [...set].sort((a, b) => a - b);
}

/** The shape after reducing negative `axes`. */
export function reducedShape(shape: Shape, axes: readonly number[], keepdims: boolean): number[] {
  const rank = shape.length;
  const drop = new Set(axes.map((a) => a + rank));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    if (!drop.has(i)) out.push(shape[i]!);
    else if (keepdims) out.push(1);
  }
  return out;
}

export function lead(shape: Shape, coreRank: number): Shape {
  return shape.slice(0, shape.length - coreRank);
}

export function trailing(shape: Shape, coreRank: number): Shape {
  return shape.slice(shape.length - coreRank);
}

export function requireRank(shape: Shape, min: number, what: string): void {
  if (shape.length < min) {
    throw new ShapeError(`${what} needs a tensor of rank at least ${min}, got shape ${formatShape(shape)}`);
  }
}

export function requireSquare(shape: Shape, what: string): number {
  requireRank(shape, 2, what);
  const n = shape[shape.length - 1]!;
  if (shape[shape.length - 2] !== n) {
    throw new ShapeError(`${what} needs square matrices in the last two dimensions, got shape ${formatShape(shape)}`);
  }
  return n;
}

