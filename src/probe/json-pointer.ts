// RFC 6901 JSON pointers: where in the target's JSON answer the logits are. jsonpointer resolves
// them; two things stay ours. Validation: jsonpointer reads `~2` as text, so malformed pointers are
// refused here, before anything is sent. A guard: jsonpointer's `get` follows inherited properties
// (`/constructor` is the Object function, `/__proto__` Object.prototype, `/logits/length` a number
// that would pass for a logit), so a path is resolved only when its every step is an own property
// of an object or an index of an array.

import jsonpointer from 'jsonpointer';

/** The reference tokens of a pointer (`""` is the whole document); undefined when it is malformed. */
export function parsePointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  const tokens = pointer.slice(1).split('/');
  // `~` must be followed by 0 (`~`) or 1 (`/`); ~1 is undone before ~0, so `~01` is `~1`.
  if (tokens.some((t) => /~(?![01])/.test(t))) return undefined;
  return tokens.map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** The pointer text of `tokens` (escaped again: `~` as `~0`, `/` as `~1`). */
function pointerText(tokens: readonly string[]): string {
  return tokens.map((t) => `/${t.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

/** Whether each step of `tokens` from `document` is an own property of an object or an index of an array. */
function ownPath(document: unknown, tokens: readonly string[]): boolean {
  let here = document;
  for (const token of tokens) {
    const own = Array.isArray(here)
      ? ARRAY_INDEX.test(token) && Number(token) < here.length
      : typeof here === 'object' && here !== null && Object.hasOwn(here, token);
    if (!own) return false;
    here = (here as Record<string, unknown>)[token];
  }
  return true;
}

/** The value at `tokens` in `document`, or undefined when there is none (inherited properties are none). */
export function resolvePointer(document: unknown, tokens: readonly string[]): unknown {
  if (tokens.length === 0) return document;
  if (!ownPath(document, tokens)) return undefined;
  return jsonpointer.get(document as object, pointerText(tokens));
}
