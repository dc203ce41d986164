// IP addresses as the probe's guard sees them: parsed by ipaddr.js and classified by its special
// ranges (RFC 6890 and successors), so that only globally reachable unicast addresses pass
// without being named. An IPv4 address embedded in IPv6 — mapped, NAT64, 6to4 — is judged as the
// IPv4 address it carries; every range ipaddr.js names and we do not (Teredo, AS112, AMT, ranges
// added by later versions) is refused as reserved, and IPv6 "unicast" passes only inside 2000::/3.

import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/** A parsed address, as ipaddr.js holds it. */
export type IpAddress = { family: 4; address: ipaddr.IPv4 } | { family: 6; address: ipaddr.IPv6 };

/** Why an address is refused, in words for the problem detail; `public` passes. */
export type AddressKind =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'reserved';

/**
 * Parses a strict dotted quad or any IPv6 text (brackets and a zone id allowed, the zone dropped);
 * undefined otherwise. Loose IPv4 spellings (0x7f000001, 0177.0.0.1, 127.1) are the URL parser's
 * to normalise, not ours to guess.
 */
export function parseIp(text: string): IpAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return { family: 4, address: ipaddr.IPv4.parse(bare) };
  const unzoned = bare.split('%', 1)[0]!;
  // Node's strict syntax first: ipaddr.js also takes leading zeros in a trailing dotted quad.
  if (!isIPv6(unzoned)) return undefined;
  // ipaddr.js reads the deprecated IPv4-compatible ::a.b.c.d as ::ffff:a.b.c.d (mapped); with
  // the first group written out it reads it as what it is.
  return { family: 6, address: ipaddr.IPv6.parse(IPV4_COMPATIBLE.test(unzoned) ? `0${unzoned}` : unzoned) };
}

const IPV4_COMPATIBLE = /^::\d+\.\d+\.\d+\.\d+$/;

/** The IPv4 form of an address when it has one (so ::ffff:127.0.0.1 is 127.0.0.1), else itself. */
export function canonicalIp(ip: IpAddress): IpAddress {
  return ip.family === 6 && ip.address.isIPv4MappedAddress() ? { family: 4, address: ip.address.toIPv4Address() } : ip;
}

/** Text to connect to: a dotted quad, or all eight IPv6 groups in hex. */
export function formatIp(ip: IpAddress): string {
  return ip.address.toNormalizedString();
}

const METADATA = new Set(['169.254.169.254', 'fd00:ec2:0:0:0:0:0:254']);

// ipaddr.js range names to ours; a name missing here is 'reserved'.
const IPV4_KINDS = new Map<string, AddressKind>([
  ['unicast', 'public'],
  ['loopback', 'loopback'],
  ['private', 'private'],
  ['carrierGradeNat', 'private'], // 100.64.0.0/10 (100.100.100.200 is a cloud metadata service)
  ['linkLocal', 'link-local'],
  ['unspecified', 'unspecified'],
  ['multicast', 'multicast'],
]);

const IPV6_KINDS = new Map<string, AddressKind>([
  ['unicast', 'public'],
  ['loopback', 'loopback'],
  ['uniqueLocal', 'private'],
  ['deprecatedSiteLocal', 'private'],
  ['linkLocal', 'link-local'],
  ['unspecified', 'unspecified'],
  ['multicast', 'multicast'],
]);

const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64 = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

function ipv4Of(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** The IPv4 address an IPv6 address stands for (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::). */
function embeddedIpv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const parts = address.parts;
  if (address.isIPv4MappedAddress()) return address.toIPv4Address();
  if (address.match(NAT64)) return ipv4Of(parts[6]!, parts[7]!);
  if (address.range() === '6to4') return ipv4Of(parts[1]!, parts[2]!);
  return undefined;
}

function classifyIpv4(address: ipaddr.IPv4): AddressKind {
  if (METADATA.has(address.toNormalizedString())) return 'metadata';
  return IPV4_KINDS.get(address.range()) ?? 'reserved';
}

function classifyIpv6(address: ipaddr.IPv6): AddressKind {
  const embedded = embeddedIpv4(address);
  if (embedded) return classifyIpv4(embedded);
  if (METADATA.has(address.toNormalizedString())) return 'metadata';
  const kind = IPV6_KINDS.get(address.range()) ?? 'reserved';
  // ipaddr.js calls every address outside its special ranges unicast; only 2000::/3 is assigned.
  return kind === 'public' && !address.match(GLOBAL_UNICAST) ? 'reserved' : kind;
}

export function classifyIp(ip: IpAddress): AddressKind {
  return ip.family === 4 ? classifyIpv4(ip.address) : classifyIpv6(ip.address);
}

/** A key equal for equal addresses however spelt (an IPv4-mapped address keys as its IPv4 form). */
export function ipKey(ip: IpAddress): string {
  return formatIp(canonicalIp(ip));
}

const KIND_WORDS: Record<Exclude<AddressKind, 'public'>, string> = {
  loopback: 'a loopback address',
  private: 'a private address',
  'link-local': 'a link-local address',
  metadata: 'a cloud metadata address',
  unspecified: 'an unspecified ("this host") address',
  multicast: 'a multicast address',
  reserved: 'a reserved address',
};

export function describeKind(kind: Exclude<AddressKind, 'public'>): string {
  return KIND_WORDS[kind];
}
