// Writes src/schema.d.ts from ../../openapi.yaml (or the YAML file given) with openapi-typescript;
// with --check, only says whether the committed file is what it would write (exit 1 when stale).
//
// One schema is written by hand: `Value` is recursive through its array form, and openapi-typescript
// writes that as a property type indexing itself, which TypeScript rejects as circular and (with
// skipLibCheck) silently reads as `any`. The interface below says the same without the cycle.

import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';
import ts from 'typescript';

const given = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
const spec = given === undefined ? new URL('../../../openapi.yaml', import.meta.url) : pathToFileURL(given);
const target = new URL('../src/schema.d.ts', import.meta.url);

const VALUE = `/** A tensor as the service writes it: a number, "NaN", "Infinity", "-Infinity", nested arrays of them, or an EncodedArray. */
export type WireValue = number | "NaN" | "Infinity" | "-Infinity" | NestedValues | components["schemas"]["EncodedArray"];
/** Nested arrays of Values (an interface, so that the recursion is not circular). */
export interface NestedValues extends Array<WireValue> {}
`;
const VALUE_SCHEMAS = new Set(['#/components/schemas/Value', '#/components/schemas/ValueInput']);

const ast = await openapiTS(spec, {
  inject: VALUE,
  transform: (_schema, { path }) => (VALUE_SCHEMAS.has(path ?? '') ? ts.factory.createTypeReferenceNode('WireValue') : undefined),
});
const generated = `${COMMENT_HEADER}// WireValue and NestedValues: written by clients/typescript/scripts/generate.mjs (see there why).\n\n${astToString(ast)}`;

if (process.argv.includes('--check')) {
  const committed = readFileSync(target, 'utf8');
  if (committed !== generated) {
    console.error('clients/typescript/src/schema.d.ts is out of date: run `npm run generate -w clients/typescript`');
    process.exit(1);
  }
  console.log('clients/typescript/src/schema.d.ts is up to date');
} else {
  writeFileSync(target, generated);
  console.log(`wrote ${target.pathname}`);
}
