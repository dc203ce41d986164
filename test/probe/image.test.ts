// POST /probe on images: sliding-window occlusion and grouped finite differences over patches or
// a caller's segments, against linear models served on loopback, whose answers are computed here
// independently (brute force over the windows). Every probe spends exactly the queries stated in
// advance: groups + 1 (occlusion, forward) or 2·groups + 1 (central).

import { afterEach, describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';
import { baselineOf, groupGrowths, ImageGroups } from '../../src/probe/image.js';
import type { App } from '../../src/service/app.js';
import { Bench, probeModel, type FakeModel, type Respond } from './fake-model.js';

interface Answer {
  method: string;
  value: number;
  gradient?: unknown;
  scores?: unknown;
  groups?: number;
  queries: number;
  code?: string;
  detail?: string;
}

const H = 12;
const W = 10;

/** Weights concentrated on one block of the image (rows 3–5, columns 6–8), plus small ones elsewhere. */
function weights(seed: number, channels = 1): Float64Array {
  const random = new Random(seed);
  const w = new Float64Array(H * W * channels);
  for (let i = 0; i < w.length; i++) {
    const p = Math.floor(i / channels);
    const [r, c] = [Math.floor(p / W), p % W];
    w[i] = 0.05 * random.normal() + (r >= 3 && r <= 5 && c >= 6 && c <= 8 ? 2 : 0);
  }
  return w;
}

const flat = (value: unknown): number[] => (Array.isArray(value) ? value.flat(Infinity as 1) : [value]) as number[];
const dot = (w: Float64Array, x: number[]) => x.reduce((s, xi, i) => s + w[i]! * xi, 0);

function nested(data: ArrayLike<number>, shape: number[]): unknown {
  if (shape.length === 1) return Array.from(data);
  const size = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) => nested(Array.prototype.slice.call(data, i * size, (i + 1) * size), shape.slice(1)));
}

/** Window starts along one axis, computed the plain way: every stride, then one flush with the edge. */
function starts(size: number, patch: number, stride: number): number[] {
  const out: number[] = [];
  for (let s = 0; s <= size - patch; s += stride) out.push(s);
  if (out.at(-1)! + patch !== size) out.push(size - patch);
  return out;
}

/** Each pixel's mean over the windows covering it of `perWindow(top, left)`. */
function windowMean(patch: [number, number], stride: [number, number], perWindow: (top: number, left: number) => number): number[] {
  const sum = new Array<number>(H * W).fill(0);
  const count = new Array<number>(H * W).fill(0);
  for (const top of starts(H, patch[0], stride[0])) {
    for (const left of starts(W, patch[1], stride[1])) {
      const v = perWindow(top, left);
      for (let r = top; r < top + patch[0]; r++) {
        for (let c = left; c < left + patch[1]; c++) {
          sum[r * W + c]! += v;
          count[r * W + c]!++;
        }
      }
    }
  }
  return sum.map((s, p) => s / count[p]!);
}

const probe = (app: App, model: FakeModel, request: Record<string, unknown>) => probeModel<Answer>(app, model, request);

const linearImage =
  (w: Float64Array): Respond =>
  (input) => ({ json: { logits: [dot(w, flat(input)) + 0.25, 0] } });

describe('POST /probe: occlusion of an image', () => {
  const bench = new Bench();
  afterEach(() => bench.close());
  const random = new Random(3);
  const x = Array.from({ length: H * W }, () => random.uniform());
  const image = nested(x, [H, W]);

  it('tiles the image with patches: one query per patch + 1, each pixel scored by its patch’s drop', async () => {
    const w = weights(1);
    const { model, app } = await bench.serve(linearImage(w));
    const { status, answer } = await probe(app, model, { at: image, method: 'occlusion', image: { shape: [H, W], patch: [3, 3] } });
    expect(status, JSON.stringify(answer)).toBe(200);
    // Rows: 0, 3, 6, 9 (4 windows); columns 0, 3, 6 and 7 flush with the edge (4 windows).
    expect(answer.groups).toBe(16);
    expect(answer.queries).toBe(17);
    expect(model.requests).toBe(17);
    const expected = windowMean([3, 3], [3, 3], (top, left) => {
      let drop = 0;
      for (let r = top; r < top + 3; r++) for (let c = left; c < left + 3; c++) drop += w[r * W + c]! * x[r * W + c]!;
      return drop;
    });
    flat(answer.scores).forEach((s, p) => expect(s).toBeCloseTo(expected[p]!, 10));
    // The hottest pixel is in the block the model weighs.
    const hottest = flat(answer.scores).indexOf(Math.max(...flat(answer.scores)));
    expect([Math.floor(hottest / W), hottest % W]).toSatisfy(([r, c]: number[]) => r! >= 3 && r! <= 5 && c! >= 6 && c! <= 8);
  });

  it('slides overlapping windows: a pixel’s score is the mean drop of the windows covering it', async () => {
    const w = weights(2);
    const { model, app } = await bench.serve(linearImage(w));
    const { answer } = await probe(app, model, { at: image, method: 'occlusion', image: { shape: [H, W], patch: [4, 4], stride: [2, 3], baseline: 0.5 } });
    const rows = starts(H, 4, 2).length;
    const columns = starts(W, 4, 3).length;
    expect(answer.groups).toBe(rows * columns);
    expect(answer.queries).toBe(rows * columns + 1);
    expect(model.requests).toBe(answer.queries);
    const expected = windowMean([4, 4], [2, 3], (top, left) => {
      let drop = 0;
      for (let r = top; r < top + 4; r++) for (let c = left; c < left + 4; c++) drop += w[r * W + c]! * (x[r * W + c]! - 0.5);
      return drop;
    });
    flat(answer.scores).forEach((s, p) => expect(s).toBeCloseTo(expected[p]!, 10));
  });

  it('replaces a patch by the image’s mean, or by a blurred copy of the image', async () => {
    const w = weights(4);
    const { model, app } = await bench.serve(linearImage(w));
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    const withMean = await probe(app, model, { at: image, method: 'occlusion', image: { shape: [H, W], patch: [2, 5], baseline: 'mean' } });
    const expectedMean = windowMean([2, 5], [2, 5], (top, left) => {
      let drop = 0;
      for (let r = top; r < top + 2; r++) for (let c = left; c < left + 5; c++) drop += w[r * W + c]! * (x[r * W + c]! - mean);
      return drop;
    });
    flat(withMean.answer.scores).forEach((s, p) => expect(s).toBeCloseTo(expectedMean[p]!, 10));

    // The blur: each pixel the average of the 3×3 window around it, cut at the image's edges.
    const blurred = x.map((_, p) => {
      const [r, c] = [Math.floor(p / W), p % W];
      let sum = 0;
      let count = 0;
      for (let i = r - 1; i <= r + 1; i++) for (let j = c - 1; j <= c + 1; j++) if (i >= 0 && i < H && j >= 0 && j < W) (sum += x[i * W + j]!), count++;
      return sum / count;
    });
    const withBlur = await probe(app, model, { at: image, method: 'occlusion', image: { shape: [H, W], patch: [3, 3], baseline: 'blur' } });
    const expectedBlur = windowMean([3, 3], [3, 3], (top, left) => {
      let drop = 0;
      for (let r = top; r < top + 3; r++) for (let c = left; c < left + 3; c++) drop += w[r * W + c]! * (x[r * W + c]! - blurred[r * W + c]!);
      return drop;
    });
    flat(withBlur.answer.scores).forEach((s, p) => expect(s).toBeCloseTo(expectedBlur[p]!, 10));
  });

  it('occludes a caller’s segments (superpixels), given flat or nested', async () => {
    const w = weights(5);
    const { model, app } = await bench.serve(linearImage(w));
    // Three labels, not contiguous, in no particular order of first appearance.
    const labels = x.map((_, p) => [7, -1, 3][(Math.floor(p / W) + (p % W)) % 3]!);
    for (const segments of [labels, nested(labels, [H, W])]) {
      const { answer } = await probe(app, model, { at: image, method: 'occlusion', image: { shape: [H, W] }, segments });
      expect(answer).toMatchObject({ groups: 3, queries: 4 });
      const drops = new Map<number, number>();
      labels.forEach((label, p) => drops.set(label, (drops.get(label) ?? 0) + w[p]! * x[p]!));
      flat(answer.scores).forEach((s, p) => expect(s).toBeCloseTo(drops.get(labels[p]!)!, 10));
    }
    expect(model.requests).toBe(8);
  });
});

describe('POST /probe: grouped finite differences on an image', () => {
  const bench = new Bench();
  afterEach(() => bench.close());
  const random = new Random(9);
  const x = Array.from({ length: H * W }, () => random.uniform());

  it('central differences on patches: 2 queries per group + 1; each group’s slope is its mean gradient', async () => {
    const w = weights(6);
    const { model, app } = await bench.serve(linearImage(w));
    const { status, answer } = await probe(app, model, { at: nested(x, [H, W]), method: 'central', image: { shape: [H, W], patch: [4, 5] } });
    expect(status, JSON.stringify(answer)).toBe(200);
    expect(answer).toMatchObject({ groups: 6, queries: 13 });
    expect(model.requests).toBe(13);
    const expected = windowMean([4, 5], [4, 5], (top, left) => {
      let sum = 0;
      for (let r = top; r < top + 4; r++) for (let c = left; c < left + 5; c++) sum += w[r * W + c]!;
      return sum / 20;
    });
    flat(answer.gradient).forEach((g, p) => expect(g).toBeCloseTo(expected[p]!, 8));
  });

  it('pixel by pixel without a patch: forward differences give the gradient itself, in n + 1 queries', async () => {
    const w = weights(7);
    const { model, app } = await bench.serve(linearImage(w));
    const { answer } = await probe(app, model, { at: nested(x, [H, W]), method: 'forward', image: { shape: [H, W] } });
    expect(answer).toMatchObject({ groups: H * W, queries: H * W + 1 });
    flat(answer.gradient).forEach((g, p) => expect(g).toBeCloseTo(w[p]!, 7));
  });

  it('reads channels last (hwc) or first (chw), and base64 pixels, to the same map', async () => {
    const C = 3;
    const wHwc = weights(8, C);
    const xHwc = Array.from({ length: H * W * C }, () => random.uniform());
    // The same image and model with channels first.
    const toChw = (a: ArrayLike<number>) => Float64Array.from({ length: H * W * C }, (_, i) => a[(i % (H * W)) * C + Math.floor(i / (H * W))]!);
    const wChw = toChw(wHwc);
    const xChw = Array.from(toChw(xHwc));
    const { model, app } = await bench.serve((input) => {
      const v = flat(input);
      // Which layout was sent is told by the first dimension: 3 channels first.
      const chw = Array.isArray(input) && (input as unknown[]).length === C;
      return { json: { logits: [dot(chw ? wChw : wHwc, v)] } };
    });
    const hwc = await probe(app, model, { at: nested(xHwc, [H, W, C]), method: 'central', image: { shape: [H, W, C], patch: [3, 2] } });
    const encoded = { dtype: 'float64', shape: [C, H, W], data: Buffer.from(Float64Array.from(xChw).buffer).toString('base64') };
    const chw = await probe(app, model, { at: encoded, method: 'central', image: { shape: [C, H, W], layout: 'chw', patch: [3, 2] } });
    expect(hwc.status, JSON.stringify(hwc.answer)).toBe(200);
    expect(chw.status, JSON.stringify(chw.answer)).toBe(200);
    expect(hwc.answer.queries).toBe(2 * 4 * 5 + 1);
    expect(chw.answer.queries).toBe(hwc.answer.queries);
    const fromHwc = toChw(flat(hwc.answer.gradient));
    flat(chw.answer.gradient).forEach((g, i) => expect(g).toBeCloseTo(fromHwc[i]!, 8));
    // Every channel of a pixel gets its group's slope: the mean over the group's 3·2·3 weights.
    let sum = 0;
    for (let r = 0; r < 3; r++) for (let c = 0; c < 2; c++) for (let ch = 0; ch < C; ch++) sum += wHwc[(r * W + c) * C + ch]!;
    expect(flat(hwc.answer.gradient)[0]).toBeCloseTo(sum / 18, 8);
  });

  it('central differences on segments', async () => {
    const w = weights(10);
    const { model, app } = await bench.serve(linearImage(w));
    const labels = x.map((_, p) => (Math.floor(p / W) < 6 ? 0 : 1 + (p % 2)));
    const { answer } = await probe(app, model, { at: nested(x, [H, W]), method: 'central', image: { shape: [H, W] }, segments: nested(labels, [H, W]) });
    expect(answer).toMatchObject({ groups: 3, queries: 7 });
    for (const label of [0, 1, 2]) {
      const members = labels.flatMap((l, p) => (l === label ? [p] : []));
      const mean = members.reduce((s, p) => s + w[p]!, 0) / members.length;
      members.forEach((p) => expect(flat(answer.gradient)[p]).toBeCloseTo(mean, 8));
    }
  });
});

describe('POST /probe: the bytes an image probe sends are bounded before it starts', () => {
  const bench = new Bench();
  afterEach(() => bench.close());
  const random = new Random(12);
  const x = nested(Array.from({ length: H * W }, () => Math.round(255 * random.uniform())), [H, W]);

  it.each([
    ['spsa, steps relative to a [0, 255] range', { method: 'spsa', budget: 41, image: { shape: [H, W], range: [0, 255] } }],
    ['nes in a dct basis', { method: 'nes', budget: 41, basis: 'dct', image: { shape: [H, W], patch: [3, 3] } }],
    ['central on patches, the step chosen from the noise', { method: 'central', noise: { repeats: 3 }, image: { shape: [H, W], patch: [4, 5] } }],
    ['occlusion with a blurred baseline', { method: 'occlusion', image: { shape: [H, W], patch: [3, 3], baseline: 'blur' } }],
  ])('%s: a bound one byte below what it sends is refused up front', async (_name, fields) => {
    let sent = 0;
    const respond: Respond = (input, { request }) => {
      sent += Number(request.headers['content-length']);
      return { json: { logits: [flat(input).reduce((s, v) => s + Math.sin(v), 0)] } };
    };
    const { model, app } = await bench.serve(respond);
    expect((await probe(app, model, { at: x, ...fields })).status).toBe(200);
    const total = sent;
    await bench.close();
    const tight = await bench.serve(respond, { PROBE_MAX_OUTBOUND_BYTES: total - 1 });
    const refused = await probe(tight.app, tight.model, { at: x, ...fields });
    expect(refused.status).toBe(422);
    expect(refused.answer).toMatchObject({ code: 'limit_exceeded', queries: 0 });
    expect(tight.model.requests).toBe(0);
  });
});

describe('POST /probe: an image’s limits and mistakes', () => {
  const bench = new Bench();
  afterEach(() => bench.close());
  const at = nested(new Array(H * W).fill(0.5), [H, W]);

  it('refuses before sending anything', async () => {
    const { model, app } = await bench.serve(() => ({ json: { logits: [0] } }), { MAX_TENSOR_ELEMENTS: 2_000_000, PROBE_MAX_OUTBOUND_BYTES: 20_000 });
    const cases: [Record<string, unknown>, number, RegExp][] = [
      [{ image: { shape: [100_000, 100_000] } }, 422, /image.shape has 10000000000 elements, more than this server's limit of 2000000/],
      [{ image: { shape: [H, W + 1] } }, 400, /image.shape has 132 elements but at has 120/],
      [{ image: { shape: [H, W], patch: [H + 1, 2] } }, 400, /image.patch \[13, 2\] is larger than the 12×10 image/],
      [{ segments: new Array(H * W).fill(0) }, 400, /segments needs image/],
      [{ image: { shape: [H, W] }, segments: [1, 2] }, 400, /segments has 2 labels but the image has 120 pixels/],
      [{ image: { shape: [H, W] }, segments: new Array(H * W).fill(0.5) }, 400, /integer labels/],
      [{ image: { shape: [H, W], patch: [2, 2] }, segments: new Array(H * W).fill(0) }, 400, /give one/],
      [{ image: { shape: [H, W], range: [1, 1] } }, 400, /lo < hi/],
      [{ image: { shape: [H, W], patch: [2, 2] }, budget: 20 }, 422, /occluding 30 groups of pixels need 31 queries, more than the budget of 20/],
      // Pixel by pixel, 121 bodies of about 500 bytes pass 20,000 bytes: a larger patch fits.
      [{ image: { shape: [H, W] } }, 422, /PROBE_MAX_OUTBOUND_BYTES of 20000 .* make at most \d+ groups/],
    ];
    // A dct basis of 65 frequencies down the image (130 rows, 2-pixel cells).
    const tall = nested(new Array(130 * 2).fill(0.5), [130, 2]);
    const dct = await probe(app, model, { at: tall, method: 'nes', basis: 'dct', image: { shape: [130, 2], patch: [2, 1] } });
    expect(dct.status).toBe(422);
    expect(dct.answer.detail).toMatch(/at most 64 frequencies per axis, and image.patch makes 65×2/);
    for (const [fields, status, detail] of cases) {
      const { status: got, answer } = await probe(app, model, { at, method: 'occlusion', ...fields });
      expect(got, JSON.stringify(fields)).toBe(status);
      expect(answer.detail).toMatch(detail);
    }
    // An image of fewer than 2^20 pixels whose picture, colour bar included, has more (sent as base64
    // zeros; last, since parsing 8 MB takes a while).
    const large = { dtype: 'float64', shape: [800, 1250], data: Buffer.alloc(800 * 1250 * 8).toString('base64') };
    const png = await probe(app, model, { at: large, method: 'occlusion', image: { shape: [800, 1250], patch: [800, 1250] }, format: 'png' });
    expect(png.status).toBe(422);
    expect(png.answer.detail).toMatch(/format png does not draw this 800×1250 image: it would have 1051250 pixels \(1250×841, colour bar included\)/);
    expect(model.requests).toBe(0);
  });
});

describe('groupGrowths', () => {
  it('is, group by group, what writing each perturbed input element by element adds: overlapping windows, every kind', () => {
    const random = new Random(9);
    const [H, W, C] = [9, 7, 2];
    // Numbers of every length: integers, short and long decimals, tiny and large magnitudes.
    const data = Float64Array.from({ length: H * W * C }, (_, i) => [0, 1, 0.5, random.uniform(), 1e-7 * random.uniform(), 123.25, 255 * random.uniform()][i % 7]!);
    const point = { shape: [H, W, C], data };
    const image = ImageGroups.declare({ shape: [H, W, C], patch: [3, 4], stride: [1, 2] }, undefined, point, 1e6);
    const chars = (x: number) => String(x).length;
    const written = (moved: (i: number) => number) =>
      Array.from({ length: image.count }, (_, g) => {
        let growth = 0;
        image.forEachElement(g, (i) => void (growth += chars(moved(i)) - chars(data[i]!)));
        return growth;
      });
    const baseline = baselineOf(image, data, 'blur');
    expect([...groupGrowths(image, data, { kind: 'occlusion', baseline })]).toEqual(written((i) => baseline[i]!));
    const h = 0.01 * (image.range[1] - image.range[0]);
    expect([...groupGrowths(image, data, { kind: 'forward', epsilon: 0.01 })]).toEqual(written((i) => data[i]! + h));
    const up = written((i) => data[i]! + h);
    const down = written((i) => data[i]! - h);
    expect([...groupGrowths(image, data, { kind: 'central', epsilon: 0.01 })]).toEqual(up.flatMap((u, g) => [u, down[g]!]));
    expect(up.some((u) => u !== 0)).toBe(true);
  });
});
