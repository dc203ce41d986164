// Errors the engine raises about a client's function or point. The service maps `code` to an
// HTTP status (README "Errors"); the engine itself knows nothing of HTTP.

export type EngineErrorCode =
  | 'parse_error'
  | 'unknown_function'
  | 'unknown_input'
  | 'missing_input'
  | 'invalid_graph'
  | 'validation_error'
  | 'shape_mismatch'
  | 'not_scalar'
  | 'symbolic_unsupported'
  | 'limit_exceeded';

/** 1-based line and column in an expression's source. */
export interface SourcePosition {
  line: number;
  column: number;
}

/** A source span: where a piece of an expression starts and ends (end exclusive). */
export interface SourceSpan extends SourcePosition {
  offset: number;
  endOffset: number;
}

/**
 * Another computation the caller could ask for instead, when this one cannot be done: the engine
 * names no endpoint, so the service words it (`jacobian_or_vjp`: a Jacobian or a vector-Jacobian
 * product of a non-scalar output; `hvp`: Hessian-vector products instead of a whole Hessian).
 */
export type EngineAlternative = 'jacobian_or_vjp' | 'hvp';

export interface EngineErrorOptions {
  position?: SourcePosition | undefined;
  node?: string | undefined;
  /** JSON path of the offending request field, e.g. ['at', 'X', 2]. */
  path?: (string | number)[] | undefined;
  alternative?: EngineAlternative | undefined;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly position: SourcePosition | undefined;
  readonly node: string | undefined;
  readonly path: (string | number)[] | undefined;
  readonly alternative: EngineAlternative | undefined;

  constructor(code: EngineErrorCode, message: string, options: EngineErrorOptions = {}) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
    this.position = options.position ? { line: options.position.line, column: options.position.column } : undefined;
    this.node = options.node;
    this.path = options.path;
    this.alternative = options.alternative;
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError;
}
