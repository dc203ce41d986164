// What a tensor costs to write: its elements, or for one of zero elements the arrays of its
// nested form, counted from the shape alone and checked here against the arrays the nested
// writer really makes.

import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_DIMENSION, shapeBeyondLimits } from '../../../src/engine/ops/shapes.js';
import { extentOf, extentOfBlock, nestedArraysOf, sizeOf, type Shape } from '../../../src/engine/tensor/tensor.js';
import { fromTensor } from '../../../src/service/values.js';

const SHAPES: Shape[] = [[], [0], [1], [3], [0, 3], [3, 0], [2, 3], [0, 0], [2, 1, 3], [2, 3, 0], [2, 0, 3], [1, 1, 1, 0], [4, 1, 2, 0, 5], [3, 2, 1]];

/** The arrays the nested writer makes: every "[" of its JSON. */
function arraysWritten(shape: Shape): number {
  const json = JSON.stringify(fromTensor({ shape, data: new Float64Array(sizeOf(shape)) }));
  return [...json].filter((c) => c === '[').length;
}

describe('the extent of a shape', () => {
  it.each(SHAPES.map((s) => [s]))('%j: nestedArraysOf is the number of arrays the writer makes', (shape) => {
    expect(nestedArraysOf(shape)).toBe(arraysWritten(shape));
    expect(extentOf(shape)).toBe(sizeOf(shape) > 0 ? sizeOf(shape) : arraysWritten(shape));
  });

  it('a block of a Jacobian or Hessian counts as the shape it is, without building it', () => {
    for (const a of SHAPES) for (const b of SHAPES) expect(extentOfBlock(a, b), `${JSON.stringify(a)} × ${JSON.stringify(b)}`).toBe(extentOf([...a, ...b]));
  });

  it('counts [100000, 100000, 0] as its 10,000,100,001 arrays, and refuses it and huge dimensions by name', () => {
    const limits = { maxTensorElements: 4_000_000, maxDimension: DEFAULT_MAX_DIMENSION };
    expect(nestedArraysOf([100_000, 100_000, 0])).toBe(10_000_100_001);
    expect(shapeBeyondLimits([100_000, 100_000, 0], limits)).toContain('MAX_TENSOR_ELEMENTS');
    expect(shapeBeyondLimits([0, 100_000, 100_000], limits)).toBeUndefined();
    expect(shapeBeyondLimits([0, 2 ** 32], limits)).toContain('MAX_DIMENSION');
    expect(shapeBeyondLimits([...new Array<number>(40).fill(2 ** 53), 0], limits)).toContain('41 dimensions');
    // 31 dimensions of 2⁵³ overflow to Infinity, times 0 is NaN: the dimension limit still refuses it.
    expect(shapeBeyondLimits([...new Array<number>(31).fill(2 ** 53), 0], limits)).toContain('MAX_DIMENSION');
    expect(shapeBeyondLimits([2000, 2000], limits)).toBeUndefined();
  });
});
