// How the prober refuses a request or reports a failed probe: a code, a message that says what to
// change, and extras for the answer (queries spent, the offending field). The service maps each
// code to its HTTP status (src/service/problem.ts), as it does the engine's errors.

export type ProbeErrorCode = 'validation_error' | 'limit_exceeded' | 'rate_limited' | 'probe_target_forbidden' | 'probe_target_error' | 'probe_timeout' | 'overloaded';

export class ProbeError extends Error {
  constructor(
    readonly code: ProbeErrorCode,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    /** For `rate_limited` and `overloaded`: when the client may try again. */
    readonly retryAfterSeconds?: number,
  ) {
    super(detail);
    this.name = 'ProbeError';
  }
}

/** A request field that is wrong: 400 validation_error naming the field. */
export function invalidField(path: string, message: string, extra: Record<string, unknown> = {}): ProbeError {
  return new ProbeError('validation_error', `${path} ${message}`, { errors: [{ path, message }], ...extra });
}

/** A planned query count over the budget (or a budget over the server's maximum). */
export function overBudget(detail: string): ProbeError {
  return new ProbeError('limit_exceeded', detail, { errors: [{ path: 'budget', message: detail }] });
}
