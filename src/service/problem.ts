// The error model: every error the service answers with is an RFC 9457 problem
// (`application/problem+json`) with a stable machine-readable `code` (README "Errors").
// `toHttpProblem` turns anything thrown into one; a handler that wants a specific answer throws
// `new HttpProblem(status, code, detail)` (or lets an `EngineError` escape).

import { ProbeError, type ProbeErrorCode } from '../probe/errors.js';
import { z } from 'zod';
import { isEngineError, type EngineError, type EngineErrorCode } from '../engine/errors.js';
import { withAlternative } from './request.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Every code with its fixed human title. `type` is `urn:adjoint:problem:<code>`. */
const problemTitles = {
  invalid_json: 'Malformed JSON body',
  invalid_msgpack: 'Malformed MessagePack body',
  validation_error: 'Request does not match the schema',
  bad_request: 'Bad request',
  parse_error: 'Expression does not parse',
  unknown_function: 'Unknown function',
  probe_target_forbidden: 'Probe target not allowed',
  unauthorized: 'Missing or invalid API key',
  not_found: 'Not found',
  unsupported_media_type: 'Unsupported media type',
  limit_exceeded: 'Limit exceeded',
  unknown_input: 'Unknown name',
  missing_input: 'Missing input',
  invalid_graph: 'Invalid graph',
  shape_mismatch: 'Shape mismatch',
  not_scalar: 'Output is not a scalar',
  symbolic_unsupported: 'Not supported in symbolic tables',
  rate_limited: 'Too many requests',
  overloaded: 'Server overloaded',
  timeout: 'Timed out',
  out_of_memory: 'Out of memory',
  shutting_down: 'Server shutting down',
  probe_target_error: 'Probe target failed',
  probe_timeout: 'Probe target timed out',
  idempotency_conflict: 'Idempotency key reused',
  internal_error: 'Internal server error',
} as const;

export type ProblemCode = keyof typeof problemTitles;
export const PROBLEM_CODES = Object.keys(problemTitles) as [ProblemCode, ...ProblemCode[]];

/** The HTTP status of each prober error (a new code fails to compile until mapped here). */
const probeStatus: Record<ProbeErrorCode, number> = {
  validation_error: 400,
  probe_target_forbidden: 403,
  limit_exceeded: 422,
  rate_limited: 429,
  probe_target_error: 502,
  probe_timeout: 504,
  overloaded: 503,
};

function probeProblem(error: ProbeError): HttpProblem {
  const headers: Record<string, string> = error.retryAfterSeconds === undefined ? {} : { 'retry-after': String(error.retryAfterSeconds) };
  return new HttpProblem(probeStatus[error.code], error.code, error.detail, error.extra, { headers, cause: error });
}

/** The HTTP status of each engine error (a new engine code fails to compile until mapped here). */
const engineStatus: Record<EngineErrorCode, number> = {
  parse_error: 400,
  unknown_function: 400,
  validation_error: 400,
  unknown_input: 422,
  missing_input: 422,
  invalid_graph: 422,
  shape_mismatch: 422,
  not_scalar: 422,
  symbolic_unsupported: 422,
  limit_exceeded: 422,
};

export const SourcePositionSchema = z.object({
  line: z.int().min(1),
  column: z.int().min(1),
});

export const ProblemErrorSchema = z.object({
  path: z
    .string()
    .optional()
    .describe('Where in the request: a dotted path such as `at.X.2`; `""` is the whole body'),
  message: z.string(),
  position: SourcePositionSchema.optional(),
  node: z.string().optional(),
});

export type ProblemErrorEntry = z.infer<typeof ProblemErrorSchema>;

export const ProblemSchema = z
  .looseObject({
    type: z.string().describe('`urn:adjoint:problem:<code>`'),
    title: z.string().describe('A fixed human title for the code'),
    status: z.int().min(400).max(599),
    detail: z.string().describe('What went wrong and what to change'),
    code: z.enum(PROBLEM_CODES),
    errors: z.array(ProblemErrorSchema).optional(),
    position: SourcePositionSchema.optional().describe('Where in `expr` (1-based line and column)'),
    node: z.string().optional().describe('The offending node id of a `graph`'),
  })
  .meta({ id: 'Problem', description: 'An RFC 9457 problem details object' });

export type Problem = z.infer<typeof ProblemSchema>;

/** Fields a problem carries beyond the standard ones (`errors`, `position`, `node`, ...). */
export type ProblemExtras = Record<string, unknown> & {
  errors?: ProblemErrorEntry[];
  position?: { line: number; column: number };
  node?: string;
};

export interface HttpProblemOptions {
  /** Response headers that help the client, e.g. `retry-after`. */
  headers?: Record<string, string>;
  /** The error this problem stands for; logged, never sent. */
  cause?: unknown;
}

export class HttpProblem extends Error {
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extra: ProblemExtras = {},
    options: HttpProblemOptions = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = 'HttpProblem';
    this.headers = options.headers ?? {};
  }

  /** The response body. */
  toJSON(): Problem {
    return {
      type: `urn:adjoint:problem:${this.code}`,
      title: problemTitles[this.code],
      status: this.status,
      detail: this.detail,
      code: this.code,
      ...this.extra,
    };
  }
}

/** A dotted path, `at.X.2`, from path segments; `""` stands for the whole document. */
export function formatPath(segments: readonly PropertyKey[]): string {
  return segments.map(String).join('.');
}

/** A 400 `validation_error` listing each Zod issue with its path (for checks made in a handler). */
export function validationProblem(
  issues: readonly z.core.$ZodIssue[],
  pathPrefix: readonly PropertyKey[] = [],
): HttpProblem {
  const errors = issues.map((issue) => ({
    path: formatPath([...pathPrefix, ...issue.path]),
    message: issue.message,
  }));
  return new HttpProblem(400, 'validation_error', describeErrors(errors), { errors });
}

function describeErrors(errors: ProblemErrorEntry[]): string {
  const [first] = errors;
  if (first === undefined) return 'The request does not match the schema';
  const where = first.path ? ` at ${first.path}` : '';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return `The request does not match the schema: ${first.message}${where}${more}`;
}

function engineProblem(raised: EngineError): HttpProblem {
  // The endpoint an engine error suggests is named here, if nothing on its way named it already.
  const error = withAlternative(raised);
  const extra: ProblemExtras = {};
  if (error.position) extra.position = error.position;
  if (error.node !== undefined) extra.node = error.node;
  if (error.path) extra.errors = [{ path: formatPath(error.path), message: error.message }];
  return new HttpProblem(engineStatus[error.code], error.code, error.message, extra);
}

/** The fields of a Fastify error (and of an error from Fastify's schema validation). */
interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  validation?: unknown;
  validationContext?: unknown;
}

interface ValidationIssue {
  instancePath: string;
  message?: string;
}

function isValidationIssue(value: unknown): value is ValidationIssue {
  return (
    typeof value === 'object' && value !== null && typeof (value as ValidationIssue).instancePath === 'string'
  );
}

/** A schema violation reported by Fastify's validator (here: fastify-type-provider-zod). */
function schemaProblem(issues: ValidationIssue[], context: unknown): HttpProblem {
  // The body's paths are relative to the body; other parts say which part they are in.
  const prefix = typeof context === 'string' && context !== 'body' ? [context] : [];
  const errors = issues.map((issue) => ({
    path: formatPath([...prefix, ...issue.instancePath.split('/').filter((segment) => segment !== '')]),
    message: issue.message ?? 'is not valid',
  }));
  return new HttpProblem(400, 'validation_error', describeErrors(errors), { errors });
}

/**
 * Whether `error` says the client went away before its request was read whole: Node's `aborted`
 * (ECONNRESET) on the request stream, after the client closed the connection or the server cut off
 * a client too slow to send its body (REQUEST_TIMEOUT_MS).
 */
export function isClientAbort(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (code === 'ECONNRESET' && message === 'aborted') || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

const INTERNAL_ERROR_DETAIL =
  'An unexpected error occurred and has been logged; quote the x-request-id response header when reporting it';

export interface ProblemContext {
  /** The body size limit in bytes, to say it in a 413's detail. */
  bodyLimit?: number;
}

/**
 * Turns anything thrown while handling a request into a problem. Only `HttpProblem`,
 * `EngineError` and Fastify's own 4xx errors keep their message: any other error is a 500 whose
 * detail says nothing about internals (the original is kept as `cause`, for the log).
 */
export function toHttpProblem(error: unknown, context: ProblemContext = {}): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (isEngineError(error)) return engineProblem(error);
  if (error instanceof ProbeError) return probeProblem(error);
  if (isClientAbort(error)) {
    return new HttpProblem(400, 'bad_request', 'The connection closed before the whole request arrived', {}, { cause: error });
  }

  const framework = (typeof error === 'object' && error !== null ? error : {}) as FrameworkError;
  if (Array.isArray(framework.validation) && framework.validation.every(isValidationIssue)) {
    return schemaProblem(framework.validation, framework.validationContext);
  }
  switch (framework.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HttpProblem(400, 'invalid_json', 'The request body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HttpProblem(400, 'invalid_json', 'The request body is empty, but its content type is JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const limit = context.bodyLimit === undefined ? '' : ` of ${context.bodyLimit} bytes`;
      return new HttpProblem(413, 'limit_exceeded', `The request body is larger than the limit${limit}`);
    }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpProblem(415, 'unsupported_media_type', 'Send the request body as application/json (or application/msgpack)');
    case 'FST_ERR_NOT_FOUND':
      return new HttpProblem(404, 'not_found', 'No such resource');
  }
  // Fastify's other client errors (a malformed URL, a body shorter than its Content-Length...)
  // have messages written for clients.
  const status = framework.statusCode;
  const isFrameworkError = typeof framework.code === 'string' && framework.code.startsWith('FST_');
  if (isFrameworkError && typeof status === 'number' && status >= 400 && status < 500) {
    const detail = typeof framework.message === 'string' ? framework.message : 'Bad request';
    return new HttpProblem(status, 'bad_request', detail);
  }
  return new HttpProblem(500, 'internal_error', INTERNAL_ERROR_DETAIL, {}, { cause: error });
}

/** The problem+json body for any error (see `toHttpProblem`). */
export function toProblem(error: unknown, context: ProblemContext = {}): Problem {
  return toHttpProblem(error, context).toJSON();
}

const problemDescriptions: Record<number, string> = {
  400: 'Malformed request: `invalid_json`, `invalid_msgpack`, `validation_error`, `parse_error`, `unknown_function`',
  401: 'No valid API key (when the server requires one): `unauthorized`, with `WWW-Authenticate: Bearer`',
  403: 'Forbidden: `probe_target_forbidden`',
  404: 'No such resource: `not_found`',
  413: 'The request body is too large: `limit_exceeded`',
  415: 'The body is neither application/json nor application/msgpack, or is compressed (`Content-Encoding`): `unsupported_media_type`',
  422:
    'The request is well-formed but cannot be computed: `unknown_input`, `missing_input`, ' +
    '`invalid_graph`, `shape_mismatch`, `not_scalar`, `limit_exceeded`',
  429: 'Too many requests: `rate_limited`',
  500: 'A bug: `internal_error`',
  502: 'The probe target failed: `probe_target_error`',
  503: 'Not taking work now: `overloaded`, `timeout`, `out_of_memory`, `shutting_down`',
  504: 'The probe target timed out: `probe_timeout`',
};

/** OpenAPI response objects documenting problem answers, for a route's `schema.response`. */
export function problemResponses<const S extends number>(...statuses: S[]) {
  type ProblemResponse = {
    description: string;
    content: { [PROBLEM_CONTENT_TYPE]: { schema: typeof ProblemSchema } };
  };
  const responses = {} as Record<S, ProblemResponse>;
  for (const status of statuses) {
    responses[status] = {
      description: problemDescriptions[status] ?? 'A problem (see `code`)',
      content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
    };
  }
  return responses;
}
