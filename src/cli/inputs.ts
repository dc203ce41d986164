// What a person types, turned into the request fields the service reads: the function (an
// expression, or a file of one or of a JSON graph) and values (`x=0.7`, `W=[[1,2],[3,4]]`).

import { readFileSync } from 'node:fs';

/** A mistake in how the command was written or in what it reads: exit code 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** The function of a request: exactly one of `expr` and `graph`, as the service takes it. */
export type FunctionSource = { expr: string } | { graph: unknown };

/** Text from `@path` (a file; `@-` is standard input), else the argument itself. */
export function readArgument(argument: string): string {
  if (!argument.startsWith('@')) return argument;
  return readText(argument.slice(1));
}

/** A file's text; `-` is standard input. */
export function readText(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${path === '-' ? 'standard input' : path}: ${(error as Error).message}`);
  }
}

/** An expression, or `@file` holding an expression or a JSON graph (`{"nodes": [...], "output": ...}`). */
export function functionSource(argument: string): FunctionSource {
  const text = readArgument(argument);
  if (argument.startsWith('@') && text.trimStart().startsWith('{')) return { graph: parseJson(text, argument.slice(1)) };
  return { expr: text };
}

/**
 * JSON as the service reads it, with bare NaN, Infinity and -Infinity allowed too (written as the
 * strings "NaN", "Infinity", "-Infinity", which is how they travel).
 */
export function parseJson(text: string, what: string): unknown {
  const quoted = text.replace(/("(?:[^"\\]|\\.)*")|(-?\b(?:NaN|Infinity)\b)/g, (match, string: string | undefined) => string ?? `"${match}"`);
  try {
    return JSON.parse(quoted);
  } catch (error) {
    throw new InputError(`${what}: not JSON (${(error as Error).message})`);
  }
}

/**
 * Values by name, from `name=value` arguments (the value a number or a JSON array) or whole JSON
 * objects (`'{"x": 1}'`, `@point.json`); a later one wins. `option` names the flag in errors.
 */
export function parseValues(items: readonly string[] | undefined, option: string): Record<string, unknown> | undefined {
  if (items === undefined || items.length === 0) return undefined;
  // Null prototype: a name like `constructor` is an input like any other.
  const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const item of items) {
    if (item.startsWith('@') || item.trimStart().startsWith('{')) {
      const object = parseJson(readArgument(item), `${option} ${item}`);
      if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new InputError(`${option} ${item}: must be a JSON object of values by name`);
      Object.assign(values, object);
      continue;
    }
    const equals = item.indexOf('=');
    if (equals <= 0) throw new InputError(`${option} ${item}: write name=value, e.g. ${option} x=0.7 or ${option} 'W=[[1,2],[3,4]]'`);
    values[item.slice(0, equals).trim()] = parseValue(item.slice(equals + 1), `${option} ${item}`);
  }
  return values;
}

/** A number or a JSON (nested) array; NaN and Infinity allowed. */
export function parseValue(text: string, what: string): unknown {
  const expected = `${what}: a value is a number or a JSON array, e.g. 0.7 or [[1,2],[3,4]] (NaN and Infinity allowed)`;
  let value: unknown;
  try {
    value = parseJson(text, what);
  } catch {
    throw new InputError(expected);
  }
  if (typeof value === 'number' || typeof value === 'string' || Array.isArray(value) || isEncodedTensor(value)) return value;
  throw new InputError(expected);
}

/** A tensor in the service's base64 form (`{"dtype": "float64", "shape": [...], "data": "..."}`): passed on as it is. */
function isEncodedTensor(value: unknown): boolean {
  return value !== null && typeof value === 'object' && 'dtype' in value && 'data' in value;
}
