// What every command is made of: its options, the request it sends and how it shows the answer,
// the exit codes, and the readers of option values they share.

import type { paths } from '../../clients/typescript/src/schema.js';
import { InputError } from './inputs.js';

/**
 * Exit codes (docs/cli.md): 0 answered (and passed), 1 a check or grade that did not pass, 2 a
 * usage or input error (nothing sent), 3 the service unreachable or failing (5xx, 429, 408: try
 * again), 4 the service answered with a problem (4xx: the request was refused), 5 the answer came
 * but could not be shown (a bug here: --json or --out FILE still give it).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, problem: 4, internal: 5 } as const;

/** The 200 JSON answer of an operation, as the generated client types (clients/typescript/src/schema.d.ts) describe it. */
export type AnswerOf<P extends keyof paths, M extends 'get' | 'post' = 'post'> = paths[P][M] extends { responses: { 200: { content: { 'application/json': infer A } } } } ? A : never;

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** The value's placeholder in the help, for string options. */
  value?: string;
  help: string;
}

/** What parseArgs gives a command: its options by name, and its positional arguments. */
export interface Parsed {
  options: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** A request to send: the route, the body, and the expression (for carets under errors). */
export interface Request {
  /** POST unless said (GET /ops). */
  method?: 'GET' | 'POST';
  path: string;
  body?: Record<string, unknown>;
  source?: string;
  /** Always run as a job, with a progress bar (probes): POST ...?async=true. */
  job?: boolean;
}

/** What a command prints for an answer, and whether it passed (exit code 0 or 1). */
export interface Shown {
  text: string;
  passed: boolean;
}

export interface Command {
  summary: string;
  usage: string;
  /** More lines of help after the options. */
  notes?: string;
  options: Record<string, OptionSpec>;
  request(parsed: Parsed): Request;
  /** `answer` is the parsed JSON, or the body's text when the answer is not JSON (a graph). */
  show(answer: unknown, parsed: Parsed): Shown | Promise<Shown>;
  /** The answer is text to print as it came (DOT), not JSON: shown on a terminal with its controls escaped only. */
  exactText?: boolean;
}

export const str = (parsed: Parsed, name: string): string | undefined => parsed.options[name] as string | undefined;
export const list = (parsed: Parsed, name: string): string[] | undefined => parsed.options[name] as string[] | undefined;

export function numberOption(parsed: Parsed, name: string): number | undefined {
  const text = str(parsed, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || Number.isNaN(value)) throw new InputError(`--${name} ${text}: must be a number`);
  return value;
}

/** The printing precision: --digits, else `fallback` (undefined: every digit of the float64). */
export function digitsOf(parsed: Parsed, fallback?: number): number | undefined {
  const digits = numberOption(parsed, 'digits');
  if (digits === undefined) return fallback;
  if (!Number.isInteger(digits) || digits < 1 || digits > 17) throw new InputError('--digits: must be an integer from 1 to 17');
  return digits;
}

export function oneOf<T extends string>(parsed: Parsed, name: string, choices: readonly T[]): T | undefined {
  const value = str(parsed, name);
  if (value !== undefined && !(choices as readonly string[]).includes(value)) throw new InputError(`--${name} ${value}: must be one of ${choices.join(', ')}`);
  return value as T | undefined;
}

/** Fields with a value only: the service's defaults apply to the rest. */
export function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** Writes what a command was asked to keep (--svg, --png, --out): a write error is the user's to fix (exit code 2). */
export async function writeAnswerFile(path: string, data: string | Uint8Array): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  try {
    await writeFile(path, data);
  } catch (error) {
    throw new InputError(`cannot write ${path}: ${(error as Error).message}`);
  }
}
