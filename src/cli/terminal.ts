// What reaches a terminal is text, never commands to it. Expressions, files, ids and the service's
// messages may hold escape sequences (ESC [ 2 J clears the screen; OSC 52 writes the clipboard;
// a carriage return overwrites what a line said): every control character is shown as its
// `\uXXXX` escape instead, keeping the line breaks and tabs the output is laid out with.

/**
 * C0 controls but tab and line feed, DEL, C1 controls (0x80–0x9f, which some terminals obey as
 * 8-bit CSI/OSC), and the bidirectional overrides and isolates that reorder what a line shows.
 */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with its control characters as visible escapes: ESC becomes the six characters `\u001b`.
 * On JSON text (`--json` to a terminal) this keeps it the same JSON: a raw control character can
 * only stand inside a string, where `\u001b` means the same thing.
 */
export function visible(text: string): string {
  return text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

