// The function library in words, for GET /ops and the README: generated from the tables (the
// conventions are the op table's, each sentence once).

import { FUNCTIONS, OPERATOR_FUNCTIONS } from './functions.js';
import { conventions } from './table.js';

export interface OpDescription {
  name: string;
  arity: number | 'list';
  attrs: { name: string; kind: string; optional: boolean; about: string }[];
  value: string;
  derivative: string;
  operator?: string;
  composite: boolean;
}

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
  return { ops, conventions: conventions() };
}
