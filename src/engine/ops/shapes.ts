// Shape arithmetic shared by the op table's shape rules and the front ends.

import { broadcastShapes, extentOf, formatShape, MAX_RANK, nestedArraysOf, sizeOf, type Shape } from '../tensor/tensor.js';
import { ShapeError } from './types.js';

/**
 * MAX_DIMENSION's default, 2²⁴ = 16,777,216: four times the default MAX_TENSOR_ELEMENTS, so a
 * tensor with elements meets the element limit first; far below 2³², the longest JavaScript array
 * (a dimension of 2³² or more was a 500 "Invalid array length"); and small enough that the product
 * of 32 dimensions stays a finite float64 (2⁷⁶⁸), so no element count is Infinity or NaN.
 */
export const DEFAULT_MAX_DIMENSION = 2 ** 24;

/** How large one tensor may be: its elements (MAX_TENSOR_ELEMENTS) and each of its dimensions (MAX_DIMENSION). */
export interface ShapeLimits {
  readonly maxTensorElements: number;
  readonly maxDimension: number;
}

/**
 * Why a tensor of `shape` may not exist under `limits`, as the rest of a sentence about it
 * ("has 40 dimensions, …"), or undefined. Checked wherever a shape enters (inputs, constants) or is
 * made (every shape rule's output), before anything of its size is allocated or written: its rank,
 * its elements, each dimension, and, for a tensor of zero elements, the arrays of its nested form
 * (counted against MAX_TENSOR_ELEMENTS as elements are), so no tensor costs more to write than its
 * limit allows.
 */
export function shapeBeyondLimits(shape: Shape, limits: ShapeLimits): string | undefined {
  if (shape.length > MAX_RANK) return `has ${shape.length} dimensions, more than ${MAX_RANK} (the most a tensor may have)`;
  const size = sizeOf(shape);
  if (size > limits.maxTensorElements) return `has ${size} elements, more than the limit of ${limits.maxTensorElements} (MAX_TENSOR_ELEMENTS)`;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i]! > limits.maxDimension) return `has a dimension of ${shape[i]} (axis ${i}), more than the limit of ${limits.maxDimension} (MAX_DIMENSION)`;
  }
  const extent = extentOf(shape);
  if (extent > limits.maxTensorElements) {
    return `has no elements but ${nestedArraysOf(shape)} rows (nested arrays, as an answer writes it), more than the limit of ${limits.maxTensorElements} (MAX_TENSOR_ELEMENTS)`;
  }
  return undefined;
}

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

