// The free names of a program: names it reads that no earlier statement assigns and that are not
// the constants pi and e — the inputs it needs. (Iterative: a long chain does not overflow.)

import type { Expr, Program } from './ast.js';

const CONSTANTS = new Set(['pi', 'e', 'True', 'False', 'true', 'false']);

export function freeNames(program: Program): string[] {
  const assigned = new Set<string>();
  const free: string[] = [];
  for (const statement of program.statements) {
    const stack: Expr[] = [statement.value];
    while (stack.length > 0) {
      const e = stack.pop()!;
      switch (e.kind) {
        case 'name':
          if (!assigned.has(e.name) && !CONSTANTS.has(e.name) && !free.includes(e.name)) free.push(e.name);
          break;
        case 'list':
          stack.push(...e.items);
          break;
        case 'unary':
        case 'attr':
          stack.push(e.operand);
          break;
        case 'binary':
          stack.push(e.right, e.left);
          break;
        case 'call':
          // Keyword values are constants (axis=, keepdims=True), not inputs.
          stack.push(...[...e.args].reverse());
          break;
        case 'index':
          stack.push(e.operand);
          break;
        default:
          break;
      }
    }
    if (statement.kind === 'assign') assigned.add(statement.name);
  }
  return free;
}
