// Shared by the grading tests: posting to /grade, and the lecture's functions with their tables
// worked out independently (closed forms in Math, not the engine).

import { expect } from 'vitest';
import type { GradeResult, GradeTest } from '../../src/grade/types.js';
import type { App } from '../../src/service/app.js';

export type Test = GradeTest;
export type Result = GradeResult;

export interface Answer {
  format: string;
  results: Result[];
  points: Record<string, Record<string, unknown>[]>;
  settings: Record<string, unknown>;
}

export async function postGrade(app: App, body: unknown): Promise<Answer> {
  const res = await app.inject({ method: 'POST', url: '/grade', payload: body as Record<string, unknown> });
  expect(res.statusCode, res.body.slice(0, 400)).toBe(200);
  return res.json() as Answer;
}

export function failed(result: Result): Test[] {
  return result.tests.filter((t) => t.status === 'failed');
}

export function test(result: Result, part: string): Test {
  const found = result.tests.find((t) => t.part === part);
  expect(found, `no test for ${part} in ${JSON.stringify(result.tests.map((t) => t.part))}`).toBeDefined();
  return found!;
}

/** Lecture section 5.1: L = (W1 tanh(W0 x) - y)^2 at x = 1, W0 = 2, W1 = 1.2, y = 2, tangents seeded on x. */
export const FORWARD = {
  expr: 'x1 = W0 * x\nx2 = tanh(x1)\nx3 = W1 * x2\nx4 = x3 - y\nx5 = x4^2\nx5',
  at: { x: 1, W0: 2, W1: 1.2, y: 2 },
  tangents: { x: 1, W0: 0, W1: 0, y: 0 },
};

export function forwardTable(): { id: string; value: number; tangent: number }[] {
  const x = 1, W0 = 2, W1 = 1.2, y = 2;
  const x1 = W0 * x, d1 = W0;
  const x2 = Math.tanh(x1), d2 = (1 - Math.tanh(x1) ** 2) * d1;
  const x3 = W1 * x2, d3 = W1 * d2;
  const x4 = x3 - y, d4 = d3;
  const x5 = x4 ** 2, d5 = 2 * x4 * d4;
  return [
    { id: 'x1', value: x1, tangent: d1 },
    { id: 'x2', value: x2, tangent: d2 },
    { id: 'x3', value: x3, tangent: d3 },
    { id: 'x4', value: x4, tangent: d4 },
    { id: 'x5', value: x5, tangent: d5 },
  ];
}

/** Lecture section 5.3: f(x) = sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2)) at x = 0.7, as the program x1..x6. */
export const REVERSE = {
  expr: 'x1 = x^2\nx2 = exp(x1)\nx3 = x1 + x2\nx4 = sqrt(x3)\nx5 = cos(x3)\nx6 = x4 + x5\nx6',
  at: { x: 0.7 },
};

/** The adjoints, in the reverse pass's order; `forgetParent` drops x3's term from x1's adjoint (the lecture's warning). */
export function reverseTable(forgetParent = false): { id: string; adjoint: number }[] {
  const x = 0.7;
  const x1 = x * x, x2 = Math.exp(x1), x3 = x1 + x2;
  const a6 = 1, a5 = a6, a4 = a6;
  const a3 = a4 / (2 * Math.sqrt(x3)) - a5 * Math.sin(x3);
  const a2 = a3;
  const a1 = (forgetParent ? 0 : a3) + a2 * Math.exp(x1);
  const ax = a1 * 2 * x;
  return [
    { id: 'x6', adjoint: a6 },
    { id: 'x5', adjoint: a5 },
    { id: 'x4', adjoint: a4 },
    { id: 'x3', adjoint: a3 },
    { id: 'x2', adjoint: a2 },
    { id: 'x1', adjoint: a1 },
    { id: 'x', adjoint: ax },
  ];
}

/** f of section 5.3 as one expression, and its derivative with every chain-rule factor. */
export const LECTURE_F = 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))';
export const LECTURE_DF = '(2*x + 2*x*exp(x^2)) * (1/(2*sqrt(x^2 + exp(x^2))) - sin(x^2 + exp(x^2)))';
/** The same derivative without the inner factor d(x^2 + exp(x^2))/dx. */
export const LECTURE_DF_NO_CHAIN = '1/(2*sqrt(x^2 + exp(x^2))) - sin(x^2 + exp(x^2))';

/** Question 2: the Gaussian-process objective with named intermediates, X in R^{4x2}, l in R^2. */
export const GP = {
  expr: [
    'D1 = (X[:, None, 0] - X[None, :, 0])^2',
    'D2 = (X[:, None, 1] - X[None, :, 1])^2',
    'L1 = -D1 / (2 * l[0]^2)',
    'L2 = -D2 / (2 * l[1]^2)',
    'K1 = exp(L1)',
    'K2 = exp(L2)',
    'K = K1 + K2',
    'f = y.T @ inv(K) @ y',
    'f',
  ].join('\n'),
  at: { X: [[0, 1], [1, 0.5], [2, -0.5], [0.5, 2]], l: [0.9, 1.4], y: [1, -0.5, 0.25, 2] },
};
