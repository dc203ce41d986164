// The OpenAPI 3.1 document's frame. Its paths come from the route schemas (Zod, converted by
// fastify-type-provider-zod); `npm run openapi` writes it to openapi.yaml, GET /openapi.yaml serves it.

import { isDeepStrictEqual } from 'node:util';
import type { FastifyDynamicSwaggerOptions, SwaggerTransform, SwaggerTransformObject } from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { choicesOf } from '../../routes/schemas.js';
import { packageInfo } from './package-info.js';
import { problemResponses } from './problem.js';

export const OPERATIONS_TAG = 'operations';

const SCHEMA_REF_PREFIX = '#/components/schemas/';

/** Every `#/components/schemas/<name>` reference inside `value`. */
function schemaRefs(value: unknown, found: Set<string> = new Set()): Set<string> {
  const pending = [value];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    if (typeof item !== 'object' || item === null) continue;
    for (const [key, child] of Object.entries(item)) {
      if (key === '$ref' && typeof child === 'string' && child.startsWith(SCHEMA_REF_PREFIX)) {
        found.add(child.slice(SCHEMA_REF_PREFIX.length));
      } else {
        pending.push(child);
      }
    }
  }
  return found;
}

/**
 * Keeps only the component schemas the paths use, directly or through other components:
 * every registered Zod schema with an `id` is emitted twice (`X` for responses, `XInput` for
 * requests), and most are used only one way.
 */
function withUsedSchemasOnly(spec: ReturnType<typeof jsonSchemaTransformObject>): void {
  const schemas = 'components' in spec ? spec.components?.schemas : undefined;
  if (!schemas) return;
  const used = schemaRefs(spec.paths);
  // A Set's iteration also visits the names added while iterating: the references' references.
  for (const name of used) schemaRefs(schemas[name], used);
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
}

/**
 * Rewrites, in place, what common tools misread in the schemas Zod writes:
 * - a tuple (`prefixItems` with `items: false`, JSON Schema 2020-12) becomes an array of its
 *   items' type with `minItems`/`maxItems`: draft-07 validators (Prism's, Swagger UI's) read
 *   `items: false` as "no items allowed" and refused every tuple the server sends or takes;
 * - an integer's safe-integer bounds (±2^53 − 1, what `z.int()` states) are dropped: they hold
 *   for every JSON integer the server reads, and Swagger UI made its examples from them
 *   (`"queries": -9007199254740991`).
 */
function readableByEveryValidator(document: unknown): void {
  const pending = [document];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    if (typeof item !== 'object' || item === null) continue;
    const schema = item as Record<string, unknown>;
    if (Array.isArray(schema.prefixItems)) {
      const tuple = schema.prefixItems as unknown[];
      const kinds = tuple.filter((a, i) => tuple.findIndex((b) => isDeepStrictEqual(a, b)) === i);
      delete schema.prefixItems;
      schema.items = kinds.length === 1 ? kinds[0] : { anyOf: kinds };
      schema.minItems = tuple.length;
      schema.maxItems = tuple.length;
    }
    if (schema.type === 'integer') {
      if (schema.minimum === -Number.MAX_SAFE_INTEGER) delete schema.minimum;
      if (schema.maximum === Number.MAX_SAFE_INTEGER) delete schema.maximum;
    }
    pending.push(...Object.values(schema));
  }
}

/**
 * Every JSON request body and successful JSON answer also offered as MessagePack
 * (src/service/msgpack-decode.ts, msgpack-answer.ts): the same members (a copy of the schema, so
 * that a generated client types both alike), where a tensor's `data` may be a bin of its bytes.
 */
function withMsgpack(spec: Record<string, unknown>): void {
  const paths = (spec.paths ?? {}) as Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> }; responses?: Record<string, { content?: Record<string, unknown> }> }>>;
  const offer = (content: Record<string, unknown> | undefined, note: string): void => {
    const json = content?.['application/json'] as { schema?: unknown } | undefined;
    if (content === undefined || json === undefined) return;
    const schema = structuredClone(json.schema) as Record<string, unknown> | undefined;
    if (schema !== undefined && typeof schema === 'object' && !('$ref' in schema)) schema.description = [schema.description, note].filter(Boolean).join(' ');
    content['application/msgpack'] = schema === undefined ? {} : { schema };
  };
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      if (typeof operation !== 'object' || operation === null) continue;
      offer(operation.requestBody?.content, MSGPACK_BODY_NOTE);
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (status.startsWith('2')) offer(response.content, MSGPACK_ANSWER_NOTE);
      }
    }
  }
}

const MSGPACK_BODY_NOTE =
  'As MessagePack (Content-Type: application/msgpack, or application/x-msgpack, application/vnd.msgpack): the same members; a tensor may be {dtype: "float64", shape, data: <bin of its little-endian float64 bytes>}, and numbers are MessagePack floats (NaN and ±Infinity included).';
const MSGPACK_ANSWER_NOTE =
  'As MessagePack when Accept prefers application/msgpack: the same members, every tensor of rank ≥ 1 as {dtype: "float64", shape, data: <bin of its little-endian float64 bytes>}.';

const transformObject: SwaggerTransformObject = (document) => {
  const spec = jsonSchemaTransformObject(document);
  withUsedSchemasOnly(spec);
  readableByEveryValidator(spec);
  withMsgpack(spec as Record<string, unknown>);
  return spec;
};

/**
 * The operation's `operationId` (the method name of a generated client) when its route sets none:
 * `POST /grad` is `grad`, `GET /ops` is `getOps`. Routes may set their own in `schema.operationId`.
 */
function defaultOperationId(method: string, url: string): string {
  const words = url.split(/[^A-Za-z0-9]+/).filter((word) => word !== '');
  const verb = method.toLowerCase();
  const [first = '', ...rest] = verb === 'post' ? words : [verb, ...words];
  return [first, ...rest.map((word) => word.charAt(0).toUpperCase() + word.slice(1))].join('');
}

/**
 * The routes never rate-limited nor refused for pressure (src/service/app.ts). Every other
 * operation may answer 429 `rate_limited` (when RATE_LIMIT_MAX is set) and 503 (`overloaded`,
 * `shutting_down`); test/service/openapi.test.ts checks the spec against the running app.
 */
const UNLIMITED_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * A request body's choices as JSON Schema: for each pair, exactly one of its two fields (`oneOf`
 * of "this one and not the other"). Each branch names its field (with `{}`, the body's own
 * `properties` saying what it holds) so that openapi-typescript makes the request type a union of
 * `{ expr: …; graph?: never }` and `{ graph: …; expr?: never }`, and `{}` does not type-check.
 */
function withChoices(body: Record<string, unknown>, choices: (readonly [string, string])[]): Record<string, unknown> {
  const exactlyOne = ([a, b]: readonly [string, string]) => ({
    oneOf: [
      { properties: { [a]: {}, [b]: false }, required: [a] },
      { properties: { [b]: {}, [a]: false }, required: [b] },
    ],
  });
  return { ...body, allOf: choices.map(exactlyOne) };
}

/**
 * The route schemas to OpenAPI: an `operationId` on every operation (its route's, else
 * `defaultOperationId`), the 429 and 503 problems on every limited route that documents answers,
 * and a body's choices (`expr` or `graph`, `at` or `points`) as `oneOf`.
 */
const transform: SwaggerTransform = (input) => {
  const schema = input.schema as { operationId?: string; response?: Record<string, unknown>; body?: unknown } | undefined;
  const method = [input.route.method].flat()[0] ?? 'GET';
  const operationId = schema?.operationId ?? defaultOperationId(method, input.url);
  const response = schema?.response && !UNLIMITED_ROUTES.has(input.url) ? { ...problemResponses(429, 503), ...schema.response } : schema?.response;
  const output = jsonSchemaTransform({ ...input, schema: { ...input.schema, operationId, ...(response && { response }) } });
  const choices = choicesOf(schema?.body);
  const body = (output.schema as { body?: Record<string, unknown> }).body;
  if (choices.length === 0 || body === undefined) return output;
  return { ...output, schema: { ...output.schema, body: withChoices(body, choices) } };
};

export const swaggerOptions: FastifyDynamicSwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'Adjoint',
      version: packageInfo.version,
      description:
        'Automatic differentiation as an HTTP service: send a function (an expression or a JSON ' +
        'computational graph) and a point, get exact float64 values, gradients, Jacobians, ' +
        'Hessians and the traces behind them. Errors are RFC 9457 `application/problem+json` ' +
        'with a stable `code`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    // Relative: Swagger UI (/docs) and clients of a served /openapi.yaml call the server it came from.
    // (A generated client is given its base URL, e.g. http://localhost:3000 for `npm start`.)
    servers: [{ url: '/', description: 'The server this document is served from' }],
    tags: [{ name: OPERATIONS_TAG, description: 'Liveness, readiness, metrics and this description' }],
  },
  transform,
  transformObject,
};
