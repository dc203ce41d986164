import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EngineError, type EngineErrorCode } from '../../src/engine/errors.js';
import { HttpProblem, ProblemSchema, toHttpProblem, toProblem, validationProblem } from '../../src/service/problem.js';

describe('HttpProblem', () => {
  it('becomes an RFC 9457 body with a type and title fixed by the code', () => {
    const problem = new HttpProblem(429, 'rate_limited', 'Slow down', { limit: 10 }, { headers: { 'retry-after': '3' } });
    expect(problem.toJSON()).toEqual({
      type: 'urn:adjoint:problem:rate_limited',
      title: 'Too many requests',
      status: 429,
      detail: 'Slow down',
      code: 'rate_limited',
      limit: 10,
    });
    expect(problem.headers).toEqual({ 'retry-after': '3' });
    expect(ProblemSchema.safeParse(problem.toJSON()).success).toBe(true);
  });

  it('passes through toHttpProblem unchanged', () => {
    const problem = new HttpProblem(503, 'overloaded', 'Busy');
    expect(toHttpProblem(problem)).toBe(problem);
  });
});

describe('toProblem of an EngineError', () => {
  it.each<[EngineErrorCode, number]>([
    ['parse_error', 400],
    ['unknown_function', 400],
    ['validation_error', 400],
    ['unknown_input', 422],
    ['missing_input', 422],
    ['invalid_graph', 422],
    ['shape_mismatch', 422],
    ['not_scalar', 422],
    ['limit_exceeded', 422],
  ])('maps %s to %i', (code, status) => {
    const problem = toProblem(new EngineError(code, `about ${code}`));
    expect(problem).toEqual({
      type: `urn:adjoint:problem:${code}`,
      title: expect.any(String),
      status,
      detail: `about ${code}`,
      code,
    });
  });

  it('keeps the position, the node and the request path', () => {
    const error = new EngineError('parse_error', "Expected ')'", { position: { line: 2, column: 7 } });
    expect(toProblem(error)).toMatchObject({ status: 400, position: { line: 2, column: 7 } });

    const graphError = new EngineError('invalid_graph', 'x3 has 1 argument, add takes 2', { node: 'x3' });
    expect(toProblem(graphError)).toMatchObject({ status: 422, node: 'x3' });

    const pointError = new EngineError('shape_mismatch', 'X must have shape [2, 3]', { path: ['at', 'X', 2] });
    expect(toProblem(pointError)).toMatchObject({
      status: 422,
      errors: [{ path: 'at.X.2', message: 'X must have shape [2, 3]' }],
    });
  });
});

describe('toProblem of anything else', () => {
  it('is a 500 that says nothing about the error and keeps it as the cause', () => {
    const error = new Error('password=hunter2 in /srv/app/db.ts');
    const problem = toHttpProblem(error);
    expect(problem.status).toBe(500);
    expect(problem.code).toBe('internal_error');
    expect(problem.cause).toBe(error);
    expect(JSON.stringify(problem)).not.toMatch(/hunter2|db\.ts|stack/);
  });

  it('does not trust a status code on a non-Fastify error', () => {
    expect(toProblem(Object.assign(new Error('secret'), { statusCode: 400 })).status).toBe(500);
    expect(toProblem('a string').status).toBe(500);
    expect(toProblem(null).status).toBe(500);
  });
});

describe('validationProblem', () => {
  it('lists each Zod issue with its dotted path', () => {
    const result = z.object({ at: z.object({ x: z.number() }), wrt: z.array(z.string()) }).safeParse({ at: { x: 'one' }, wrt: [1] });
    const problem = validationProblem(result.error?.issues ?? [], ['points', 0]).toJSON();
    expect(problem).toMatchObject({
      status: 400,
      code: 'validation_error',
      errors: [
        { path: 'points.0.at.x', message: expect.stringContaining('expected number') },
        { path: 'points.0.wrt.0', message: expect.stringContaining('expected string') },
      ],
    });
    expect(problem.detail).toMatch(/at points\.0\.at\.x \(and 1 more\)/);
  });
});
