// The lexer: source text to tokens, one at a time, so that the first error in the source is the
// one reported. Newlines inside ( ) or [ ] are skipped (Python's implicit line joining); outside
// them a newline is a statement separator and becomes a token.

import { EngineError } from '../errors.js';
import type { SourcePosition, SourceSpan } from '../errors.js';

export type PunctuationKind =
  | '+' | '-' | '*' | '/' | '^' | '**' | '@'
  | '<' | '<=' | '>' | '>=' | '==' | '!=' | '='
  | '(' | ')' | '[' | ']' | ',' | ':' | '.' | ';';

export type TokenKind = 'number' | 'name' | 'None' | 'newline' | 'eof' | PunctuationKind;

export interface Token extends SourceSpan {
  kind: TokenKind;
  /** The source text of the token ('' at the end of input). */
  text: string;
  /** The value of a `number` token; 0 for the others. */
  value: number;
}

const TWO_CHAR_PUNCTUATION: ReadonlySet<string> = new Set(['**', '<=', '>=', '==', '!=']);
const ONE_CHAR_PUNCTUATION: ReadonlySet<string> = new Set('+-*/^@<>=()[],:.;');

const isDigit = (c: number): boolean => c >= 48 && c <= 57; // 0-9
const isNameStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95; // A-Z a-z _
const isNameChar = (c: number): boolean => isNameStart(c) || isDigit(c);

export function parseError(message: string, position: SourcePosition): EngineError {
  return new EngineError('parse_error', message, { position: { line: position.line, column: position.column } });
}

export function where(position: SourcePosition): string {
  return `line ${position.line}, column ${position.column}`;
}

/** How an error message names a character the language does not use. */
function describeCharacter(source: string, offset: number): string {
  const codePoint = source.codePointAt(offset)!;
  if (codePoint >= 0x21 && codePoint <= 0x7e) return codePoint === 39 ? `"'"` : `'${String.fromCodePoint(codePoint)}'`;
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
}

export class Lexer {
  private offset = 0;
  private line = 1;
  private lineStart = 0;
  /** Open ( and [ not yet closed: while positive, newlines are not tokens. */
  private bracketDepth = 0;

  constructor(private readonly source: string) {}

  next(): Token {
    const source = this.source;
    const length = source.length;
    for (;;) {
      if (this.offset >= length) return this.token('eof', this.offset, this.offset);
      const c = source.charCodeAt(this.offset);
      if (c === 32 || c === 9 || c === 12) {
        this.offset++; // space, tab, form feed
      } else if (c === 35) {
        // '#' comment: up to (not including) the end of the line
        while (this.offset < length && !this.isLineBreak(source.charCodeAt(this.offset))) this.offset++;
      } else if (c === 10 || c === 13) {
        const start = this.offset;
        const startColumn = start - this.lineStart + 1;
        const startLine = this.line;
        this.offset += c === 13 && source.charCodeAt(start + 1) === 10 ? 2 : 1; // \r\n is one break
        this.line++;
        this.lineStart = this.offset;
        if (this.bracketDepth === 0) {
          return { kind: 'newline', text: '\n', value: 0, line: startLine, column: startColumn, offset: start, endOffset: start + 1 };
        }
      } else {
        break;
      }
    }

    const start = this.offset;
    const c = source.charCodeAt(start);
    if (isDigit(c) || (c === 46 && isDigit(source.charCodeAt(start + 1)))) return this.number(start);
    if (isNameStart(c)) {
      let end = start + 1;
      while (end < length && isNameChar(source.charCodeAt(end))) end++;
      return this.token(source.slice(start, end) === 'None' ? 'None' : 'name', start, end);
    }
    const two = source.slice(start, start + 2);
    if (TWO_CHAR_PUNCTUATION.has(two)) return this.token(two as PunctuationKind, start, start + 2);
    const one = source[start]!;
    if (ONE_CHAR_PUNCTUATION.has(one)) {
      if (one === '(' || one === '[') this.bracketDepth++;
      else if ((one === ')' || one === ']') && this.bracketDepth > 0) this.bracketDepth--;
      return this.token(one as PunctuationKind, start, start + 1);
    }
    const position = this.positionOf(start);
    const hint = one === '!' ? ": did you mean '!='?" : one === '\\' ? ': to continue a line, wrap the expression in parentheses' : '';
    throw parseError(`unknown character ${describeCharacter(source, start)} at ${where(position)}${hint}`, position);
  }

  /** `2`, `1.5e-3`, `.5`, `1.`, `1e10`: digits, an optional fraction, an optional exponent. */
  private number(start: number): Token {
    const source = this.source;
    let end = start;
    while (isDigit(source.charCodeAt(end))) end++;
    if (source.charCodeAt(end) === 46) {
      end++;
      while (isDigit(source.charCodeAt(end))) end++;
    }
    const e = source.charCodeAt(end);
    if (e === 101 || e === 69) {
      let digits = end + 1;
      const sign = source.charCodeAt(digits);
      if (sign === 43 || sign === 45) digits++;
      if (isDigit(source.charCodeAt(digits))) {
        end = digits;
        while (isDigit(source.charCodeAt(end))) end++;
      }
    }
    const position = this.positionOf(start);
    if (isNameChar(source.charCodeAt(end))) {
      let runEnd = end;
      while (isNameChar(source.charCodeAt(runEnd))) runEnd++;
      throw parseError(
        `invalid number '${source.slice(start, runEnd)}' at ${where(position)}: a number cannot run into a name ` +
          `(write '2*x' for a product, '1e-3' for a power of ten, '(2).T' for a transpose)`,
        position,
      );
    }
    const text = source.slice(start, end);
    const value = Number(text);
    if (!Number.isFinite(value)) {
      throw parseError(`number '${text}' at ${where(position)} is too large: it overflows a 64-bit float (max ~1.8e308)`, position);
    }
    return { ...this.token('number', start, end), value };
  }

  private isLineBreak(c: number): boolean {
    return c === 10 || c === 13;
  }

  private positionOf(offset: number): SourcePosition {
    return { line: this.line, column: offset - this.lineStart + 1 };
  }

  private token(kind: TokenKind, start: number, end: number): Token {
    this.offset = end;
    return { kind, text: this.source.slice(start, end), value: 0, ...this.positionOf(start), offset: start, endOffset: end };
  }
}
