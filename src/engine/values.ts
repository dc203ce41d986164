// Nested arrays (a number, or a rectangular nested array; non-finite numbers as the strings "NaN",
// "Infinity", "-Infinity") read into float64 tensors: the values of JSON graphs' constants, and of
// the service's requests. (Answers are written by the service: src/service/values.ts.)

import { EngineError } from './errors.js';
import type { Tensor } from './tensor/tensor.js';

export const MAX_RANK = 32;

function toNumber(v: unknown, path: (string | number)[]): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new EngineError('validation_error', `${formatPath(path)} must be a number (or "NaN", "Infinity", "-Infinity"), got ${describe(v)}`, {
    path,
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v);
  return typeof v;
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * The shape of a nested array, found by walking first elements, then every element checked against
 * it (iteratively). `maxElements` is checked before the data is allocated.
 */
export function toTensor(value: unknown, path: (string | number)[], maxElements = Infinity): Tensor {
  const shape: number[] = [];
  let probe = value;
  while (Array.isArray(probe)) {
    if (shape.length >= MAX_RANK) throw new EngineError('validation_error', `${formatPath(path)} has more than ${MAX_RANK} dimensions`, { path });
    shape.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0];
  }
  let size = 1;
  for (const d of shape) size *= d;
  if (size > maxElements) {
    throw new EngineError('limit_exceeded', `${formatPath(path)} has ${size} elements, more than the limit of ${maxElements} (MAX_TENSOR_ELEMENTS)`, {
      path,
    });
  }
  const data = new Float64Array(size);
  if (shape.length === 0) {
    data[0] = toNumber(value, path);
    return { shape, data };
  }
  let k = 0;
  // Explicit stack of [array, depth, index-path] so any rank is walked without recursion.
  const stack: [unknown[], number, number[]][] = [[value as unknown[], 0, []]];
  while (stack.length > 0) {
    const [arr, depth, at] = stack.pop()!;
    if (arr.length !== shape[depth]) {
      throw new EngineError(
        'validation_error',
        `${formatPath([...path, ...at])} has ${arr.length} elements where ${shape[depth]} were expected: the array must be rectangular`,
        { path: [...path, ...at] },
      );
    }
    if (depth === shape.length - 1) {
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i];
        if (Array.isArray(v)) {
          throw new EngineError('validation_error', `${formatPath([...path, ...at, i])} is an array where a number was expected: the array must be rectangular`, {
            path: [...path, ...at, i],
          });
        }
        data[k++] = toNumber(v, [...path, ...at, i]);
      }
    } else {
      for (let i = arr.length - 1; i >= 0; i--) {
        const v = arr[i];
        if (!Array.isArray(v)) {
          throw new EngineError('validation_error', `${formatPath([...path, ...at, i])} must be an array: the array must be rectangular`, {
            path: [...path, ...at, i],
          });
        }
        stack.push([v, depth + 1, [...at, i]]);
      }
    }
  }
  return { shape, data };
}
