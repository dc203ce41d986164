// The server sends requests on a client's behalf only to origins the operator allows, and only to
// public addresses unless the allow-list names that very address; DNS is asked once per probe and
// the connection pinned to its answer; redirects are not followed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostResolver } from '../../src/probe/guard.js';
import type { App } from '../../src/service/app.js';
import { ConfigError, loadConfig } from '../../src/service/config.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from './fake-model.js';

let model: FakeModel;

beforeAll(async () => {
  model = await serveModel((input) => ({ json: { logit: (input as number[]).reduce((s, x) => s + 2 * x, 0) } }));
});
afterAll(() => model.close());

/** A resolver that answers from `table` and counts its lookups. */
function fakeDns(table: Record<string, string[]>): HostResolver & { lookups: string[] } {
  const lookups: string[] = [];
  const resolve = async (hostname: string) => {
    lookups.push(hostname);
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { lookups });
}

function probeBody(url: string) {
  return { target: { url, body: { input: '$input' }, outputPath: '/logit' }, at: [1, 2], method: 'central' };
}

async function probe(app: App, url: string) {
  const before = model.requests;
  const response = await app.inject({ method: 'POST', url: '/probe', payload: probeBody(url) });
  return { response, body: response.json() as Record<string, unknown>, sent: model.requests - before };
}

describe('probe targets: the allow-list', () => {
  it('turns URL targets off when PROBE_ALLOWED_ORIGINS is empty (the default)', async () => {
    const app = buildTestApp();
    const { response, body, sent } = await probe(app, model.url);
    expect(response.statusCode).toBe(403);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(body).toMatchObject({ code: 'probe_target_forbidden', detail: expect.stringMatching(/PROBE_ALLOWED_ORIGINS is empty/) });
    expect(sent).toBe(0);
    await app.close();
  });

  describe('with 127.0.0.1 on the list', () => {
    let app: App;
    const dns = fakeDns({ localhost: ['127.0.0.1'] });
    beforeAll(() => {
      app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin] }, { resolveHost: dns });
    });
    afterAll(() => app.close());

    it('queries the listed origin', async () => {
      const { response, body, sent } = await probe(app, model.url);
      expect(response.statusCode).toBe(200);
      expect(body).toMatchObject({ value: 6, queries: 5 });
      expect(sent).toBe(5);
    });

    it.each([
      ['another port', () => `http://127.0.0.1:${model.port + 1}/predict`, 'http://127.0.0.1:'],
      ['https instead of http', () => `https://127.0.0.1:${model.port}/predict`, 'https://127.0.0.1:'],
      ['localhost (a different origin from 127.0.0.1)', () => `http://localhost:${model.port}/predict`, 'http://localhost:'],
      ['[::1]', () => `http://[::1]:${model.port}/predict`, 'http://[::1]:'],
      ['an IPv4-mapped IPv6 spelling', () => `http://[::ffff:127.0.0.1]:${model.port}/predict`, 'http://[::ffff:7f00:1]:'],
      ['169.254.169.254 (cloud metadata)', () => 'http://169.254.169.254/latest/meta-data/', 'http://169.254.169.254 '],
      ['an origin not on the list', () => 'http://example.com/predict', 'http://example.com '],
    ])('refuses %s', async (_name, url, origin) => {
      const { response, body, sent } = await probe(app, url());
      expect(response.statusCode).toBe(403);
      expect(body.code).toBe('probe_target_forbidden');
      expect(body.detail).toContain(`The origin ${origin}`);
      expect(sent).toBe(0);
    });

    it.each([
      ['file:///etc/passwd'],
      ['ftp://127.0.0.1/model'],
      ['gopher://127.0.0.1:70/_GET'],
      ['data:application/json,{"logit":1}'],
      ['javascript:alert(1)'],
      ['ws://127.0.0.1/'],
    ])('never fetches a non-http scheme: %s', async (url) => {
      const { response, body } = await probe(app, url);
      expect(response.statusCode).toBe(403);
      expect(body).toMatchObject({ code: 'probe_target_forbidden', detail: expect.stringMatching(/Only http and https/) });
    });

    it('refuses credentials in the URL', async () => {
      const { response, body } = await probe(app, `http://user:secret@127.0.0.1:${model.port}/predict`);
      expect(response.statusCode).toBe(403);
      expect(body.detail).toMatch(/credentials/);
    });

    it('reads hex, decimal, octal and short spellings as the address they spell (the same origin)', async () => {
      for (const host of ['0x7f000001', '2130706433', '0177.0.0.1', '127.1', '0x7f.1']) {
        const { response, sent } = await probe(app, `http://${host}:${model.port}/predict`);
        expect(response.statusCode, host).toBe(200);
        expect(sent).toBe(5);
      }
    });

    it('answers 400 for a URL that does not parse', async () => {
      const { response, body } = await probe(app, 'not a url');
      expect(response.statusCode).toBe(400);
      expect(body).toMatchObject({ code: 'validation_error', errors: [{ path: 'target.url' }] });
    });
  });

  it.each([
    ['0x7f000001'],
    ['2130706433'],
    ['0177.0.0.1'],
    ['127.1'],
  ])('refuses %s when 127.0.0.1 is not listed, naming the normalised origin', async (host) => {
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [`http://localhost:${model.port}`] }, { resolveHost: fakeDns({ localhost: ['127.0.0.1'] }) });
    const { response, body, sent } = await probe(app, `http://${host}:${model.port}/predict`);
    expect(response.statusCode).toBe(403);
    expect(body.detail).toBe(`The origin http://127.0.0.1:${model.port} is not in PROBE_ALLOWED_ORIGINS`);
    expect(sent).toBe(0);
    await app.close();
  });
});

describe('probe targets: addresses', () => {
  const listed = (hostname: string) => `http://${hostname}:${model.port}`;

  it('refuses a listed host name that resolves to loopback (localhost is not 127.0.0.1)', async () => {
    const dns = fakeDns({ localhost: ['127.0.0.1'] });
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [listed('localhost')] }, { resolveHost: dns });
    const { response, body, sent } = await probe(app, `${listed('localhost')}/predict`);
    expect(response.statusCode).toBe(403);
    expect(body.detail).toMatch(/^localhost resolves to 127\.0\.0\.1, a loopback address; .*names that very address/);
    expect(sent).toBe(0);
    await app.close();
  });

  it.each([
    ['a private address', ['10.0.0.7'], /resolves to 10\.0\.0\.7, a private address/],
    ['the metadata address', ['169.254.169.254'], /resolves to 169\.254\.169\.254, a cloud metadata address/],
    ['an IPv4-mapped loopback address', ['::ffff:127.0.0.1'], /resolves to 127\.0\.0\.1, a loopback address/],
    ['IPv6 loopback', ['::1'], /a loopback address/],
    ['a public and a private address', ['93.184.215.14', '192.168.0.2'], /resolves to 192\.168\.0\.2, a private address/],
  ])('refuses a host name that resolves to %s', async (_name, addresses, detail) => {
    const dns = fakeDns({ 'model.test': addresses });
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [listed('model.test')] }, { resolveHost: dns });
    const { response, body } = await probe(app, `${listed('model.test')}/predict`);
    expect(response.statusCode).toBe(403);
    expect(body).toMatchObject({ code: 'probe_target_forbidden', detail: expect.stringMatching(detail) });
    await app.close();
  });

  it.each([
    ['::ffff:7f00:1', /resolves to 127\.0\.0\.1, a loopback address/],
    ['64:ff9b::a00:1', /a private address/],
    ['64:ff9b::a9fe:a9fe', /a cloud metadata address/],
    ['2002:c0a8:101::1', /a private address/],
    ['2001:0:a00:1::1', /a reserved address/],
    ['::7f00:1', /a reserved address/],
    ['0.0.0.0', /an unspecified \("this host"\) address/],
    ['::', /an unspecified/],
    ['255.255.255.255', /a reserved address/],
    ['239.255.255.250', /a multicast address/],
    ['ff02::1', /a multicast address/],
    ['100.64.0.1', /a private address/],
    ['198.18.0.1', /a reserved address/],
    ['fe80::1%eth0', /a link-local address/],
  ])('refuses a host name that resolves to %s', async (address, detail) => {
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [listed('model.test')] }, { resolveHost: fakeDns({ 'model.test': [address] }) });
    const { response, body, sent } = await probe(app, `${listed('model.test')}/predict`);
    expect(response.statusCode).toBe(403);
    expect(body).toMatchObject({ code: 'probe_target_forbidden', detail: expect.stringMatching(detail) });
    expect(sent).toBe(0);
    await app.close();
  });

  it('connects to the IPv4 address an IPv4-mapped literal on the list stands for', async () => {
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [`http://[::ffff:7f00:1]:${model.port}`] });
    const { response, sent } = await probe(app, `http://[::ffff:127.0.0.1]:${model.port}/predict`);
    expect(response.statusCode).toBe(200);
    expect(sent).toBe(5);
    await app.close();
  });

  it('refuses an unresolvable host with 502 and no query spent', async () => {
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [listed('model.test')] }, { resolveHost: fakeDns({}) });
    const { response, body } = await probe(app, `${listed('model.test')}/predict`);
    expect(response.statusCode).toBe(502);
    expect(body).toMatchObject({ code: 'probe_target_error', queries: 0 });
    await app.close();
  });

  it('gives up on a DNS lookup that hangs, with 504 and no query spent', async () => {
    const hanging: HostResolver = () => new Promise(() => undefined);
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [listed('model.test')], PROBE_DEFAULT_TIMEOUT_MS: 60_000 }, { resolveHost: hanging });
    const started = Date.now();
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { ...probeBody(`${listed('model.test')}/predict`), timeoutMs: 200 } });
    expect(response.statusCode).toBe(504);
    expect(response.json()).toMatchObject({ code: 'probe_timeout', queries: 0 });
    // The lookup gets the query time limit, at least a second: not the default 60 s nor the probe's
    // 120 s (a bound generous on a loaded machine).
    expect(Date.now() - started).toBeLessThan(15_000);
    await app.close();
  });

  it('allows a private address the list names, resolving once and pinning every connection to it', async () => {
    // model.test exists only in this fake DNS; the second answer (rebinding) must never be used.
    const answers = [['127.0.0.1'], ['10.9.9.9']];
    const lookups: string[] = [];
    const rebinding: HostResolver = async (hostname) => {
      lookups.push(hostname);
      return answers[Math.min(lookups.length - 1, 1)]!.map((address) => ({ address, family: 4 }));
    };
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [listed('model.test'), model.origin] }, { resolveHost: rebinding });
    const { response, body, sent } = await probe(app, `${listed('model.test')}/predict`);
    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ value: 6, gradient: [expect.closeTo(2, 9), expect.closeTo(2, 9)], queries: 5 });
    expect(sent).toBe(5);
    expect(lookups).toEqual(['model.test']);
    await app.close();
  });

  it('does not let a listed address on one port name it on another', async () => {
    const dns = fakeDns({ 'model.test': ['127.0.0.1'] });
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [listed('model.test'), `http://127.0.0.1:${model.port + 1}`] }, { resolveHost: dns });
    const { response } = await probe(app, `${listed('model.test')}/predict`);
    expect(response.statusCode).toBe(403);
    await app.close();
  });
});

describe('probe targets: redirects', () => {
  it('does not follow a redirect to a private address: a 3xx is a target error', async () => {
    const redirecting = await serveModel(() => ({ status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' }, raw: '' }));
    const app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [redirecting.origin] });
    const response = await app.inject({ method: 'POST', url: '/probe', payload: probeBody(redirecting.url) });
    expect(response.statusCode).toBe(502);
    expect(response.json()).toMatchObject({
      code: 'probe_target_error',
      detail: 'The target answered 302, a redirect; redirects are not followed',
      queries: 1,
    });
    expect(redirecting.requests).toBe(1);
    await app.close();
    await redirecting.close();
  });
});

describe('PROBE_ALLOWED_ORIGINS', () => {
  it('is read as comma-separated origins, normalised', () => {
    const config = loadConfig({ PROBE_ALLOWED_ORIGINS: ' http://0x7f000001:8081/ , HTTPS://Model.Example.COM:443,http://[::1]:80' });
    expect(config.PROBE_ALLOWED_ORIGINS).toEqual(['http://127.0.0.1:8081', 'https://model.example.com', 'http://[::1]']);
    expect(loadConfig({}).PROBE_ALLOWED_ORIGINS).toEqual([]);
  });

  it.each([['ftp://127.0.0.1'], ['http://127.0.0.1:8081/predict'], ['http://user:pw@host'], ['127.0.0.1:8081']])('refuses %s', (entry) => {
    expect(() => loadConfig({ PROBE_ALLOWED_ORIGINS: entry })).toThrow(ConfigError);
    expect(() => loadConfig({ PROBE_ALLOWED_ORIGINS: entry })).toThrow(/PROBE_ALLOWED_ORIGINS must be comma-separated http\(s\) origins/);
  });
});
