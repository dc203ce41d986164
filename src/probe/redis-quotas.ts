// The clients' query windows in Redis, when replicas share a Redis (REDIS_URL): a client's probes
// on every replica draw on one PROBE_CLIENT_QUERIES_PER_MINUTE. Windows are fixed and aligned to
// the clock (window k covers [k·windowMs, (k + 1)·windowMs)), one key each, expiring with it; a
// reservation is one atomic script (read, compare, add), so two replicas cannot both take the
// last room. Retries beyond a reservation are added as they are sent but not refused (the answer
// would come too late to hold a query back), and unsent queries are given back while the window
// lasts. While Redis does not answer, probes of URL targets are refused (503), never let through.

import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Admission, QuotaStore, Reservation } from './limits.js';

const PREFIX = 'adjoint:probe-quota:';
/** How long a command may wait for Redis. */
const COMMAND_TIMEOUT_MS = 2000;

/** KEYS[1] the window; ARGV queries, limit, expiry ms. Adds and answers {1, used}, or answers {0, used}. */
const RESERVE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, used}
`;

/** KEYS[1] the window; ARGV queries. Adds (a retry) without a limit, keeping the window's expiry. */
const ADD = `
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return used
`;

/** KEYS[1] the window; ARGV queries. Gives back, only while the window exists. */
const REFUND = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local used = redis.call('DECRBY', KEYS[1], ARGV[1])
  if used < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
end
return 0
`;

export class RedisQuotas implements QuotaStore {
  readonly #redis: Redis;

  constructor(
    url: string,
    /** Queries per client per window; 0: unlimited. */
    readonly perWindow: number,
    readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly log: (error: Error) => void = () => undefined,
  ) {
    // A reservation fails within seconds while Redis is unreachable (the probe is refused), never
    // hangs; one made while the connection is still being opened waits for it.
    this.#redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: COMMAND_TIMEOUT_MS });
    this.#redis.on('error', log);
  }

  async admit(client: string, queries: number): Promise<Admission> {
    if (this.perWindow === 0) return { ok: true, reservation: { client, window: undefined } };
    const now = this.now();
    const key = this.#keyOf(client, now);
    const windowEnd = (Math.floor(now / this.windowMs) + 1) * this.windowMs;
    // Kept a window longer than it lasts, so a late refund still finds it (and is then harmless).
    const [ok, used] = (await this.#redis.eval(RESERVE, 1, key, queries, this.perWindow, windowEnd - now + this.windowMs)) as number[];
    if (ok === 1) return { ok: true, reservation: { client, window: key } };
    return { ok: false, used: used!, left: Math.max(0, this.perWindow - used!), retryAfterMs: Math.max(0, windowEnd - now) };
  }

  take(reservation: Reservation, queries = 1): boolean {
    if (this.perWindow === 0) return true;
    const key = this.#keyOf(reservation.client, this.now());
    this.#redis.eval(ADD, 1, key, queries, 2 * this.windowMs).catch(this.log);
    return true;
  }

  refund(reservation: Reservation, queries: number): void {
    if (typeof reservation.window !== 'string' || queries <= 0) return;
    this.#redis.eval(REFUND, 1, reservation.window, queries).catch(this.log);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  /** The window's key: the client hashed (an API key id or an address, kept out of Redis as text). */
  #keyOf(client: string, now: number): string {
    const digest = createHash('sha256').update(client).digest('hex').slice(0, 32);
    return `${PREFIX}${digest}:${Math.floor(now / this.windowMs)}`;
  }
}
