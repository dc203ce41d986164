// A probe's answer before and after its maps are written. The prober ends with a draft: the answer's
// fields, its maps (gradient, stderr, exact, an image's scores) still as float64 arrays, and the
// picture to draw. Writing the maps (nested arrays or base64), drawing the picture (PNG) and
// serialising the JSON cost time in proportion to their size (a million numbers take about a
// second to write as JSON text), so the service does it on a worker thread for a large answer or
// any picture; the draft is plain data for that (no functions, typed arrays copied cheaply).

import { tensorWriter, type Encoding, type Value } from '../service/values.js';
import type { BasisName, Prior } from './directions.js';
import type { ProbeMethod } from './methods.js';
import { renderSaliency, type ColourScale, type Picture } from './picture.js';

export type GradientMethod = Exclude<ProbeMethod, 'occlusion' | 'shapley'>;

/** An image's map as a PNG (base64) and the colour scale of its bar. */
export interface PictureFields {
  png?: string;
  colourScale?: ColourScale;
}

export interface GradientAnswer extends PictureFields {
  method: GradientMethod;
  value: number;
  gradient: Value;
  queries: number;
  epsilon: number;
  stderr?: Value;
  directions?: number;
  exact?: Value;
  /** A number, or "NaN" where it is undefined (a zero or infinite gradient). */
  cosine?: number | 'NaN' | 'Infinity' | '-Infinity';
  /** Grouped differences on an image: how many groups were perturbed. */
  groups?: number;
  /** spsa/nes: the basis the directions were drawn in, and its size. */
  basis?: { name: BasisName; size: number };
  prior?: Prior;
  /** With `noise`: f(x) asked `repeats` times (value is their mean), their standard deviation, and the curvature assumed. */
  noise?: { repeats: number; sigma: number; curvature: number };
}

export interface OcclusionAnswer extends PictureFields {
  method: 'occlusion';
  value: number;
  /** Per token; for an image, per element in the image's shape. */
  scores: number[] | Value;
  queries: number;
  /** An image: how many groups were occluded. */
  groups?: number;
}

export interface ShapleyAnswer {
  method: 'shapley';
  value: number;
  scores: number[];
  /** Per token; "NaN" with a single antithetic pair. */
  stderr: (number | 'NaN')[];
  samples: number;
  /** f with no token present (all removed, or all masked). */
  baselineValue: number;
  /** The scores add up to f(all) − f(baseline): their sum, that difference, and the gap. */
  efficiency: { sum: number; expected: number; gap: number };
  cacheHits: number;
  queries: number;
}

export type ProbeAnswer = GradientAnswer | OcclusionAnswer | ShapleyAnswer;

/** A map of the answer in the input's shape, not yet written. */
export interface AnswerMap {
  shape: readonly number[];
  data: Float64Array;
}

/** The answer fields that are maps in the input's shape. */
export type MapName = 'gradient' | 'stderr' | 'exact' | 'scores';

export interface ProbeDraft {
  /** Every field of the answer but its maps and picture. */
  fields: { method: ProbeMethod; value: number; queries: number } & Record<string, unknown>;
  /** The maps, written as `encoding` says. */
  maps: Partial<Record<MapName, AnswerMap>>;
  encoding: Encoding | undefined;
  /** format png: the map to draw over the image. */
  picture: Picture | undefined;
}

/** A drawn picture: the PNG's bytes and the scale of its colour bar. */
export interface DrawnPicture {
  png: Uint8Array;
  colourScale: ColourScale;
}

/** Numbers in the draft's maps: what writing and serialising it costs. */
export function mapElements(draft: ProbeDraft): number {
  let elements = 0;
  for (const map of Object.values(draft.maps)) elements += map.data.length;
  return elements;
}

/** The picture as PNG bytes (deflated here: call it where that may take a while). */
export function drawPicture(picture: Picture): DrawnPicture {
  const { png, colourScale } = renderSaliency(picture);
  return { png, colourScale };
}

/**
 * The order of each kind of answer's fields, as its answer schema (routes/probe.ts) lists them: an
 * answer serialised on a worker (bytes, no schema) must read as the one serialised inline by the
 * schema, byte for byte. A test holds the schemas to these lists.
 */
export const ANSWER_FIELDS = {
  gradient: ['method', 'value', 'gradient', 'queries', 'epsilon', 'stderr', 'directions', 'exact', 'cosine', 'groups', 'basis', 'prior', 'png', 'colourScale', 'noise'],
  occlusion: ['method', 'value', 'scores', 'queries', 'groups', 'png', 'colourScale'],
  shapley: ['method', 'value', 'scores', 'stderr', 'samples', 'baselineValue', 'efficiency', 'cacheHits', 'queries'],
} as const;

/** The answer as an object: the maps written here, the picture as it was drawn (base64). */
export function writeAnswer(draft: ProbeDraft, drawn: DrawnPicture | undefined): ProbeAnswer {
  const write = tensorWriter(draft.encoding);
  const fields: Record<string, unknown> = { ...draft.fields };
  for (const [name, map] of Object.entries(draft.maps)) fields[name] = write(map);
  if (drawn !== undefined) {
    fields.png = Buffer.from(drawn.png.buffer, drawn.png.byteOffset, drawn.png.byteLength).toString('base64');
    fields.colourScale = drawn.colourScale;
  }
  const kind = draft.fields.method === 'occlusion' || draft.fields.method === 'shapley' ? draft.fields.method : 'gradient';
  const answer: Record<string, unknown> = {};
  for (const name of ANSWER_FIELDS[kind]) if (fields[name] !== undefined) answer[name] = fields[name];
  return answer as unknown as ProbeAnswer;
}

/** The whole answer built from its draft: the picture drawn, the maps written (for a worker thread). */
export function completeAnswer(draft: ProbeDraft): ProbeAnswer {
  return writeAnswer(draft, draft.picture === undefined ? undefined : drawPicture(draft.picture));
}
