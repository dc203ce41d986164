// RFC 6901 JSON pointers: where in the target's JSON answer the logits are.

/** The reference tokens of a pointer (`""` is the whole document); undefined when it is malformed. */
export function parsePointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  const tokens = pointer.slice(1).split('/');
  // `~` must be followed by 0 (`~`) or 1 (`/`); ~1 is undone before ~0, so `~01` is `~1`.
  if (tokens.some((t) => /~(?![01])/.test(t))) return undefined;
  return tokens.map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

/** The value at `tokens` in `document`, or undefined when there is none. */
export function resolvePointer(document: unknown, tokens: readonly string[]): unknown {
  let here = document;
  for (const token of tokens) {
    if (Array.isArray(here)) {
      if (!ARRAY_INDEX.test(token)) return undefined;
      here = here[Number(token)];
    } else if (typeof here === 'object' && here !== null && Object.hasOwn(here, token)) {
      here = (here as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return here;
}
