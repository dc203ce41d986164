// The playground page's files (static HTML, JavaScript and CSS: no build step). They live beside
// the sources in src/explain/playground/ and are read from there both under tsx and from the
// compiled dist/src/explain/playground.js (the Dockerfile copies the folder).

import { readFileSync } from 'node:fs';

const compiled = !import.meta.url.endsWith('.ts');
/** src/explain/playground/, from src/explain/ (tsx) or dist/src/explain/ (compiled). */
const folder = new URL(compiled ? '../../../src/explain/playground/' : './playground/', import.meta.url);

export interface Asset {
  contentType: string;
  body: string;
}

const TYPES = {
  'index.html': 'text/html; charset=utf-8',
  'playground.js': 'text/javascript; charset=utf-8',
  'probing.js': 'text/javascript; charset=utf-8',
  'playground.css': 'text/css; charset=utf-8',
} as const;

export type AssetName = keyof typeof TYPES;
export const ASSET_NAMES = Object.keys(TYPES) as AssetName[];

/** Every file of the page, read once. */
export function loadPlayground(): Record<AssetName, Asset> {
  const assets = {} as Record<AssetName, Asset>;
  for (const name of ASSET_NAMES) assets[name] = { contentType: TYPES[name], body: readFileSync(new URL(name, folder), 'utf8') };
  return assets;
}

/** The page runs only its own script and style, and talks only to this service. */
export const PLAYGROUND_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
