// The OpenAPI 3.1 document's frame. Its paths come from the route schemas (Zod, converted by
// fastify-type-provider-zod); `npm run openapi` writes it to openapi.yaml, GET /openapi.yaml serves it.

import type { FastifyDynamicSwaggerOptions, SwaggerTransformObject } from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { packageInfo } from './package-info.js';

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
const withUsedSchemasOnly: SwaggerTransformObject = (document) => {
  const spec = jsonSchemaTransformObject(document);
  const schemas = 'components' in spec ? spec.components?.schemas : undefined;
  if (!schemas) return spec;
  const used = schemaRefs(spec.paths);
  // A Set's iteration also visits the names added while iterating: the references' references.
  for (const name of used) schemaRefs(schemas[name], used);
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
  return spec;
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
    },
    tags: [{ name: OPERATIONS_TAG, description: 'Liveness, readiness, metrics and this description' }],
  },
  transform: jsonSchemaTransform,
  transformObject: withUsedSchemasOnly,
};
