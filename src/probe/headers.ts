// The headers a client asks a probe to send to its target, checked as HTTP fields (RFC 9110 §5.1,
// §5.5) before anything is resolved or sent. The HTTP client refuses a field it cannot write (and
// undici 7 then keeps a connection slot busy for good, so later queries wait past any time limit):
// such a field must never reach it. A name is a token; a value is visible ASCII (0x21–0x7E), with
// spaces and tabs only between visible characters, or empty. obs-text (bytes ≥ 0x80) is refused:
// RFC 9110 keeps it only for old messages, and a JavaScript string has no single byte form of it.

/** A field name: one or more tchar (RFC 9110 §5.6.2). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A field value: field-vchar, with SP and HTAB only inside (no leading or trailing whitespace); empty allowed. */
export const HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

/** Headers the client may not set: the server sets framing and the connection itself. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
]);

/** The first character of `text` (a code point) that is not allowed, written so a person can read it: U+2028. */
function describeCharacter(text: string, allowed: RegExp): string | undefined {
  for (const character of text) {
    if (!allowed.test(character)) return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return undefined;
}

/** Why a header name is refused, or undefined when it may be sent. */
export function headerNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is an empty header name';
  if (!HEADER_NAME.test(name)) {
    const bad = describeCharacter(name, /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/);
    return `is not a valid header name: ${bad} is not allowed (a name is letters, digits and !#$%&'*+-.^_\`|~)`;
  }
  if (RESERVED_HEADERS.has(name.toLowerCase())) return 'is set by the server and may not be given';
  return undefined;
}

/** Why a header value is refused, or undefined when it may be sent. */
export function headerValueProblem(value: string): string | undefined {
  if (HEADER_VALUE.test(value)) return undefined;
  if (/^[ \t]|[ \t]$/.test(value)) return 'may not begin or end with a space or a tab';
  const bad = describeCharacter(value, /^[\x20-\x7e\t]$/);
  return `may hold only visible ASCII characters, spaces and tabs (RFC 9110 field value); it holds ${bad}`;
}
