// A refused request as an exception carrying the service's problem (README "Errors"):
// RFC 9457 application/problem+json with a stable `code`, and where the fault is.

import type { components } from './schema.js';

export type Problem = components['schemas']['Problem'];

/** The service's codes, and `http_error` for an answer that was not a problem (a proxy's page). */
export type ErrorCode = Problem['code'] | 'http_error';

type FieldError = NonNullable<Problem['errors']>[number];

function isProblem(body: unknown): body is Problem {
  return typeof body === 'object' && body !== null && 'code' in body && typeof body.code === 'string' && 'detail' in body;
}

/** A request the service refused: a 4xx or 5xx answer, with its problem. */
export class AdjointError extends Error {
  override readonly name = 'AdjointError';
  /** The HTTP status. */
  readonly status: number;
  /** The stable code: branch on this, not on the message. */
  readonly code: ErrorCode;
  /** What went wrong and what to change. */
  readonly detail: string;
  /** In an expression: the 1-based line and column of the fault. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** In a graph: the node at fault. */
  readonly node: string | undefined;
  /** Each fault of a request that did not match the schema: its field path (`at.x.2`) and message. */
  readonly errors: readonly FieldError[];
  /** The whole problem (for `retry-after` read `headers`). */
  readonly problem: Problem | undefined;
  readonly headers: Headers;

  constructor(status: number, body: unknown, headers: Headers = new Headers()) {
    const problem = isProblem(body) ? body : undefined;
    const code: ErrorCode = problem?.code ?? 'http_error';
    const detail = problem?.detail ?? (typeof body === 'string' && body !== '' ? body : `HTTP ${status}`);
    super(`${status} ${code}: ${detail}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    const position = problem?.position ?? problem?.errors?.find((error) => error.position !== undefined)?.position;
    this.line = position?.line;
    this.column = position?.column;
    this.node = problem?.node ?? problem?.errors?.find((error) => error.node !== undefined)?.node;
    this.errors = problem?.errors ?? [];
    this.problem = problem;
    this.headers = headers;
  }

  /** The first field path the problem names (`at.x`, `expr`), if any. */
  get path(): string | undefined {
    return this.errors.find((error) => error.path !== undefined)?.path;
  }
}
