// Request bodies (issue 9, item 12): valid JSON with a `__proto__` key is a validation_error that
// says so (not invalid_json); a gzip or br body is decompressed, another coding is 415 (issue 12);
// a large body's base64 strings are lifted out before parsing, with the same value as a whole parse;
// and /docs has a Content-Security-Policy.

import { brotliCompressSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { findForbiddenKey, parseJsonBody, parseJsonBuffer } from '../../src/service/body.js';
import { buildTestApp } from '../helpers.js';

let app: App;
beforeAll(async () => {
  app = buildTestApp();
  await app.ready();
});
afterAll(() => app.close());

const postText = (body: string | Buffer, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/grad', headers: { 'content-type': 'application/json', ...headers }, payload: body });

describe('__proto__ and constructor.prototype keys', () => {
  it.each([
    ['at the top', '{"expr":"x^2","at":{"x":1},"__proto__":{"polluted":true}}', '__proto__'],
    ['nested in at', '{"expr":"x^2","at":{"x":1,"__proto__":3}}', 'at.__proto__'],
    ['inside an array', '{"expr":"x^2","at":{"x":1},"points":[{"x":1},{"__proto__":{}}]}', 'points.1.__proto__'],
    ['spelled with escapes', '{"expr":"x^2","at":{"x":1},"\\u005f_proto\\u005F_":{}}', '__proto__'],
  ])('answers a __proto__ key %s with 400 validation_error naming it', async (_where, body, path) => {
    const res = await postText(body);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const problem = res.json();
    expect(problem.code).toBe('validation_error');
    expect(problem.detail).toContain('`__proto__` keys are not accepted');
    expect(problem.errors).toEqual([{ path, message: '`__proto__` keys are not accepted' }]);
  });

  it('answers constructor.prototype with 400 validation_error too', async () => {
    const res = await postText('{"expr":"x^2","at":{"x":1,"constructor":{"prototype":{"polluted":true}}}}');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      code: 'validation_error',
      errors: [{ path: 'at.constructor.prototype', message: '`constructor.prototype` keys are not accepted' }],
    });
  });

  it('accepts such names as string values, and a `constructor` key that holds no prototype', async () => {
    expect(findForbiddenKey(JSON.parse('{"expr":"__proto__","a":{"constructor":1},"b":["constructor","prototype"]}'))).toBeUndefined();
    const res = await postText('{"expr":"x^2","at":{"x":2},"wrt":["x"]}');
    expect(res.statusCode).toBe(200);
  });

  it('still answers malformed and empty JSON with invalid_json', async () => {
    expect((await postText('{"expr":')).json()).toMatchObject({ status: 400, code: 'invalid_json', detail: 'The request body is not valid JSON' });
    expect((await postText('')).json()).toMatchObject({ status: 400, code: 'invalid_json' });
    // A leading byte order mark is ignored, as Fastify's own parser did.
    expect(parseJsonBody('\uFEFF{"a":1}')).toEqual({ a: 1 });
  });

  it('walks deeply nested documents without overflowing the stack', () => {
    const depth = 100_000;
    const deep = `${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}`;
    let problem: { extra: { errors: { path: string }[] } } | undefined;
    try {
      parseJsonBody(deep);
    } catch (error) {
      problem = error as typeof problem;
    }
    // A short path (that it is linear in the depth is timed in bench/timing.ts, not here).
    expect(problem?.extra.errors[0]?.path).toMatch(/^….*\.0\.__proto__$/);
    expect(problem?.extra.errors[0]?.path.length).toBeLessThan(210);
  });
});

describe('Content-Encoding', () => {
  const body = JSON.stringify({ expr: 'x^2', at: { x: 3 } });

  it.each(['deflate', 'compress', 'gzip, gzip'])('answers a body with Content-Encoding %s with 415 unsupported_media_type', async (coding) => {
    const res = await postText(gzipSync(body), { 'content-encoding': coding });
    expect(res.statusCode).toBe(415);
    expect(res.headers['accept-encoding']).toBe('gzip, br, identity');
    const problem = res.json();
    expect(problem.code).toBe('unsupported_media_type');
    expect(problem.detail).toMatch(/send the body as gzip, br or uncompressed/);
  });

  it.each([
    ['gzip', gzipSync],
    ['gzip, identity', gzipSync],
    ['br', brotliCompressSync],
  ] as const)('accepts a body with Content-Encoding %s (issue 12)', async (coding, compress) => {
    const res = await postText(compress(body), { 'content-encoding': coding });
    expect(res.statusCode).toBe(200);
    expect(res.json().gradient).toEqual({ x: 6 });
  });

  it('accepts Content-Encoding: identity', async () => {
    const res = await postText(body, { 'content-encoding': 'identity' });
    expect(res.statusCode).toBe(200);
    expect(res.json().gradient).toEqual({ x: 6 });
  });
});

describe('/docs', () => {
  it.each(['/docs', '/docs/', '/docs/static/index.css', '/docs/static/swagger-initializer.js'])('%s has a Content-Security-Policy', async (url) => {
    const res = await app.inject({ url });
    expect(res.statusCode).toBe(200);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('upgrade-insecure-requests');
  });

  it('Swagger UI does not send the document to a third-party validator', async () => {
    const initializer = await app.inject({ url: '/docs/static/swagger-initializer.js' });
    expect(initializer.body).toMatch(/"validatorUrl":\s*null/);
  });
});

describe('long base64 strings lifted out before parsing (parseJsonBuffer)', () => {
  // Small thresholds, so that short documents take the lifting path.
  const lifting = { minBodyBytes: 0, minStringBytes: 4 };
  const base64 = fc.stringMatching(/^[A-Za-z0-9+/]{4,40}={0,2}$/);
  const tricky = fc.constantFrom('a"b', 'a\\"b', '\\', 'AAAA\\u0041', '\u0000abc:0', 'lifted-abc:0', 'ünïcödé AAAA', 'AAAA\nBBBB', '"AAAA"', 'AAAA:');
  const leaf = fc.oneof(base64, tricky, fc.string(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
  const document = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 5 }),
    object: fc.dictionary(fc.oneof(fc.string(), base64), tie('value'), { maxKeys: 5 }),
  })).value;

  /** What the parser gives or throws, as data: the same for the lifting path and the plain one. */
  const outcome = (parse: () => unknown): unknown => {
    try {
      return { value: parse() };
    } catch (error) {
      return { code: (error as { code?: string }).code };
    }
  };

  it('gives the value JSON.parse gives, whatever the strings, keys and spacing', () => {
    fc.assert(
      fc.property(document, fc.constantFrom(undefined, 1, '\t'), (value, space) => {
        const text = JSON.stringify(value, null, space);
        expect(outcome(() => parseJsonBuffer(Buffer.from(text), Infinity, lifting))).toEqual(outcome(() => parseJsonBody(text)));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what the plain parser refuses: malformed text, forbidden keys, too many commas', () => {
    fc.assert(
      fc.property(document, fc.nat(), fc.constantFrom('"', '\\', ',', '}', ' ', 'A'), (value, at, inserted) => {
        const text = JSON.stringify(value);
        const broken = text.slice(0, at % (text.length + 1)) + inserted + text.slice(at % (text.length + 1));
        expect(outcome(() => parseJsonBuffer(Buffer.from(broken), 3, lifting))).toEqual(outcome(() => parseJsonBody(broken, 3)));
      }),
      { numRuns: 500 },
    );
    const forbidden = '{"a":"AAAAAAAA","__proto__":{"b":"BBBBBBBB"}}';
    expect(outcome(() => parseJsonBuffer(Buffer.from(forbidden), Infinity, lifting))).toEqual({ code: 'validation_error' });
  });

  it('reads a byte order mark and a stand-in look-alike sent by the client as the plain parser does', () => {
    const text = '{"x":"AAAAAAAA","y":"lifted-deadbeefdeadbeef:0"}';
    expect(parseJsonBuffer(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), Infinity, lifting)).toEqual(JSON.parse(text));
  });
});
