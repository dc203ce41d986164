// IP addresses as the probe's guard sees them: every spelling parsed to its bytes (an IPv4 address
// embedded in IPv6 — mapped, NAT64, 6to4 — is judged as the IPv4 address it carries), then
// classified so that only globally reachable unicast addresses pass without being named.

import { isIPv4, isIPv6 } from 'node:net';

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6). */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

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

/** Parses a strict dotted quad or any IPv6 text (brackets and a zone id allowed); undefined otherwise. */
export function parseIp(text: string): IpAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIPv4(bare)) return { family: 4, bytes: Uint8Array.from(bare.split('.').map(Number)) };
  const unzoned = bare.split('%', 1)[0]!;
  if (!isIPv6(unzoned)) return undefined;
  return { family: 6, bytes: ipv6Bytes(unzoned) };
}

function ipv6Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let groups = text;
  const tail: number[] = [];
  // A trailing dotted quad fills the last 32 bits.
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail.push(...text.slice(lastColon + 1).split('.').map(Number));
    groups = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = groups.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const front = parse(head);
  const back = rest === undefined ? [] : parse(rest);
  const words = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  if (tail.length === 4) bytes.set(tail, 12);
  return bytes;
}

/** The IPv4 address an IPv6 address stands for (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::). */
function embeddedIpv4(b: Uint8Array): Uint8Array | undefined {
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12, 16);
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return b.slice(12, 16);
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  return undefined;
}

/** The IPv4 form of an address when it has one (so ::ffff:127.0.0.1 is 127.0.0.1), else itself. */
export function canonicalIp(ip: IpAddress): IpAddress {
  if (ip.family === 6) {
    const b = ip.bytes;
    const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    if (mapped) return { family: 4, bytes: b.slice(12, 16) };
  }
  return ip;
}

/** Text to connect to: a dotted quad, or IPv6 groups in hex. */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return [...ip.bytes].join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  return words.join(':');
}

// [first address, prefix length, kind]: the IANA special-purpose IPv4 registry, every block that
// is not globally reachable.
const IPV4_BLOCKS: [string, number, Exclude<AddressKind, 'public'>][] = [
  ['169.254.169.254', 32, 'metadata'],
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'], // carrier-grade NAT (100.100.100.200 is a cloud metadata service)
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

function ipv4Number(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

const IPV4_TABLE = IPV4_BLOCKS.map(([first, bits, kind]) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { network: ipv4Number(parseIp(first)!.bytes) & mask, mask, kind };
});

function classifyIpv4(bytes: Uint8Array): AddressKind {
  const n = ipv4Number(bytes);
  for (const block of IPV4_TABLE) if (((n & block.mask) >>> 0) === block.network >>> 0) return block.kind;
  return 'public';
}

/** Only global unicast (2000::/3) outside its special blocks is public. */
function classifyIpv6(b: Uint8Array): AddressKind {
  const embedded = embeddedIpv4(b);
  if (embedded) return classifyIpv4(embedded);
  const allZero = b.slice(0, 15).every((x) => x === 0);
  if (allZero && b[15] === 0) return 'unspecified';
  if (allZero && b[15] === 1) return 'loopback';
  const w0 = (b[0]! << 8) | b[1]!;
  const w1 = (b[2]! << 8) | b[3]!;
  if (w0 === 0xfd00 && w1 === 0x0ec2 && b.slice(4, 14).every((x) => x === 0) && b[14] === 0x02 && b[15] === 0x54) return 'metadata';
  if ((w0 & 0xffc0) === 0xfe80) return 'link-local';
  if ((w0 & 0xfe00) === 0xfc00 || (w0 & 0xffc0) === 0xfec0) return 'private'; // unique local, old site-local
  if ((w0 & 0xff00) === 0xff00) return 'multicast';
  if (w0 === 0x2001 && (w1 & 0xfe00) === 0) return 'reserved'; // IETF protocol assignments, Teredo
  if (w0 === 0x2001 && w1 === 0x0db8) return 'reserved'; // documentation
  if ((w0 & 0xe000) === 0x2000) return 'public';
  return 'reserved';
}

export function classifyIp(ip: IpAddress): AddressKind {
  return ip.family === 4 ? classifyIpv4(ip.bytes) : classifyIpv6(ip.bytes);
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
