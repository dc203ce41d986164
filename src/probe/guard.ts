// Which URLs the server may query on a client's behalf (README "Black-box probing"). A URL passes only when its
// origin, as the WHATWG URL parser normalises it (so 0x7f000001, 2130706433 and 127.1 are all
// 127.0.0.1), is on the operator's allow-list; its host is then resolved once, and every address
// must be public unless the allow-list names that very address and port. The connection is pinned
// to the checked address, so a second DNS answer (rebinding) is never used.

import { lookup } from 'node:dns/promises';
import { ProbeError } from './errors.js';
import { canonicalIp, classifyIp, describeKind, formatIp, ipKey, parseIp, type IpAddress } from './address.js';
import { parseAllowedOrigins, SCHEMES } from './origins.js';

/** Resolves a host name to its addresses (`dns.lookup` by default; tests inject their own). */
export type HostResolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: HostResolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** A URL that passed the guard, and the one address every connection for it must go to. */
export interface PinnedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

function forbidden(detail: string): ProbeError {
  return new ProbeError('probe_target_forbidden', detail);
}

/** The port a URL connects to (its explicit port, or the scheme's). */
function portOf(url: URL): string {
  return url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
}

export class TargetGuard {
  private readonly origins: Set<string>;
  /** `address|port` of every allow-list entry whose host is an IP address: the addresses it names. */
  private readonly named: Set<string>;

  constructor(
    allowedOrigins: readonly string[],
    private readonly resolve: HostResolver = systemResolver,
  ) {
    const origins = parseAllowedOrigins(allowedOrigins);
    this.origins = new Set(origins);
    this.named = new Set();
    for (const origin of origins) {
      const url = new URL(origin);
      const ip = parseIp(url.hostname);
      if (ip) this.named.add(`${ipKey(ip)}|${portOf(url)}`);
    }
  }

  /** Checks `raw`, resolves its host once, and answers where to connect; throws a 400 or 403 problem. */
  async admit(raw: string, lookupTimeoutMs = 5000): Promise<PinnedTarget> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ProbeError('validation_error', `target.url is not a valid absolute URL`, {
        errors: [{ path: 'target.url', message: 'is not a valid absolute URL' }],
      });
    }
    if (!SCHEMES.has(url.protocol)) {
      throw forbidden(`Only http and https targets are fetched; this URL's scheme is ${url.protocol.slice(0, -1)}`);
    }
    if (url.username !== '' || url.password !== '') {
      throw forbidden('The target URL carries credentials; send them in target.headers instead');
    }
    if (this.origins.size === 0) {
      throw forbidden('URL targets are off on this server: its PROBE_ALLOWED_ORIGINS is empty (an { expr } target still works)');
    }
    if (!this.origins.has(url.origin)) {
      throw forbidden(`The origin ${url.origin} is not in PROBE_ALLOWED_ORIGINS`);
    }

    const literal = parseIp(url.hostname);
    const addresses = literal ? [literal] : await this.lookup(url.hostname, lookupTimeoutMs);
    const port = portOf(url);
    for (const ip of addresses) {
      const kind = classifyIp(ip);
      if (kind !== 'public' && !this.named.has(`${ipKey(ip)}|${port}`)) {
        const what = literal
          ? `${url.hostname} is ${describeKind(kind)}`
          : `${url.hostname} resolves to ${formatIp(canonicalIp(ip))}, ${describeKind(kind)}`;
        throw forbidden(`${what}; it is probed only when PROBE_ALLOWED_ORIGINS names that very address and port`);
      }
    }
    const pinned = canonicalIp(addresses[0]!);
    return { url, address: formatIp(pinned), family: pinned.family };
  }

  private async lookup(hostname: string, timeoutMs: number): Promise<IpAddress[]> {
    let answers: { address: string; family: number }[];
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeError('probe_timeout', `Resolving ${hostname} took longer than ${timeoutMs} ms`, { queries: 0 })), timeoutMs);
    });
    try {
      answers = await Promise.race([this.resolve(hostname), expired]);
    } catch (e) {
      if (e instanceof ProbeError) throw e;
      throw new ProbeError('probe_target_error', `The target host ${hostname} does not resolve`, { queries: 0 });
    } finally {
      clearTimeout(timer);
    }
    const addresses = answers.map((a) => parseIp(a.address));
    if (addresses.length === 0 || addresses.some((a) => a === undefined)) {
      throw new ProbeError('probe_target_error', `The target host ${hostname} does not resolve to an IP address`, { queries: 0 });
    }
    return addresses as IpAddress[];
  }
}
