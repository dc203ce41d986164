// An answer's JSON as bytes, without building its long strings twice. An answer with base64 arrays
// is mostly a few long strings of base64; JSON.stringify would copy each into one large new string
// (fresh memory, slow to touch on a VM) and TextEncoder would copy that again. Here the long
// strings are set aside, the rest (small) is stringified with a stand-in for each, and the bytes
// are written once into one buffer: the stand-ins' text from the small JSON, the long strings by a
// plain Latin-1 copy (base64 is ASCII and needs no escaping in JSON).

import { randomBytes } from 'node:crypto';

const encoder = new TextEncoder();

/** Strings of at least this many characters are set aside when they need no escaping. */
const LONG_STRING = 1 << 16;
/** A character base64 does not use: a string without one is copied into JSON as it is. */
const NOT_BASE64 = /[^A-Za-z0-9+/=]/;

interface SetAside {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
  text: string;
}

/** The long base64 strings of `value` (own enumerable properties and array elements, at any depth). */
function longStrings(value: unknown): SetAside[] {
  const found: SetAside[] = [];
  const pending: unknown[] = [value];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (typeof node !== 'object' || node === null || ArrayBuffer.isView(node)) continue;
    const visit = (holder: Record<string, unknown> | unknown[], key: string | number, child: unknown): void => {
      if (typeof child === 'object' && child !== null) pending.push(child);
      else if (typeof child === 'string' && child.length >= LONG_STRING && !NOT_BASE64.test(child)) found.push({ holder, key, text: child });
    };
    if (Array.isArray(node)) {
      // Nested arrays of numbers are most of a JSON-encoded answer: one pass, no key list.
      for (let i = 0; i < node.length; i++) if (typeof node[i] !== 'number') visit(node, i, node[i]);
    } else {
      const record = node as Record<string, unknown>;
      for (const key of Object.keys(record)) visit(record, key, record[key]);
    }
  }
  return found;
}

/**
 * `JSON.stringify(value)` as UTF-8 bytes: the same bytes, for any value JSON.stringify accepts
 * whose objects have no `toJSON` (answers are plain data). Long base64 strings are copied once.
 */
export function jsonBytes(value: unknown): Uint8Array {
  const aside = longStrings(value);
  // Memory of its own (not a slice of Buffer's shared pool): the bytes may be moved to another thread.
  if (aside.length === 0) return encoder.encode(JSON.stringify(value));
  // The stand-ins hold a random nonce, so no other string of the answer can pass for one.
  const tag = `aside-${randomBytes(8).toString('hex')}:`;
  const set = (i: number, to: string): void => {
    const { holder, key } = aside[i]!;
    (holder as Record<string | number, unknown>)[key] = to;
  };
  let skeleton: string;
  try {
    aside.forEach((_, i) => set(i, `${tag}${i}`));
    skeleton = JSON.stringify(value);
  } finally {
    aside.forEach(({ text }, i) => set(i, text));
  }
  // The skeleton's pieces between stand-ins, and which string each stand-in is.
  const pieces: string[] = [];
  const order: number[] = [];
  let from = 0;
  for (let at = skeleton.indexOf(tag); at >= 0; at = skeleton.indexOf(tag, at)) {
    const end = skeleton.indexOf('"', at);
    pieces.push(skeleton.slice(from, at));
    order.push(Number(skeleton.slice(at + tag.length, end)));
    from = at = end;
  }
  pieces.push(skeleton.slice(from));
  let length = 0;
  for (const piece of pieces) length += Buffer.byteLength(piece, 'utf8');
  for (const i of order) length += aside[i]!.text.length;
  const bytes = Buffer.allocUnsafeSlow(length);
  let offset = 0;
  pieces.forEach((piece, k) => {
    offset += bytes.write(piece, offset, 'utf8');
    if (k < order.length) offset += bytes.write(aside[order[k]!]!.text, offset, 'latin1');
  });
  return bytes;
}
