// Reading a target's answer: its logits flattened in row-major order, and the one the probe
// differentiates, checked against the first answer (how many logits there are) and every later one.

import { invalidField } from './errors.js';
import { ProbeFailure } from './failure.js';

/** The logits of an answer, flattened in row-major order; undefined when they are not all numbers. */
function flattenLogits(answer: unknown): number[] | undefined {
  if (typeof answer === 'number') return [answer];
  if (!Array.isArray(answer)) return undefined;
  const flat: number[] = [];
  const stack: unknown[] = [answer];
  while (stack.length > 0) {
    const item = stack.pop();
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push(item[i]);
    } else if (typeof item === 'number' && Number.isFinite(item)) {
      flat.push(item);
    } else {
      return undefined;
    }
  }
  return flat;
}

/** Picks the `output` logit, having checked against the first answer that there is one. */
export class LogitReader {
  private constructor(
    private readonly count: number,
    private readonly index: number,
    private readonly where: string,
  ) {}

  static fromFirst(answer: unknown, output: number | undefined, where: string, queries: number): LogitReader {
    const logits = flattenLogits(answer);
    if (logits === undefined || logits.length === 0) {
      throw new ProbeFailure('target_error', `The target's answer ${where} is not a finite number or an array of finite numbers`);
    }
    if (output === undefined && logits.length > 1) {
      throw invalidField('output', `must say which logit to differentiate: the target answers ${logits.length} of them (output from 0 to ${logits.length - 1})`, {
        queries,
      });
    }
    if (output !== undefined && output >= logits.length) {
      throw invalidField('output', `must be from 0 to ${logits.length - 1}: the target answers ${logits.length} logit${logits.length === 1 ? '' : 's'}`, {
        queries,
      });
    }
    return new LogitReader(logits.length, output ?? 0, where);
  }

  read(answer: unknown): number {
    const logits = flattenLogits(answer);
    if (logits === undefined) {
      throw new ProbeFailure('target_error', `The target's answer ${this.where} is not a finite number or an array of finite numbers`);
    }
    if (logits.length !== this.count) {
      throw new ProbeFailure('target_error', `The target answered ${this.count} logits, then ${logits.length}`);
    }
    return logits[this.index]!;
  }
}
