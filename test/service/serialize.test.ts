// The serializer compiler (src/service/serialize.ts) checks answers with a forward parse where that
// is the same check as fastify-type-provider-zod's encode: for every response schema of every
// route, random answers (valid, and wrong in every way the schema can tell) are written to the
// same bytes, or refused alike, by both.

import fc from 'fast-check';
import type { FastifySerializerCompiler } from 'fastify';
import { serializerCompiler as providerSerializerCompiler } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { $ZodType } from 'zod/v4/core';
import type { App } from '../../src/app.js';
import { answerBytes, convertsNothing, serializerCompiler } from '../../src/service/serialize.js';
import { buildTestApp } from '../helpers.js';

interface Def {
  type: string;
  shape?: Record<string, $ZodType>;
  element?: $ZodType;
  options?: $ZodType[];
  valueType?: $ZodType;
  innerType?: $ZodType;
  entries?: Record<string, string | number>;
  values?: unknown[];
}

const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 2 ** 53, 0.5));
const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    anyNumber,
    fc.constantFrom('NaN', 'Infinity', 'x', undefined, null, true),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('x', 'y', 'constructor', 'toString'), tie('value'), { maxKeys: 3 }),
  ),
})).value;

/** Values for `schema`: mostly of its form, sometimes wrong (another type, a key missing, a key too many). */
function valuesOf(schema: $ZodType, depth = 0): fc.Arbitrary<unknown> {
  const def = schema._zod.def as Def;
  const wrong = depth > 3 ? fc.constant(undefined) : jsonish;
  const or = (right: fc.Arbitrary<unknown>) => fc.oneof({ weight: 6, arbitrary: right }, { weight: 1, arbitrary: wrong });
  switch (def.type) {
    case 'unknown':
    case 'any':
      return jsonish;
    case 'custom':
      return fc.oneof(
        fc.dictionary(fc.constantFrom('x', 'W', 'constructor'), jsonish, { maxKeys: 3 }),
        fc.dictionary(fc.constantFrom('x', 'W'), jsonish, { maxKeys: 3 }).map((d) => Object.assign(Object.create(null) as object, d)),
        wrong,
      );
    case 'string':
      return or(fc.string({ maxLength: 5 }));
    case 'number':
      return or(anyNumber);
    case 'boolean':
      return or(fc.boolean());
    case 'enum':
      return or(fc.constantFrom(...Object.values(def.entries!)));
    case 'literal':
      return or(fc.constantFrom(...def.values!));
    case 'optional':
    case 'nullable':
      return fc.oneof(fc.constant(undefined), fc.constant(null), valuesOf(def.innerType!, depth + 1), valuesOf(def.innerType!, depth + 1));
    case 'array':
      return or(fc.array(valuesOf(def.element!, depth + 1), { maxLength: depth > 2 ? 1 : 3 }));
    case 'union':
      return fc.oneof(...def.options!.map((o) => valuesOf(o, depth + 1)));
    case 'record':
      return or(fc.dictionary(fc.constantFrom('a', 'b', 'constructor'), valuesOf(def.valueType!, depth + 1), { maxKeys: 3 }));
    case 'object': {
      const keys = Object.keys(def.shape!);
      const fields = keys.map((key) =>
        fc.oneof({ weight: 8, arbitrary: valuesOf(def.shape![key]!, depth + 1).map((v) => [key, v] as const) }, { weight: 1, arbitrary: fc.constant(undefined) }),
      );
      const object = fc
        .tuple(fc.tuple(...fields), fc.option(fc.tuple(fc.constantFrom('extra', 'code'), jsonish)), fc.boolean())
        .map(([present, extra, reverse]) => {
          const entries = present.filter((e): e is readonly [string, unknown] => e !== undefined);
          if (extra) entries.push(extra);
          if (reverse) entries.reverse();
          return Object.fromEntries(entries);
        });
      return or(object);
    }
    default:
      throw new Error(`no values for a ${def.type} schema`);
  }
}

type Serializer = (data: unknown) => string;
type Outcome = { json: string } | { refused: string[] };

function outcome(serialize: Serializer, data: unknown): Outcome {
  try {
    return { json: serialize(data) };
  } catch (e) {
    // Refused alike: the same error, for the same reasons (issue order aside).
    const cause = (e as { cause?: { issues?: { code: string; path: PropertyKey[] }[] } }).cause;
    const issues = (cause?.issues ?? []).map((i) => `${i.code} at ${i.path.map(String).join('.')}`);
    return { refused: [(e as Error).name, ...issues.sort()] };
  }
}

const compile = (compiler: FastifySerializerCompiler<$ZodType>, schema: $ZodType, url: string): Serializer =>
  compiler({ schema, method: 'POST', url, httpStatus: '200' });

describe('answers are serialised as fastify-type-provider-zod serialises them', () => {
  let app: App;
  const schemas: { route: string; schema: $ZodType }[] = [];
  beforeAll(async () => {
    app = buildTestApp();
    app.addHook('onRoute', (route) => {
      const response = (route.schema as { response?: Record<string, unknown> } | undefined)?.response ?? {};
      for (const [status, schema] of Object.entries(response)) {
        if (schema instanceof $ZodType && route.method !== 'HEAD') schemas.push({ route: `${String(route.method)} ${route.url} ${status}`, schema });
      }
    });
    await app.ready();
  });
  afterAll(() => app.close());

  it('checks every differentiation answer with a forward parse (the schemas convert nothing)', () => {
    const cheap = schemas.filter(({ schema }) => convertsNothing(schema)).map(({ route }) => route);
    for (const route of ['eval', 'grad', 'jvp', 'vjp', 'jacobian', 'hessian', 'hvp', 'check', 'trace'].map((r) => `POST /${r} 200`)) {
      expect(cheap).toContain(route);
    }
    expect(cheap).toContain('GET /healthz 200');
  });

  it('writes the same bytes, or refuses alike, for random answers to every route', () => {
    // (Any other schema is serialised by the provider's own serializer, unchanged.)
    const cheap = schemas.filter(({ schema }) => convertsNothing(schema));
    expect(cheap.length).toBeGreaterThan(10);
    for (const { route, schema } of cheap) {
      const ours = compile(serializerCompiler, schema, route);
      const theirs = compile(providerSerializerCompiler, schema, route);
      let refused = 0;
      fc.assert(
        fc.property(valuesOf(schema), (data) => {
          const expected = outcome(theirs, data);
          if ('refused' in expected) refused++;
          expect(outcome(ours, data), route).toEqual(expected);
        }),
        { numRuns: 200, seed: 11 },
      );
      // Both kinds of outcome were seen (a schema that takes anything has nothing to refuse).
      if (!['unknown', 'any'].includes(schema._zod.def.type)) expect(refused, route).toBeGreaterThan(0);
    }
  });

  it("keeps the provider's serializer wherever parsing and encoding could differ", () => {
    const converting = [
      z.object({ a: z.string().transform((s) => s.length) }),
      z.object({ a: z.number().default(1) }),
      z.object({ a: z.string().pipe(z.string()) }),
      z.object({ a: z.coerce.number() }),
      z.object({ a: z.number() }).refine(() => true),
      z.array(z.number()).min(1),
      z.discriminatedUnion('k', [z.object({ k: z.literal('a') }), z.object({ k: z.literal('b') })]),
      z.object({ a: z.number().catch(0) }),
      z.lazy(() => z.number()),
    ];
    for (const schema of converting) expect(convertsNothing(schema), schema._zod.def.type).toBe(false);
    // Such a schema is still serialised by the provider (its encode): a codec writes its input form.
    const decimal = z.codec(z.string(), z.number(), { decode: (s) => Number(s), encode: (n) => String(n) });
    const codec = compile(serializerCompiler, z.object({ a: decimal }), '/x');
    expect(convertsNothing(z.object({ a: decimal }))).toBe(false);
    expect(codec({ a: 5 })).toBe('{"a":"5"}');
  });
});

describe('answerBytes', () => {
  it('turns a large ASCII answer into the same bytes as UTF-8, and leaves the rest alone', () => {
    const large = JSON.stringify({ data: 'A'.repeat(70_000) });
    const bytes = answerBytes(large);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect((bytes as Buffer).equals(Buffer.from(large, 'utf8'))).toBe(true);
    // Not ASCII (a character a Latin-1 copy would cut to one byte), small, or not text: as they came.
    const unicode = JSON.stringify({ data: 'A'.repeat(70_000), note: 'Ł ≥ 0' });
    expect(answerBytes(unicode)).toBe(unicode);
    expect(answerBytes('{"value":1}')).toBe('{"value":1}');
    const buffer = Buffer.from('x');
    expect(answerBytes(buffer)).toBe(buffer);
  });
});
