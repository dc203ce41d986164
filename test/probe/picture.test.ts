// Saliency maps as PNG: decoded again with pngjs, the picture's size, where its hottest pixel is
// (where the model on loopback is sensitive), paper light and ink dark, the colour bar's ends and
// its numbers, each method's scale, and the two ways the API answers it (base64 in JSON, or
// image/png when Accept asks for it).

import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';
import { labelOf, pictureLayout, renderSaliency } from '../../src/probe/picture.js';
import { prefersPng } from '../../routes/probe.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from './fake-model.js';

const H = 12;
const W = 10;
/** The model's sensitive block: rows 3–5, columns 6–8. */
const inBlock = (r: number, c: number) => r >= 3 && r <= 5 && c >= 6 && c <= 8;
const random = new Random(5);
const weights = Float64Array.from({ length: H * W }, (_, p) => 0.05 * random.normal() + (inBlock(Math.floor(p / W), p % W) ? 2 : 0));
const pixels = Array.from({ length: H * W }, () => 0.2 + 0.6 * random.uniform());
const rgbAt = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));

/** The map's pixel (in image coordinates) whose colour is reddest ((R − B) / (R + G + B): the ink's shade, a factor, cancels), scanning the map's part of the picture. */
function reddest(png: PNG, zoom: number): [number, number] {
  let best = -Infinity;
  let where: [number, number] = [0, 0];
  for (let y = 0; y < H * zoom; y++) {
    for (let x = 0; x < W * zoom; x++) {
      const [r, g, b] = rgbAt(png, x, y);
      const redness = (r! - b!) / (r! + g! + b! + 1);
      if (redness > best) {
        best = redness;
        where = [Math.floor(y / zoom), Math.floor(x / zoom)];
      }
    }
  }
  return where;
}

/** Rows of the PNG under the bar, where its numbers are: the count of dark pixels in columns [from, to). */
function darkInLabels(png: PNG, from: number, to: number): number {
  const layout = pictureLayout(H, W);
  let dark = 0;
  for (let y = layout.mapHeight + 6 + 14 + 3; y < png.height; y++) {
    for (let x = Math.max(0, from); x < Math.min(png.width, to); x++) if (Math.max(...rgbAt(png, x, y)) < 80) dark++;
  }
  return dark;
}

describe('renderSaliency', () => {
  const base = { height: H, width: W, channels: 1, layout: 'hwc' as const, pixels: Float64Array.from(pixels), range: [0, 1] as [number, number] };
  const layout = pictureLayout(H, W);
  const barRow = layout.mapHeight + 6 + 7;

  it('draws a gradient on a diverging scale: red where it is largest, the bar blue (min) to red (max) under the map', () => {
    const { png, colourScale } = renderSaliency({ ...base, map: weights, kind: 'gradient' });
    const picture = PNG.sync.read(png);
    // 12×10 pixels enlarged 16 times (to about 256 across); the bar and its numbers below.
    expect(layout.zoom).toBe(16);
    expect([picture.width, picture.height]).toEqual([layout.width, layout.height]);
    expect(picture.height).toBeGreaterThan(H * 16 + 20);
    const largest = Math.max(...weights.map(Math.abs));
    expect(colourScale).toEqual({ kind: 'diverging', min: -largest, max: largest });
    const [r, c] = reddest(picture, 16);
    expect(inBlock(r, c)).toBe(true);
    expect(rgbAt(picture, picture.width - 1, barRow)).toEqual([180, 4, 38]);
    expect(rgbAt(picture, 0, barRow)).toEqual([59, 76, 192]);
    const middle = rgbAt(picture, Math.round((picture.width - 1) / 2), barRow);
    expect(Math.min(...middle)).toBeGreaterThan(230);
  });

  it('draws the image as paper and ink: range[0] white, range[1] dark, and a zero map leaves it alone', () => {
    // Pixel 0 is paper (0), pixel 1 half-inked, pixel 2 ink (1): MNIST's convention.
    const image = Float64Array.from({ length: H * W }, (_, p) => (p === 1 ? 0.5 : p === 2 ? 1 : 0));
    const plain = PNG.sync.read(renderSaliency({ ...base, pixels: image, map: new Float64Array(H * W), kind: 'gradient' }).png);
    const [paper, half, ink] = [0, 1, 2].map((p) => rgbAt(plain, p * 16 + 8, 8));
    expect(paper).toEqual([255, 255, 255]);
    expect(ink![0]).toBeLessThan(128);
    expect(half![0]).toBeGreaterThan(ink![0]!);
    expect(half![0]).toBeLessThan(paper![0]!);
    for (const rgb of [half!, ink!]) expect(new Set(rgb).size).toBe(1); // grey
    // The range places the levels: on [0, 255] the same picture needs 255 for ink.
    const bytes = PNG.sync.read(renderSaliency({ ...base, pixels: image.map((v) => 255 * v), range: [0, 255], map: new Float64Array(H * W), kind: 'gradient' }).png);
    expect(rgbAt(bytes, 2 * 16 + 8, 8)).toEqual(ink);
    // On paper a value has exactly the bar's colour; on ink the same hue, darker.
    const map = Float64Array.from({ length: H * W }, (_, p) => (p === 0 || p === 2 ? 1 : 0));
    const hot = PNG.sync.read(renderSaliency({ ...base, pixels: image, map, kind: 'gradient' }).png);
    expect(rgbAt(hot, 8, 8)).toEqual(rgbAt(hot, hot.width - 1, barRow));
    const [red, green, blue] = rgbAt(hot, 2 * 16 + 8, 8);
    expect(red!).toBeLessThan(180);
    expect(red!).toBeGreaterThan(3 * Math.max(green!, blue!));
  });

  it('writes the bar’s numbers under it: min at the left, 0 in the middle when diverging, max at the right', () => {
    const diverging = PNG.sync.read(renderSaliency({ ...base, map: weights, kind: 'gradient' }).png);
    const w = diverging.width;
    const third = Math.floor(w / 3);
    expect(darkInLabels(diverging, 0, third)).toBeGreaterThan(20);
    expect(darkInLabels(diverging, third, w - third)).toBeGreaterThan(10);
    expect(darkInLabels(diverging, w - third, w)).toBeGreaterThan(20);
    // A sequential bar has no 0 in the middle (its min is 0, at the left).
    const map = Float64Array.from(weights, Math.abs);
    const sequential = PNG.sync.read(renderSaliency({ ...base, map, kind: 'occlusion' }).png);
    expect(darkInLabels(sequential, 0, third)).toBeGreaterThan(10);
    expect(darkInLabels(sequential, third + 20, w - third)).toBe(0);
    expect(darkInLabels(sequential, w - third, w)).toBeGreaterThan(20);
    // The map's own rows hold no text.
    expect(darkInLabels(sequential, 0, w)).toBeLessThan(darkInLabels(diverging, 0, w));
  });

  it('labels with three significant digits in at most 9 characters', () => {
    expect(labelOf(0)).toBe('0');
    expect(labelOf(1.0848700361183674)).toBe('1.08');
    expect(labelOf(-0.6999319201991412)).toBe('-0.7');
    expect(labelOf(12345)).toBe('12300');
    expect(labelOf(0.00123456)).toBe('0.00123');
    expect(labelOf(-1.5e-7)).toBe('-1.5e-7');
    expect(labelOf(2e7)).toBe('2e+7');
    expect(labelOf(-1.234e-100)).toBe('-1.2e-100');
    for (const v of [-Number.MAX_VALUE, -Number.MIN_VALUE, 1 / 3, -123456.7]) expect(labelOf(v).length).toBeLessThanOrEqual(9);
  });

  it('uses each method’s scale: gradients diverging (even when all positive), occlusion sequential unless a drop is below −1% of the largest', () => {
    const positive = Float64Array.from(weights, Math.abs);
    expect(renderSaliency({ ...base, map: positive, kind: 'gradient' }).colourScale.kind).toBe('diverging');
    expect(renderSaliency({ ...base, map: positive, kind: 'occlusion' }).colourScale).toEqual({ kind: 'sequential', min: 0, max: Math.max(...positive) });
    const top = Math.max(...positive);
    const slightly = positive.slice();
    slightly[0] = -0.005 * top;
    expect(renderSaliency({ ...base, map: slightly, kind: 'occlusion' }).colourScale.kind).toBe('sequential');
    const against = positive.slice();
    against[0] = -0.2 * top;
    expect(renderSaliency({ ...base, map: against, kind: 'occlusion' }).colourScale).toEqual({ kind: 'diverging', min: -top, max: top });
  });

  it('draws occlusion drops on a sequential scale from 0, and reads channels where the layout says', () => {
    // Three channels first (chw): the map counts the sum over a pixel's channels.
    const chw = { ...base, channels: 3, layout: 'chw' as const, pixels: Float64Array.from([...pixels, ...pixels, ...pixels]) };
    const map = Float64Array.from([...weights, ...weights, ...weights].map((v) => Math.max(0, v)));
    const { png, colourScale } = renderSaliency({ ...chw, map, kind: 'occlusion' });
    expect(colourScale.kind).toBe('sequential');
    expect(colourScale.min).toBe(0);
    expect(colourScale.max).toBeCloseTo(3 * Math.max(...weights), 12);
    const picture = PNG.sync.read(png);
    expect(inBlock(...reddest(picture, 16))).toBe(true);
    expect(rgbAt(picture, 0, barRow)).toEqual([255, 255, 204]);
    expect(rgbAt(picture, picture.width - 1, barRow)).toEqual([189, 0, 38]);
  });
});

describe('prefersPng', () => {
  it.each([
    [undefined, false],
    ['*/*', false],
    ['application/json', false],
    ['image/png', true],
    ['image/png, application/json', true],
    ['application/json, image/png;q=0.5', false],
    ['application/json;q=0.5, image/png', true],
    ['image/png;q=0', false],
  ])('%s → %s', (accept, expected) => expect(prefersPng(accept)).toBe(expected));
});

describe('POST /probe with format png', () => {
  let model: FakeModel;
  let app: App;
  beforeAll(async () => {
    // |weights|: every patch's drop is positive, so occlusion gets the sequential scale.
    model = await serveModel((input) => ({ json: { logits: [(input as number[][]).flat().reduce((s, x, i) => s + Math.abs(weights[i]!) * x, 0)] } }));
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin] });
  });
  afterAll(async () => {
    await app.close();
    await model.close();
  });
  const at = Array.from({ length: H }, (_, r) => pixels.slice(r * W, (r + 1) * W));
  const payload = { target: { url: '', body: { input: '$input' }, outputPath: '/logits/0' }, at, method: 'occlusion', image: { shape: [H, W], patch: [3, 3] }, format: 'png' };
  const post = (headers: Record<string, string> = {}, fields: Record<string, unknown> = {}) =>
    app.inject({ method: 'POST', url: '/probe', headers, payload: { ...payload, target: { ...payload.target, url: model.url }, ...fields } });

  it('answers the picture as base64 in the JSON answer, the hottest patch where the model is sensitive', async () => {
    const response = await post();
    expect(response.statusCode, response.body).toBe(200);
    const answer = response.json() as { png: string; colourScale: { kind: string }; queries: number; scores: number[][] };
    expect(answer.queries).toBe(17);
    expect(answer.colourScale.kind).toBe('sequential');
    const picture = PNG.sync.read(Buffer.from(answer.png, 'base64'));
    expect([picture.width, picture.height]).toEqual([pictureLayout(H, W).width, pictureLayout(H, W).height]);
    // The reddest pixel lies in the patch with the largest drop, which overlaps the sensitive block.
    const [r, c] = reddest(picture, 16);
    const flat = answer.scores.flat();
    expect(flat[r * W + c]).toBe(Math.max(...flat));
    expect([3, 4, 5].includes(r) || [6, 7, 8].includes(c)).toBe(true);
  });

  it('answers image/png when Accept asks for it, with the queries and the scale in headers', async () => {
    const before = model.requests;
    const response = await post({ accept: 'image/png' }, { method: 'central', image: { shape: [H, W] } });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('image/png');
    expect(Number(response.headers['x-probe-queries'])).toBe(2 * H * W + 1);
    expect(model.requests - before).toBe(2 * H * W + 1);
    const [min, max] = String(response.headers['x-colour-scale']).split(',').map(Number);
    expect(max).toBeCloseTo(Math.max(...weights.map(Math.abs)), 6);
    expect(min).toBe(-max!);
    const picture = PNG.sync.read(response.rawPayload);
    expect(inBlock(...reddest(picture, 16))).toBe(true);
  });

  it('needs an image', async () => {
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: 'sum(x)' }, at: [1, 2], method: 'central', format: 'png' } });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ errors: [{ path: 'format' }] });
  });
});
