// The function library in words, for GET /ops and the README: generated from the tables.

import { FUNCTIONS, OPERATOR_FUNCTIONS } from './functions.js';

export interface OpDescription {
  name: string;
  arity: number | 'list';
  attrs: { name: string; kind: string; optional: boolean; about: string }[];
  value: string;
  derivative: string;
  operator?: string;
  composite: boolean;
}

/** Conventions at points where a function is not differentiable. */
export const CONVENTIONS = [
  "abs'(0) = 0, relu'(0) = 0, sign' = 0 everywhere (subgradient 0 at the kink).",
  'At a tie, max, min, maximum and minimum share the derivative equally among the tied elements.',
  'Comparisons (< <= > >= == !=) and the condition of where have zero derivative.',
  "d(x^y)/dx is taken as 0 where y = 0, and d(x^y)/dy = x^y ln x as 0 where x = 0 and y ≥ 0; norm'(0) = 0.",
  'prod differentiates exactly where elements are 0 (the product of the other elements; no division).',
  'sqrt, log, division and the like follow IEEE arithmetic: sqrt\'(0) is Infinity, with a warning naming the step.',
  'cholesky factors the symmetric part (A + Aᵀ)/2, so its gradient is symmetric and agrees with finite differences.',
];

export function describeFunctions(): { ops: OpDescription[]; conventions: string[] } {
  const operatorOf = new Map([...OPERATOR_FUNCTIONS].map(([symbol, name]) => [name, symbol]));
  operatorOf.set('neg', '- (unary)');
  operatorOf.set('transpose', '.T');
  operatorOf.set('index', 'X[...]');
  const ops = [...FUNCTIONS.values()].map((f) => {
    const entry: OpDescription = {
      name: f.name,
      arity: f.tensors,
      attrs: f.statics.map((s) => ({ name: s.name, kind: s.kind, optional: s.optional, about: s.about })),
      value: f.doc.value,
      derivative: f.doc.derivative,
      composite: f.composite,
    };
    const operator = operatorOf.get(f.name);
    if (operator !== undefined) entry.operator = operator === '^' ? '^ (also **)' : operator;
    return entry;
  });
  return { ops, conventions: CONVENTIONS };
}
