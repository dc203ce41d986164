// The graph picture: DOT text, or SVG laid out by Graphviz itself (the WebAssembly build, which
// ships inside its npm package and needs no network). The service lays out on a worker thread
// (the caller passes the renderer); the number of nodes drawn as SVG is capped (GRAPH_MAX_NODES).

import { Graphviz } from '@hpcc-js/wasm-graphviz';
import { EngineError } from '../engine/errors.js';
import type { Engine } from '../engine/engine.js';
import { drawnNodes, toDot } from './dot.js';
import { prepareFor, type ShapesRequest } from './source.js';

export type GraphFormat = 'dot' | 'svg';

export interface GraphRequest extends ShapesRequest {
  format: GraphFormat;
}

export const GRAPH_CONTENT_TYPES = {
  dot: 'text/vnd.graphviz; charset=utf-8',
  svg: 'image/svg+xml; charset=utf-8',
} as const satisfies Record<GraphFormat, string>;

export interface Picture {
  contentType: string;
  body: string;
}

/** Past this many nodes the layout bounds its crossing-minimisation and ranking work (a plainer picture, in a fraction of the time). */
const QUICK_LAYOUT_NODES = 80;

let loading: Promise<Graphviz> | undefined;

/** The Graphviz module, compiled once per process. */
export function graphviz(): Promise<Graphviz> {
  loading ??= Graphviz.load().catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

/** DOT text laid out by Graphviz's `dot` as SVG. Throws on DOT that Graphviz rejects. */
export async function renderSvg(dot: string): Promise<string> {
  const module = await graphviz();
  try {
    return module.dot(dot, 'svg');
  } catch (e) {
    // A failed layout can leave the WebAssembly instance unusable (it exits on out-of-memory): start afresh next time.
    Graphviz.unload();
    loading = undefined;
    throw e;
  }
}

/**
 * The function's graph as DOT or SVG. Without `at` or `shapes` the inputs are the function's free
 * names, taken as scalars, and the nodes do not show shapes.
 */
export async function graphPicture(
  engine: Engine,
  request: GraphRequest,
  maxSvgNodes: number,
  render: (dot: string) => Promise<string> = renderSvg,
): Promise<Picture> {
  const { prepared, shapesKnown } = prepareFor(engine, request, true);
  const nodes = drawnNodes(prepared).length;
  const dot = toDot(prepared, { shapes: shapesKnown, quick: nodes > QUICK_LAYOUT_NODES });
  if (request.format === 'dot') return { contentType: GRAPH_CONTENT_TYPES.dot, body: dot };
  if (nodes > maxSvgNodes) {
    throw new EngineError(
      'limit_exceeded',
      `the graph has ${nodes} nodes, more than the ${maxSvgNodes} that are drawn as SVG (GRAPH_MAX_NODES): ask for format "dot" and lay it out yourself`,
    );
  }
  return { contentType: GRAPH_CONTENT_TYPES.svg, body: await render(dot) };
}
