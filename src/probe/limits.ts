// What one probe, and one client, may make the server send (issue 9): the bytes of the request
// bodies one probe sends (PROBE_MAX_OUTBOUND_BYTES: estimated before anything is sent, then
// counted as the bodies go), and the queries one client's probes send per minute
// (PROBE_CLIENT_QUERIES_PER_MINUTE, across all its probes). A probe's evaluations of an
// { expr } target are bounded by PROBE_MAX_FLOPS instead (see Prober).

import type { BodyTemplate } from './body-template.js';
import { ProbeFailure } from './failure.js';
import type { ProbeMethod } from './methods.js';

/**
 * The longest JSON text of a float64 as JavaScript writes it: `-0.0000012345678901234567`
 * (17 significant digits in fixed notation down to 1e-6, then exponent notation, which is
 * shorter: `-1.2345678901234567e-100` has 24 characters).
 */
export const MAX_NUMBER_CHARACTERS = 25;

/** The UTF-8 size of a value's JSON text. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

/** Characters of a number's JSON text (JavaScript writes a finite number as `String` does; −0 as 0). */
export function numberCharacters(x: number): number {
  return String(x).length;
}

/**
 * An upper bound on the bytes of the request bodies a probe plans to send: the first body (the
 * input as given) and `planned − 1` perturbed ones, each of whose numbers is written as the
 * estimator will write it. Forward and central differences move one coordinate by
 * h = ε·max(1, |x|) (exact); spsa moves every coordinate by ±σ·max(1, |x|) (each counted at the
 * longer of the two); nes by a Gaussian multiple of it (counted at the longest a float64 can be,
 * MAX_NUMBER_CHARACTERS); occlusion removes a token or replaces it by `mask`. Retries are not
 * planned: they are counted as they go.
 */
export function plannedOutboundBytes(
  template: BodyTemplate,
  method: ProbeMethod,
  input: { json: string; numbers?: Float64Array | undefined; epsilon?: number | undefined; mask?: unknown },
  planned: number,
): { first: number; perturbed: number; total: number } {
  const inputBytes = Buffer.byteLength(input.json, 'utf8');
  const first = template.bytes(inputBytes);
  const numbers = input.numbers ?? new Float64Array(0);
  const epsilon = input.epsilon ?? 0;
  const step = (x: number) => epsilon * Math.max(1, Math.abs(x));
  const uniform = (perturbedInputBytes: number) => {
    const each = template.bytes(perturbedInputBytes);
    return { first, perturbed: each, total: first + Math.max(0, planned - 1) * each };
  };
  switch (method) {
    case 'forward':
    case 'central': {
      // One query (forward) or two (central) per coordinate, each changing that coordinate only.
      let total = first;
      let largest = first;
      for (const x of numbers) {
        const moves = method === 'forward' ? [x + step(x)] : [x + step(x), x - step(x)];
        for (const moved of moves) {
          const bytes = template.bytes(inputBytes - numberCharacters(x) + numberCharacters(moved));
          total += bytes;
          largest = Math.max(largest, bytes);
        }
      }
      return { first, perturbed: largest, total };
    }
    case 'spsa':
    case 'nes': {
      let growth = 0;
      for (const x of numbers) {
        const longest = method === 'spsa' ? Math.max(numberCharacters(x + step(x)), numberCharacters(x - step(x))) : MAX_NUMBER_CHARACTERS;
        growth += Math.max(0, longest - numberCharacters(x));
      }
      return uniform(inputBytes + growth);
    }
    case 'occlusion':
      // Removing a token shortens the input; a mask may be longer than the token it replaces.
      return uniform(inputBytes + (input.mask === undefined ? 0 : jsonBytes(input.mask)));
    case 'shapley':
      // A coalition masks up to every token.
      return uniform(inputBytes + (input.mask === undefined ? 0 : jsonBytes(input.mask) * tokenCount(input.json)));
  }
}

/** How many tokens a token list's JSON holds. */
function tokenCount(json: string): number {
  const tokens: unknown = JSON.parse(json);
  return Array.isArray(tokens) ? tokens.length : 1;
}

/** The bytes of the request bodies one probe has sent; refuses a body that would pass `limit`. */
export class OutboundBytes {
  private sentBytes = 0;

  constructor(readonly limit: number) {}

  get sent(): number {
    return this.sentBytes;
  }

  /** A body of `bytes` is about to be sent; throws a ProbeFailure ('limit') when it would pass the limit. */
  take(bytes: number): void {
    if (this.sentBytes + bytes > this.limit) {
      throw new ProbeFailure(
        'limit',
        `The next query's body (${bytes} bytes) would take the probe's requests past this server's PROBE_MAX_OUTBOUND_BYTES of ${this.limit} bytes (${this.sentBytes} sent so far, retries included); lower budget, or send a smaller body template or input`,
      );
    }
    this.sentBytes += bytes;
  }
}

interface QuotaWindow {
  /** Epoch ms when the window began; it ends `windowMs` later. */
  readonly start: number;
  used: number;
}

/**
 * Queries a probe holds in its client's window (see ClientQuotas.admit): the window itself in this
 * process, or the key of a shared window in Redis (RedisQuotas).
 */
export interface Reservation {
  readonly client: string;
  readonly window: QuotaWindow | string | undefined;
}

/** Where the clients' windows are kept: this process (ClientQuotas), or Redis, shared by replicas. */
export interface QuotaStore {
  /** Reserves `queries` in `client`'s window, or says how long until it has room. */
  admit(client: string, queries: number): Admission | Promise<Admission>;
  /** One more query beyond the reservation (a retry); false when the window has no room. */
  take(reservation: Reservation, queries?: number): boolean;
  /** Gives back reserved queries that were never sent, while their window is still open. */
  refund(reservation: Reservation, queries: number): void;
  close?(): Promise<void>;
}

export type Admission =
  | { ok: true; reservation: Reservation }
  /** The client's window has too little left: `used` of it spent, room again after `retryAfterMs`. */
  | { ok: false; used: number; left: number; retryAfterMs: number };

/**
 * Outbound queries per client in fixed windows (a window opens at the client's first query after
 * the last one closed). The table holds only clients whose window is open, ordered by when it
 * opened, so expired ones are pruned from the front; it never holds more than `maxClients` (the
 * oldest window is forgotten first).
 */
export class ClientQuotas implements QuotaStore {
  private readonly windows = new Map<string, QuotaWindow>();

  constructor(
    /** Queries per client per window; 0: unlimited. */
    readonly perWindow: number,
    readonly windowMs = 60_000,
    readonly maxClients = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Clients whose window is open (for tests and metrics). */
  get clients(): number {
    this.prune(this.now());
    return this.windows.size;
  }

  /** Reserves `queries` in `client`'s window, or says how long until it has room. */
  admit(client: string, queries: number): Admission {
    if (this.perWindow === 0) return { ok: true, reservation: { client, window: undefined } };
    const window = this.current(client);
    if (window.used + queries > this.perWindow) {
      return { ok: false, used: window.used, left: this.perWindow - window.used, retryAfterMs: Math.max(0, window.start + this.windowMs - this.now()) };
    }
    window.used += queries;
    return { ok: true, reservation: { client, window } };
  }

  /** One more query beyond the reservation (a retry), in the client's current window; false when it has no room. */
  take(reservation: Reservation, queries = 1): boolean {
    if (this.perWindow === 0) return true;
    const window = this.current(reservation.client);
    if (window.used + queries > this.perWindow) return false;
    window.used += queries;
    return true;
  }

  /** Gives back reserved queries that were never sent, while their window is still the client's. */
  refund(reservation: Reservation, queries: number): void {
    const { window } = reservation;
    if (typeof window !== 'object' || queries <= 0) return;
    if (this.windows.get(reservation.client) === window) window.used = Math.max(0, window.used - queries);
  }

  private current(client: string): QuotaWindow {
    const now = this.now();
    this.prune(now);
    const open = this.windows.get(client);
    if (open !== undefined) return open;
    if (this.windows.size >= this.maxClients) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    const window = { start: now, used: 0 };
    this.windows.set(client, window);
    return window;
  }

  /** Forgets every window that has closed (they are in the order they opened). */
  private prune(now: number): void {
    for (const [client, window] of this.windows) {
      if (now < window.start + this.windowMs) return;
      this.windows.delete(client);
    }
  }
}

/**
 * The bytes of request bodies for perturbed inputs known in advance, each given as how many
 * characters its JSON text has more (or fewer) than the input's: exact, since each number is
 * written as JavaScript writes it (image.ts `groupGrowths`).
 */
export function perturbedOutboundBytes(template: BodyTemplate, inputJson: string, growths: Iterable<number>): { first: number; perturbed: number; total: number } {
  const inputBytes = Buffer.byteLength(inputJson, 'utf8');
  const first = template.bytes(inputBytes);
  let total = first;
  let largest = first;
  for (const growth of growths) {
    const bytes = template.bytes(inputBytes + growth);
    total += bytes;
    largest = Math.max(largest, bytes);
  }
  return { first, perturbed: largest, total };
}
