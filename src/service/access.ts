// Access: optional API keys. A deployment lists its keys as SHA-256 hashes (API_KEYS, and
// METRICS_API_KEYS for GET /metrics); a client sends `Authorization: Bearer <key>`. The
// presented key is hashed and its digest compared, in constant time, with every configured one.
// Which routes are open (liveness, readiness, the docs, the playground page) is decided here, in
// one place, for the check and for the OpenAPI document alike: every other route, including any
// route added later and unknown paths, needs a key once keys are configured.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { SwaggerTransform } from '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HttpProblem, problemResponses } from './problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The id of the API key the request presented (`undefined`: none, or keys are off). */
    apiKeyId: string | undefined;
  }
}

/** One configured key: its id (for logs and rate limits) and the SHA-256 of the key, in hex. */
export interface ApiKeyEntry {
  id: string;
  sha256: string;
}

const ENTRY = /^([A-Za-z0-9][\w.-]{0,63}):([0-9a-fA-F]{64})$/;
const ENTRY_MESSAGE =
  'must be comma-separated id:sha256 entries, each an id (letters, digits, ".", "_", "-") and the SHA-256 of the key in 64 hex digits (never the key itself)';

/**
 * The configuration schema of a key list: `"ci:9f86…,alice:2c26…"` (or an array of such entries,
 * or of `{ id, sha256 }`), validated into `ApiKeyEntry[]` with distinct ids.
 */
export function apiKeyList() {
  return z
    .union([z.string(), z.array(z.union([z.string(), z.object({ id: z.string(), sha256: z.string() })]))])
    .transform((raw, ctx): ApiKeyEntry[] => {
      const items = typeof raw === 'string' ? raw.split(',') : raw;
      const entries: ApiKeyEntry[] = [];
      for (const item of items) {
        const text = typeof item === 'string' ? item.trim() : `${item.id}:${item.sha256}`;
        if (text === '') continue;
        const match = ENTRY.exec(text);
        if (!match) {
          ctx.addIssue({ code: 'custom', message: ENTRY_MESSAGE });
          return z.NEVER;
        }
        entries.push({ id: match[1]!, sha256: match[2]!.toLowerCase() });
      }
      const ids = new Set(entries.map((entry) => entry.id));
      if (ids.size !== entries.length) {
        ctx.addIssue({ code: 'custom', message: `${ENTRY_MESSAGE}; each id once` });
        return z.NEVER;
      }
      return entries;
    });
}

/** The SHA-256 of a key, in hex: what an operator puts in API_KEYS. */
export function sha256Hex(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A set of keys, checked in constant time. */
export class KeyRing {
  readonly #entries: { id: string; digest: Buffer }[];

  constructor(entries: readonly ApiKeyEntry[]) {
    this.#entries = entries.map(({ id, sha256 }) => ({ id, digest: Buffer.from(sha256, 'hex') }));
  }

  get enabled(): boolean {
    return this.#entries.length > 0;
  }

  /**
   * The id of the key `presented` is, else `undefined`. The presented key is hashed (so its
   * length does not matter) and its digest compared with every configured digest, matching or
   * not: the time taken says neither whether nor which key matched.
   */
  identify(presented: string): string | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: string | undefined;
    for (const entry of this.#entries) {
      const equal = timingSafeEqual(digest, entry.digest);
      found = equal ? entry.id : found;
    }
    return found;
  }
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750), else `undefined`. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return match?.[1];
}

/** Who may call a route: anyone, a holder of a metrics key, or a holder of an API key. */
export type AccessRule = 'open' | 'metrics' | 'key';

const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/openapi.yaml', '/', '/playground/playground.js', '/playground/probing.js', '/playground/playground.css']);
export const DOCS_PREFIX = '/docs';

/** The rule of a route, by its URL pattern (`undefined`, an unknown path, needs a key). */
export function accessRule(url: string | undefined): AccessRule {
  if (url === undefined) return 'key';
  if (OPEN_ROUTES.has(url) || url === DOCS_PREFIX || url.startsWith(`${DOCS_PREFIX}/`)) return 'open';
  if (url === '/metrics') return 'metrics';
  return 'key';
}

/** The OpenAPI security schemes, and the `security` of an operation at `url`. */
export const API_KEY_SCHEME = 'apiKeyBearer';
export const METRICS_KEY_SCHEME = 'metricsKeyBearer';
export const securitySchemes = {
  [API_KEY_SCHEME]: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API key, sent as `Authorization: Bearer <key>`. Required on every computing endpoint when ' +
      'the server is configured with `API_KEYS`; without it, keys are not asked for.',
  },
  [METRICS_KEY_SCHEME]: {
    type: 'http',
    scheme: 'bearer',
    description: 'A metrics key, required by `GET /metrics` when the server is configured with `METRICS_API_KEYS`.',
  },
} as const;

/**
 * `[]` for an open route; else the key's scheme or nothing (`{}`): keys are asked for only when a
 * deployment configures them, so a call without one is as valid as a call with one.
 */
export function securityOf(url: string): Record<string, string[]>[] {
  const rule = accessRule(url);
  if (rule === 'open') return [];
  return [{ [rule === 'metrics' ? METRICS_KEY_SCHEME : API_KEY_SCHEME]: [] }, {}];
}

/**
 * Wraps the OpenAPI `transform` of the routes: every operation gets its `security` (`[]` when
 * open) and, when it may need a key, the 401 `unauthorized` answer.
 */
export function withSecurity(transform: SwaggerTransform | undefined): SwaggerTransform {
  return (input) => {
    const security = securityOf(input.url);
    const response = (input.schema as { response?: Record<string, unknown> } | undefined)?.response;
    const schema = security.length > 0 && response ? { ...input.schema, response: { ...response, ...problemResponses(401) } } : input.schema;
    const output = transform ? transform({ ...input, schema }) : { schema, url: input.url };
    return { ...output, schema: { ...output.schema, security } };
  };
}

/** Why a request was refused a key: none was sent, or it matched no configured key. */
const refused = new WeakMap<FastifyRequest, 'missing' | 'invalid'>();

const REALM = 'Bearer realm="adjoint"';

function unauthorized(why: 'missing' | 'invalid', rule: AccessRule): HttpProblem {
  const which = rule === 'metrics' ? 'a metrics key (METRICS_API_KEYS)' : 'an API key';
  const detail =
    why === 'missing'
      ? `This endpoint needs ${which}: send it as Authorization: Bearer <key>`
      : `The key sent in Authorization is not ${which} of this server`;
  const challenge = why === 'missing' ? REALM : `${REALM}, error="invalid_token"`;
  return new HttpProblem(401, 'unauthorized', detail, {}, { headers: { 'www-authenticate': challenge } });
}

export interface AccessOptions {
  apiKeys: readonly ApiKeyEntry[];
  metricsKeys: readonly ApiKeyEntry[];
}

/**
 * Adds the checks to `app` (before its routes are registered). The key is identified in an
 * onRequest hook, so that `request.apiKeyId` is set for the rate limit (a route-level onRequest
 * hook, which runs after the app's); a request without a valid key is refused in preParsing,
 * after the rate limit has counted it and before its body is read.
 */
export function installAccess(app: FastifyInstance, options: AccessOptions): void {
  const keys = { key: new KeyRing(options.apiKeys), metrics: new KeyRing(options.metricsKeys) };
  app.decorateRequest('apiKeyId', undefined);
  if (!keys.key.enabled && !keys.metrics.enabled) return;

  app.addHook('onRequest', async (request) => {
    const rule = accessRule(request.routeOptions.url);
    // An open route still learns who calls it when a valid API key comes along.
    const ring = rule === 'open' ? keys.key : keys[rule];
    if (!ring.enabled) return;
    const token = bearerToken(request.headers.authorization);
    request.apiKeyId = token === undefined ? undefined : ring.identify(token);
    if (rule !== 'open' && request.apiKeyId === undefined) {
      refused.set(request, request.headers.authorization === undefined ? 'missing' : 'invalid');
    }
  });
  app.addHook('preParsing', async (request) => {
    const why = refused.get(request);
    if (why !== undefined) throw unauthorized(why, accessRule(request.routeOptions.url));
  });
}
