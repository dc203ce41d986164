// An input declared as an image, perturbed in groups of pixels instead of one coordinate at a
// time: square patches on a sliding window, or a caller's segmentation (superpixels). A group
// holds every channel of its pixels. Two estimators work on groups:
//
//   occlusion  drop_g = f(x) − f(x with group g set to the baseline)          1 query per group (+1)
//              a pixel's score is the mean drop of the groups that cover it
//   central    c_g = (f(x + h·1_g) − f(x − h·1_g)) / Σ_{i∈g} (taken steps)   2 queries per group (+1)
//   forward    c_g = (f(x + h·1_g) − f(x)) / Σ_{i∈g} (taken step)            1 query per group (+1)
//              c_g is the gradient's mean over the group (exact when it is constant there);
//              a pixel's estimate is the mean c_g of the groups that cover it
//
// Everything here is engine-free: the groups, the baselines and the estimators over EstimateContext.

import { toTensor } from '../engine/values.js';
import { fromTensor as toValue } from '../service/values.js';
import { ProbeError } from './errors.js';
import type { EstimateContext, Point } from './estimators.js';
import type { Task } from './pool.js';
import { numberCharacters } from './limits.js';

export type Layout = 'hwc' | 'chw';
export type Baseline = 'zero' | 'mean' | 'blur' | number;

/** How the request declares its input an image (the `image` field). */
export interface ImageSpec {
  /** [H, W], or [H, W, C] / [C, H, W] as `layout` says. */
  shape: number[];
  /** For a 3-D shape: channels last (hwc, the default) or first (chw). */
  layout?: Layout | undefined;
  /** Patch height and width (default [1, 1]: every pixel its own group). */
  patch?: [number, number] | undefined;
  /** How far the window moves (default: the patch, so patches tile the image). */
  stride?: [number, number] | undefined;
  /** What occlusion puts in place of a group (default zero). */
  baseline?: Baseline | undefined;
  /** The pixels' value range (default [0, 1] when they lie in it, else [0, 255] when they do, else their min and max). */
  range?: [number, number] | undefined;
}

function invalid(path: string, message: string): ProbeError {
  return new ProbeError('validation_error', `${path} ${message}`, { errors: [{ path, message }] });
}

/** Window positions along one axis: every `stride` from 0, plus one flush with the far edge so every pixel is covered. */
function windowStarts(size: number, patch: number, stride: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s + patch <= size; s += stride) starts.push(s);
  if (starts[starts.length - 1]! + patch < size) starts.push(size - patch);
  return starts;
}

/** The image's geometry and its groups of pixels (a pixel is p = row·W + column). */
export class ImageGroups {
  private constructor(
    readonly height: number,
    readonly width: number,
    readonly channels: number,
    readonly layout: Layout,
    readonly range: [number, number],
    /** Patch windows (rows × columns of starts), or undefined for segments. */
    private readonly windows: { rows: number[]; columns: number[]; patch: [number, number] } | undefined,
    /** Segments: the pixels of each group. */
    private readonly segments: Int32Array[] | undefined,
  ) {}

  /** Groups the estimators perturb: patches, or segments. */
  get count(): number {
    return this.windows === undefined ? this.segments!.length : this.windows.rows.length * this.windows.columns.length;
  }

  get pixels(): number {
    return this.height * this.width;
  }

  /** The element of `point.data` holding pixel p's channel c. */
  element(p: number, c: number): number {
    return this.layout === 'hwc' ? p * this.channels + c : c * this.pixels + p;
  }

  /** Calls `visit` with every pixel of group g. */
  forEachPixel(g: number, visit: (p: number) => void): void {
    if (this.windows === undefined) {
      for (const p of this.segments![g]!) visit(p);
      return;
    }
    const { rows, columns, patch } = this.windows;
    const top = rows[Math.floor(g / columns.length)]!;
    const left = columns[g % columns.length]!;
    for (let r = top; r < top + patch[0]; r++) for (let c = left; c < left + patch[1]; c++) visit(r * this.width + c);
  }

  /** Calls `visit` with every element (every channel of every pixel) of group g. */
  forEachElement(g: number, visit: (i: number) => void): void {
    this.forEachPixel(g, (p) => {
      for (let c = 0; c < this.channels; c++) visit(this.element(p, c));
    });
  }

  /** The mean of per-group numbers over the groups covering each pixel, spread over the channels: a map in the input's layout. */
  spread(perGroup: Float64Array): Float64Array {
    const sum = new Float64Array(this.pixels);
    const covered = new Uint32Array(this.pixels);
    for (let g = 0; g < this.count; g++) {
      this.forEachPixel(g, (p) => {
        sum[p]! += perGroup[g]!;
        covered[p]!++;
      });
    }
    const map = new Float64Array(this.pixels * this.channels);
    for (let p = 0; p < this.pixels; p++) {
      const mean = covered[p]! === 0 ? 0 : sum[p]! / covered[p]!;
      for (let c = 0; c < this.channels; c++) map[this.element(p, c)] = mean;
    }
    return map;
  }

  /**
   * Reads `image` (and `segments`) against the input's elements. Everything is checked before
   * anything is allocated per pixel: the shape against the input's size, the patch against the
   * shape, the segmentation's size against the pixels.
   */
  static declare(spec: ImageSpec, segments: unknown, point: Point, maxElements: number): ImageGroups {
    const { shape } = spec;
    if (shape.length !== 2 && shape.length !== 3) throw invalid('image.shape', 'must be [H, W], [H, W, C] or [C, H, W]');
    const size = shape.reduce((a, b) => a * b, 1);
    if (size > maxElements) {
      throw new ProbeError('limit_exceeded', `image.shape has ${size} elements, more than this server's limit of ${maxElements} (MAX_TENSOR_ELEMENTS)`, {
        errors: [{ path: 'image.shape', message: 'too many elements' }],
      });
    }
    if (size !== point.data.length) throw invalid('image.shape', `has ${size} elements but at has ${point.data.length}`);
    const layout = spec.layout ?? 'hwc';
    const [height, width, channels] = shape.length === 2 ? [shape[0]!, shape[1]!, 1] : layout === 'hwc' ? [shape[0]!, shape[1]!, shape[2]!] : [shape[1]!, shape[2]!, shape[0]!];
    const range = spec.range ?? defaultRange(point.data);
    if (!(range[0] < range[1])) throw invalid('image.range', 'must be [lo, hi] with lo < hi');
    if (segments !== undefined) {
      if (spec.patch !== undefined || spec.stride !== undefined) throw invalid('segments', 'and image.patch (or image.stride) are two ways of grouping pixels: give one');
      const groups = segmentGroups(segments, height * width, maxElements);
      return new ImageGroups(height, width, channels, layout, range, undefined, groups);
    }
    const patch = spec.patch ?? [1, 1];
    const stride = spec.stride ?? patch;
    if (patch[0] > height || patch[1] > width) throw invalid('image.patch', `[${patch.join(', ')}] is larger than the ${height}×${width} image`);
    const windows = { rows: windowStarts(height, patch[0], stride[0]), columns: windowStarts(width, patch[1], stride[1]), patch };
    return new ImageGroups(height, width, channels, layout, range, windows, undefined);
  }

  /** The patch, when the groups are patches. */
  get patchSize(): [number, number] | undefined {
    return this.windows?.patch;
  }
}

function defaultRange(data: Float64Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of data) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  if (lo >= 0 && hi <= 1) return [0, 1];
  if (lo >= 0 && hi <= 255) return [0, 255];
  return lo < hi ? [lo, hi] : [lo - 1, lo + 1];
}

/** Integer labels, one per pixel (nested H×W, flat, or base64), as the pixels of each label in ascending label order. */
function segmentGroups(segments: unknown, pixels: number, maxElements: number): Int32Array[] {
  const labels = toTensor(segments, ['segments'], maxElements).data;
  if (labels.length !== pixels) throw invalid('segments', `has ${labels.length} labels but the image has ${pixels} pixels (one label per pixel)`);
  const sizes = new Map<number, number>();
  for (const label of labels) {
    if (!Number.isInteger(label)) throw invalid('segments', `must be integer labels, found ${label}`);
    sizes.set(label, (sizes.get(label) ?? 0) + 1);
  }
  const order = [...sizes.keys()].sort((a, b) => a - b);
  const index = new Map(order.map((label, g) => [label, g]));
  const groups = order.map((label) => new Int32Array(sizes.get(label)!));
  const filled = new Uint32Array(order.length);
  labels.forEach((label, p) => {
    const g = index.get(label)!;
    groups[g]![filled[g]!++] = p;
  });
  return groups;
}

/**
 * What occlusion puts in place of a group, element by element: zero, a number, the image's mean
 * (per channel), or a blurred copy of the image (a box blur per channel whose window is the patch,
 * or a ninth of the smaller side for segments, at least 3 pixels; the window is cut at the edges).
 */
export function baselineOf(image: ImageGroups, data: Float64Array, baseline: Baseline): Float64Array {
  const out = new Float64Array(data.length);
  if (typeof baseline === 'number') return out.fill(baseline);
  if (baseline === 'zero') return out;
  for (let c = 0; c < image.channels; c++) {
    const plane = new Float64Array(image.pixels);
    for (let p = 0; p < image.pixels; p++) plane[p] = data[image.element(p, c)]!;
    const filled = baseline === 'mean' ? new Float64Array(image.pixels).fill(plane.reduce((a, b) => a + b, 0) / image.pixels) : boxBlur(plane, image);
    for (let p = 0; p < image.pixels; p++) out[image.element(p, c)] = filled[p]!;
  }
  return out;
}

function boxBlur(plane: Float64Array, image: ImageGroups): Float64Array {
  const side = Math.max(3, Math.round(Math.min(image.height, image.width) / 9));
  const [kh, kw] = image.patchSize ?? [side, side];
  const rows = blurAxis(plane, image.height, image.width, kw, 1, image.width);
  return blurAxis(rows, image.width, image.height, kh, image.width, 1);
}

/**
 * A moving average of width k along one axis (`step` apart), for each of `lines` lines
 * (`lineStep` apart), cut at the edges: by prefix sums, so the cost does not grow with k.
 */
function blurAxis(plane: Float64Array, lines: number, length: number, k: number, step: number, lineStep: number): Float64Array {
  const out = new Float64Array(plane.length);
  const before = Math.floor((k - 1) / 2);
  const after = k - 1 - before;
  const prefix = new Float64Array(length + 1);
  for (let line = 0; line < lines; line++) {
    const base = line * lineStep;
    for (let i = 0; i < length; i++) prefix[i + 1] = prefix[i]! + plane[base + i * step]!;
    for (let i = 0; i < length; i++) {
      const from = Math.max(0, i - before);
      const to = Math.min(length - 1, i + after);
      out[base + i * step] = (prefix[to + 1]! - prefix[from]!) / (to - from + 1);
    }
  }
  return out;
}

/** Occlusion of each group: one query per group; the map at the image's resolution and the drop of each group. */
export async function occludeGroups(
  ctx: EstimateContext,
  point: Point,
  image: ImageGroups,
  baseline: Float64Array,
  value: number,
): Promise<{ scores: Float64Array; drops: Float64Array }> {
  const drops = new Float64Array(image.count);
  function* queries(): Generator<Task> {
    for (let g = 0; g < image.count; g++) {
      const data = point.data.slice();
      image.forEachElement(g, (i) => void (data[i] = baseline[i]!));
      const input = { shape: point.shape, data };
      yield async () => void (drops[g] = value - (await ctx.f(toValue(input))));
    }
  }
  await ctx.run(queries());
  return { scores: image.spread(drops), drops };
}

/**
 * Finite differences on groups: every element of group g moves by h = ε·(hi − lo) of the image's
 * range at once (forward: up; central: up and down). The slope over the steps actually taken is
 * the gradient's mean over the group.
 */
export async function groupDifferences(
  ctx: EstimateContext,
  point: Point,
  image: ImageGroups,
  options: { kind: 'forward' | 'central'; epsilon: number; value: number },
): Promise<Float64Array> {
  const h = options.epsilon * (image.range[1] - image.range[0]);
  const slopes = new Float64Array(image.count);
  const up = new Float64Array(image.count);
  const down = new Float64Array(image.count).fill(options.value);
  const width = new Float64Array(image.count);
  function* queries(): Generator<Task> {
    for (let g = 0; g < image.count; g++) {
      const plus = point.data.slice();
      const minus = point.data.slice();
      image.forEachElement(g, (i) => {
        plus[i] = point.data[i]! + h;
        if (options.kind === 'central') minus[i] = point.data[i]! - h;
        width[g]! += plus[i]! - minus[i]!;
      });
      const plusInput = toValue({ shape: point.shape, data: plus });
      yield async () => void (up[g] = await ctx.f(plusInput));
      if (options.kind === 'central') {
        const minusInput = toValue({ shape: point.shape, data: minus });
        yield async () => void (down[g] = await ctx.f(minusInput));
      }
    }
  }
  await ctx.run(queries());
  for (let g = 0; g < image.count; g++) slopes[g] = (up[g]! - down[g]!) / width[g]!;
  return image.spread(slopes);
}

/**
 * How many characters each perturbed input's JSON text has more than the input's, for bounding
 * the bytes the groups' queries send before sending them (limits.ts). A group moves each of its
 * elements the same way whatever the group (to the baseline, or by ±h), so each element's growth
 * is counted once, with no list of changes per group: overlapping windows cost a sum per group,
 * not a number written as text per element and window.
 */
export function* groupGrowths(
  image: ImageGroups,
  data: Float64Array,
  how: { kind: 'occlusion'; baseline: Float64Array } | { kind: 'forward' | 'central'; epsilon: number },
): Generator<number> {
  const h = how.kind === 'occlusion' ? 0 : how.epsilon * (image.range[1] - image.range[0]);
  const moves: ((i: number) => number)[] =
    how.kind === 'occlusion' ? [(i) => how.baseline[i]!] : (how.kind === 'central' ? [1, -1] : [1]).map((sign) => (i: number) => data[i]! + sign * h);
  const own = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) own[i] = numberCharacters(data[i]!);
  const growths = moves.map((move) => {
    const growth = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) growth[i] = numberCharacters(move(i)) - own[i]!;
    return growth;
  });
  for (let g = 0; g < image.count; g++) {
    for (const growth of growths) {
      let sum = 0;
      image.forEachElement(g, (i) => void (sum += growth[i]!));
      yield sum;
    }
  }
}
