// What a person types, turned into the request fields the service reads: the function (an
// expression, or a file of one or of a JSON graph) and values (`x=0.7`, `W=[[1,2],[3,4]]`).

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** A mistake in how the command was written or in what it reads: exit code 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** The function of a request: exactly one of `expr` and `graph`, as the service takes it. */
export type FunctionSource = { expr: string } | { graph: unknown };

/** The most bytes an `@file` (or standard input) may hold by default: the server's BODY_LIMIT, 48 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 48 * 1024 * 1024;

/** How many bytes a file the command reads may hold (--max-file-bytes, $ADJOINT_MAX_FILE_BYTES); set once by main. */
let maxFileBytes = DEFAULT_MAX_FILE_BYTES;

export function setMaxFileBytes(bytes: number): void {
  maxFileBytes = bytes;
}

/** Text from `@path` (a file; `@-` is standard input), else the argument itself. */
export function readArgument(argument: string): string {
  if (!argument.startsWith('@')) return argument;
  return readText(argument.slice(1));
}

const CHUNK_BYTES = 1 << 16;

/**
 * A file's text; `-` is standard input. Only a regular file is read (a FIFO would hang, a device
 * such as /dev/zero never ends, a directory has no text), and never more than the limit: its
 * size is checked before reading, and reading stops one byte past the limit whatever fstat said
 * (a file may grow; standard input has no size).
 */
export function readText(path: string): string {
  const what = path === '-' ? 'standard input' : path;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer before fstat can refuse it.
    fd = path === '-' ? 0 : openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new InputError(`cannot read ${what}: ${(error as Error).message}`);
  }
  try {
    const stats = fstatSync(fd);
    if (path !== '-' && !stats.isFile()) throw new InputError(`cannot read ${what}: it is ${kindOf(stats)}, not a regular file (give a file, or @- for standard input)`);
    if (path === '-' && stats.isDirectory()) throw new InputError('cannot read standard input: it is a directory');
    if (stats.isFile() && stats.size > maxFileBytes) throw tooLarge(what, stats.size);
    return readBounded(fd, what);
  } finally {
    if (path !== '-') closeSync(fd);
  }
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function tooLarge(what: string, bytes?: number): InputError {
  const size = bytes === undefined ? `more than ${maxFileBytes} bytes` : `${bytes} bytes`;
  return new InputError(`${what} holds ${size}, above the limit of ${maxFileBytes} bytes (raise it with --max-file-bytes N or $ADJOINT_MAX_FILE_BYTES)`);
}

/** Reads `fd` to its end, refusing it once it passes the limit. */
function readBounded(fd: number, what: string): string {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, maxFileBytes + 1 - total));
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, null);
    } catch (error) {
      // Standard input may be a non-blocking pipe: wait for its writer a little and ask again.
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      throw new InputError(`cannot read ${what}: ${(error as Error).message}`);
    }
    if (n === 0) break;
    total += n;
    if (total > maxFileBytes) throw tooLarge(what);
    chunks.push(chunk.subarray(0, n));
  }
  return Buffer.concat(chunks, total).toString('utf8');
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
 * Values by name, from `name=value` arguments (the value a number, a JSON array or @file) or whole JSON
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
    // `x=@x.json`: the value from a file (a large array, written by another program).
    values[item.slice(0, equals).trim()] = parseValue(readArgument(item.slice(equals + 1)), `${option} ${item}`);
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
