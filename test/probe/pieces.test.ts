// The probe's pieces one by one: address classification (every spelling parsed to its bytes first),
// JSON pointers, body templates, Retry-After, and query planning.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyIp, formatIp, canonicalIp, ipKey, parseIp } from '../../src/probe/address.js';
import { parsePointer, resolvePointer } from '../../src/probe/json-pointer.js';
import { BodyTemplate } from '../../src/probe/body-template.js';
import { parseRetryAfter } from '../../src/probe/client.js';
import { planQueries, withRetryReserve } from '../../src/probe/plan.js';

const kind = (text: string) => classifyIp(parseIp(text)!);

describe('classifyIp', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['2002:7f00:1::', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.100.100.200', 'private'],
    ['fd12:3456::1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['::7f00:1', 'reserved'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['::ffff:8.8.8.8', 'public'],
    ['2606:4700:4700::1111', 'public'],
    // IPv4 in IPv6: mapped, NAT64 and 6to4 carry the address they are judged as.
    ['[::ffff:7f00:1]', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:1', 'loopback'],
    ['::ffff:100.64.0.1', 'private'],
    ['::ffff:198.18.0.1', 'reserved'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b:1::a00:1', 'reserved'], // local-use NAT64 (RFC 8215)
    ['2002:c0a8:101::1', 'private'],
    ['2002:a9fe:a9fe::', 'metadata'],
    ['2002:a00:1::', 'private'],
    ['2002:808:808::1', 'public'],
    // Teredo carries a server's address and an obfuscated client's: all of it is refused.
    ['2001:0:a00:1::1', 'reserved'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'],
    // Other IPv4-in-IPv6 forms are refused whatever they carry.
    ['::ffff:0:8.8.8.8', 'reserved'], // IPv4-translated (RFC 6145)
    ['::8.8.8.8', 'reserved'], // IPv4-compatible (deprecated): not ::ffff:8.8.8.8
    ['::127.0.0.1', 'reserved'],
    ['::808:808', 'reserved'],
    // The special IPv4 blocks.
    ['0.1.2.3', 'unspecified'],
    ['[::]', 'unspecified'],
    ['0:0:0:0:0:0:0:0', 'unspecified'],
    ['239.255.255.250', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['100.128.0.1', 'public'],
    ['100.63.255.255', 'public'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['198.20.0.1', 'public'],
    ['198.17.255.255', 'public'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.8', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['192.31.196.1', 'reserved'], // AS112: no model is served from a DNS sink
    // The special IPv6 blocks, and everything outside 2000::/3.
    ['fec0::1', 'private'],
    ['fc00::1', 'private'],
    ['febf::1', 'link-local'],
    ['100::1', 'reserved'], // discard
    ['2001:2::1', 'reserved'], // benchmarking
    ['3fff::1', 'reserved'], // documentation (RFC 9637)
    ['4000::1', 'reserved'],
    ['5f00::1', 'reserved'],
    ['1fff:ffff::1', 'reserved'],
    ['2a00:1450:4001::200e', 'public'],
  ])('%s is %s', (address, expected) => {
    expect(kind(address)).toBe(expected);
  });

  it.each([
    ['0x7f000001', 'loopback'],
    ['2130706433', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['127.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['017700000001', 'loopback'],
    ['0x0a.0.0.1', 'private'],
    ['0xa9fea9fe', 'metadata'],
    ['0251.0376.0251.0376', 'metadata'],
    ['0', 'unspecified'],
    ['0xffffffff', 'reserved'],
    ['100.0x40.1', 'private'],
    ['0306.022.0.1', 'reserved'],
    ['[::ffff:127.0.0.1]', 'loopback'],
    ['[0:0:0:0:0:ffff:7f00:1]', 'loopback'],
    ['[::]', 'unspecified'],
    ['[64:ff9b::127.0.0.1]', 'loopback'],
    ['[fe80::1]', 'link-local'],
  ])('a URL host %s, as the URL parser normalises it, is %s', (host, expected) => {
    const { hostname } = new URL(`http://${host}:8080/predict`);
    expect(parseIp(hostname), hostname).toBeDefined();
    expect(kind(hostname)).toBe(expected);
  });

  it('parses only real addresses (host names and loose IPv4 spellings are left to the URL parser)', () => {
    for (const text of ['localhost', '0x7f000001', '2130706433', '127.1', '0177.0.0.1', '010.0.0.1', '1.2.3.256', '', '::g', '::1.2.3.04', '1:2:3:4:5:6:7:8:9', '[::1', ' ::1']) {
      expect(parseIp(text), text).toBeUndefined();
    }
  });

  it('reads every spelling of an IPv6 address as its eight groups (zeros compressed anywhere, a dotted tail, any case)', () => {
    const spelling = fc
      .record({
        words: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }),
        dotted: fc.boolean(),
        upper: fc.boolean(),
        run: fc.nat(7),
        compress: fc.boolean(),
      })
      .map(({ words, dotted, upper, run, compress }) => {
        let groups = words.map((w) => w.toString(16));
        if (upper) groups = groups.map((g) => g.toUpperCase());
        const tail = dotted ? [words[6]! >> 8, words[6]! & 0xff, words[7]! >> 8, words[7]! & 0xff].join('.') : undefined;
        if (tail) groups = [...groups.slice(0, 6), tail];
        // Compress the run of zero groups starting at `run`, if there is one.
        let end = run;
        while (compress && end < groups.length && groups[end] === '0') end++;
        const text = end > run ? `${groups.slice(0, run).join(':')}::${groups.slice(end).join(':')}` : groups.join(':');
        return { text, expected: words.map((w) => w.toString(16)).join(':') };
      });
    fc.assert(
      fc.property(spelling, ({ text, expected }) => {
        expect(formatIp(parseIp(text)!), text).toBe(expected);
      }),
      { numRuns: 2000 },
    );
    expect(formatIp(parseIp('::1:2:3:4:5:6:7')!)).toBe('0:1:2:3:4:5:6:7');
    expect(formatIp(parseIp('::1:2:3:4:5:1.2.3.4')!)).toBe('0:1:2:3:4:5:102:304');
    expect(formatIp(parseIp('::1.2.3.4')!)).toBe('0:0:0:0:0:0:102:304');
  });

  it('keys an IPv4-mapped address as its IPv4 form', () => {
    expect(ipKey(parseIp('::ffff:127.0.0.1')!)).toBe('127.0.0.1');
    expect(formatIp(canonicalIp(parseIp('[::ffff:7f00:1]')!))).toBe('127.0.0.1');
    expect(ipKey(parseIp('::1')!)).toBe(ipKey(parseIp('0:0:0:0:0:0:0:1')!));
  });
});

describe('JSON pointers (RFC 6901)', () => {
  const document = { logits: [[0.5, 2]], 'a/b': { 'm~n': 7 }, '': 3 };

  it.each([
    ['', document],
    ['/logits/0/1', 2],
    ['/a~1b/m~0n', 7],
    ['/', 3],
    ['/logits/01', undefined],
    ['/logits/-', undefined],
    ['/missing', undefined],
  ])('%j', (pointer, expected) => {
    expect(resolvePointer(document, parsePointer(pointer)!)).toEqual(expected);
  });

  it.each([
    ['/__proto__'],
    ['/constructor'],
    ['/constructor/name'],
    ['/toString'],
    ['/logits/length'],
    ['/logits/0/map'],
    ['/logits/5'],
    ['/a~1b/m~0n/toFixed'],
  ])('never reaches what the document does not hold itself: %s', (pointer) => {
    expect(resolvePointer(document, parsePointer(pointer)!)).toBeUndefined();
  });

  it('reads keys named like inherited properties when the document holds them', () => {
    const answer = JSON.parse('{"__proto__": {"logit": 1}, "constructor": [2], "length": 3}') as unknown;
    expect(resolvePointer(answer, parsePointer('/__proto__/logit')!)).toBe(1);
    expect(resolvePointer(answer, parsePointer('/constructor/0')!)).toBe(2);
    expect(resolvePointer(answer, parsePointer('/length')!)).toBe(3);
    expect(resolvePointer({}, parsePointer('/__proto__')!)).toBeUndefined();
  });

  it('answers undefined, never throws, where the path runs into a number, a string or null', () => {
    expect(resolvePointer(7, parsePointer('')!)).toBe(7);
    for (const answer of [7, 'text', null, { a: null }, { a: 'text' }]) {
      expect(resolvePointer(answer, parsePointer('/a/0')!)).toBeUndefined();
    }
  });

  it('refuses malformed pointers', () => {
    expect(parsePointer('logits')).toBeUndefined();
    expect(parsePointer('#/logits')).toBeUndefined();
    expect(parsePointer('/a~2')).toBeUndefined();
    expect(parsePointer('/~01')).toEqual(['~1']);
  });
});

describe('body templates', () => {
  it('replaces every "$input" value, never a key, and keeps the rest', () => {
    const template = BodyTemplate.compile({ instances: ['$input'], $input: 'kept', nested: { again: '$input', other: '$inputs' } })!;
    expect(JSON.parse(template.render('[1,2]'))).toEqual({ instances: [[1, 2]], $input: 'kept', nested: { again: [1, 2], other: '$inputs' } });
    expect(BodyTemplate.compile('$input')!.render('3')).toBe('3');
  });

  it('needs at least one placeholder', () => {
    expect(BodyTemplate.compile({ input: 'x' })).toBeUndefined();
    expect(BodyTemplate.compile(undefined)).toBeUndefined();
  });
});

describe('Retry-After', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 3)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(3000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('planQueries', () => {
  it('defaults the budget to what central needs plus a retry reserve', () => {
    expect(planQueries('central', 10, {}, 10_000)).toEqual({ budget: withRetryReserve(21), planned: 21 });
    expect(withRetryReserve(21)).toBe(25);
    expect(withRetryReserve(2001)).toBe(2202);
    expect(planQueries('forward', 10, {}, 10_000)).toEqual({ budget: 25, planned: 11 });
    expect(planQueries('spsa', 10_000, {}, 10_000)).toEqual({ budget: 10_000, planned: 8999, directions: 4499 });
    expect(() => planQueries('central', 10_000, {}, 10_000)).toThrow(/need 20001 queries, .* at most 10000 \(PROBE_MAX_BUDGET\): use spsa or nes/);
  });

  it('leaves about a tenth of the budget to retries for spsa and nes', () => {
    expect(planQueries('spsa', 100, { budget: 101 }, 10_000)).toEqual({ budget: 101, planned: 91, directions: 45 });
    expect(planQueries('nes', 100, { budget: 5 }, 10_000)).toEqual({ budget: 5, planned: 5, directions: 2 });
    expect(planQueries('nes', 100, { directions: 10 }, 10_000)).toEqual({ budget: withRetryReserve(201), planned: 21, directions: 10 });
  });

  it('refuses a plan over the budget, and a budget over the server maximum', () => {
    expect(() => planQueries('central', 10, { budget: 20 }, 10_000)).toThrow(/central differences on 10 coordinates need 21 queries, more than the budget of 20/);
    expect(() => planQueries('spsa', 10, { budget: 4 }, 10_000)).toThrow(/need 5 queries/);
    expect(() => planQueries('central', 10, { budget: 20_000 }, 10_000)).toThrow(/PROBE_MAX_BUDGET of 10000/);
  });
});
