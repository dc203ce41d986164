// The request layer: one reading of points, wrt and seeds (with the field path of every mistake),
// and the engine's suggestions worded with the service's endpoints.

import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { planRequest, prepareShapes, readCotangent, readPoint, readPointOfShapes, readSeeds, withAlternative } from '../../src/service/request.js';
import { engineFailure } from '../engine/harness.js';

const engine = new Engine();

describe('the request layer', () => {
  it('reads a point into tensors, with wrt every input by default', () => {
    const point = readPoint(engine, { expr: 'sum(x) * y' }, { x: [1, 2], y: 3 }, ['at']);
    expect([...point.inputs].map(([name, t]) => [name, t.shape, Array.from(t.data)])).toEqual([
      ['x', [2], [1, 2]],
      ['y', [], [3]],
    ]);
    expect(point.wrt).toEqual(['x', 'y']);
  });

  it('says which field is wrong, by its path', () => {
    expect(engineFailure(() => readPoint(engine, { expr: 'x' }, { x: [[1], [2, 3]] }, ['points', 1])).path).toEqual(['points', 1, 'x', 1]);
    expect(engineFailure(() => readPoint(engine, { expr: 'x', wrt: ['x', 'z'] }, { x: 1 }, ['at'])).path).toEqual(['wrt', 1]);
    expect(engineFailure(() => readPoint(engine, { expr: 'x' }, { '2x': 1 }, ['at'])).path).toEqual(['at', '2x']);
    const point = readPoint(engine, { expr: 'x * 2' }, { x: [1, 2] }, ['at']);
    const unknown = engineFailure(() => readSeeds(point, { q: 1 }, 'tangents', ['x']));
    expect([unknown.code, unknown.path]).toEqual(['unknown_input', ['tangents', 'q']]);
    const shape = engineFailure(() => readSeeds(point, { x: [1, 2, 3] }, 'vector', ['x']));
    expect([shape.code, shape.path, shape.message]).toEqual(['shape_mismatch', ['vector', 'x'], 'vector.x has shape [3], but the input has shape [2]']);
    expect(engineFailure(() => readCotangent(point, 1)).message).toBe('cotangent has shape [], but the output has shape [2]');
    expect(engineFailure(() => prepareShapes(engine, { expr: 'x' }, { x: [2, -1] })).path).toEqual(['shapes', 'x', 1]);
  });

  it('reads a point of known inputs: every one given, no other, each of its shape', () => {
    const inputs = [
      { name: 'x', shape: [2] },
      { name: 'y', shape: [] },
    ];
    const read = (raw: Record<string, unknown>) => readPointOfShapes(raw, inputs, ['points', 3], ' (x, y)', 1000);
    expect(Array.from(read({ x: [1, 2], y: 3 }).get('x')!.data)).toEqual([1, 2]);
    const unknown = engineFailure(() => read({ x: [1, 2], y: 3, z: 0 }));
    expect([unknown.code, unknown.message, unknown.path]).toEqual(['unknown_input', "points[3] names 'z', which is not an input (x, y)", ['points', 3, 'z']]);
    const missing = engineFailure(() => read({ x: [1, 2] }));
    expect([missing.code, missing.message, missing.path]).toEqual(['missing_input', "points[3] has no value for the input 'y'", ['points', 3]]);
    expect(engineFailure(() => read({ x: [1], y: 3 })).message).toBe('points[3].x has shape [1], but the input has shape [2]');
  });

  it('fills seeds not given with zeros, and "ones" where allowed', () => {
    const point = readPoint(engine, { expr: 'x + y' }, { x: [1, 2], y: 3 }, ['at']);
    const seeds = readSeeds(point, { y: 'ones' }, 'tangents', ['x', 'y'], { ones: true });
    expect(Array.from(seeds.get('x')!.data)).toEqual([0, 0]);
    expect(Array.from(seeds.get('y')!.data)).toEqual([1]);
  });

  it('words what the engine suggests instead, once', () => {
    const e = engineFailure(() => planRequest(engine, 'grad', { expr: 'x * 2', at: { x: [1, 2] } }));
    expect(e.message).not.toContain('/jacobian');
    const worded = withAlternative(e);
    expect(worded.message).toMatch(/or use \/jacobian or \/vjp$/);
    expect(withAlternative(worded)).toBe(worded);
  });
});
