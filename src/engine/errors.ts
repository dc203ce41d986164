// Errors the engine raises about a client's function or point. The service maps `code` to an
// HTTP status (CONTRACT §7); the engine itself knows nothing of HTTP.

export type EngineErrorCode =
  | 'parse_error'
  | 'unknown_function'
  | 'unknown_input'
  | 'missing_input'
  | 'invalid_graph'
  | 'validation_error'
  | 'shape_mismatch'
  | 'not_scalar'
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

export interface EngineErrorOptions {
  position?: SourcePosition | undefined;
  node?: string | undefined;
  /** JSON path of the offending request field, e.g. ['at', 'X', 2]. */
  path?: (string | number)[] | undefined;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly position: SourcePosition | undefined;
  readonly node: string | undefined;
  readonly path: (string | number)[] | undefined;

  constructor(code: EngineErrorCode, message: string, options: EngineErrorOptions = {}) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
    this.position = options.position ? { line: options.position.line, column: options.position.column } : undefined;
    this.node = options.node;
    this.path = options.path;
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError;
}
