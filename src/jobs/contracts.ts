// The synchronous endpoints' contracts, taken from their routes as they are registered: a job's
// body is checked by its endpoint's body schema and its answer written by its endpoint's response
// serialiser (src/service/serialize.ts), so that the two cannot drift apart.

import { safeParse, type $ZodType } from 'zod/v4/core';
import { validationProblem } from '../service/problem.js';
import { serializerCompiler } from '../service/serialize.js';
import { jobSpecFor, type EndpointContract } from './work.js';

/** A route as Fastify's onRoute hook sees it (the parts read here). */
export interface RouteSeen {
  method: string | string[];
  url: string;
  schema?: { body?: unknown; response?: unknown } | undefined;
}

/** Collects the contracts of the endpoints jobs run, as their routes are registered. */
export class ContractCatalog {
  readonly contracts = new Map<string, EndpointContract>();

  /** For Fastify's onRoute hook. */
  readonly record = (route: RouteSeen): void => {
    const body = route.schema?.body;
    const answer = jsonSchemaOf(answersOf(route.schema?.response)['200']);
    if (route.method !== 'POST' || jobSpecFor(route.url, undefined) === undefined || !isZod(body) || !isZod(answer)) return;
    let serialize: ((data: unknown) => string) | undefined;
    this.contracts.set(route.url, {
      parse: (request) => {
        const parsed = safeParse(body, request);
        if (!parsed.success) throw validationProblem(parsed.error.issues, ['request']);
        return parsed.data;
      },
      serialize: (data) => {
        serialize ??= serializerCompiler({ schema: answer, method: 'POST', url: route.url, httpStatus: '200' });
        return serialize(data);
      },
    });
  };
}

function answersOf(response: unknown): Record<string, unknown> {
  return typeof response === 'object' && response !== null ? (response as Record<string, unknown>) : {};
}

/** A response's schema, or its JSON one when it is given per media type (/probe's also answers image/png). */
function jsonSchemaOf(response: unknown): unknown {
  if (typeof response !== 'object' || response === null || !('content' in response)) return response;
  const content = (response as { content: Record<string, { schema?: unknown } | undefined> }).content;
  return content['application/json']?.schema;
}

function isZod(schema: unknown): schema is $ZodType {
  return typeof schema === 'object' && schema !== null && '_zod' in schema;
}
