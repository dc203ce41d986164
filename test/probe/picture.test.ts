// Saliency maps as PNG: decoded again with pngjs, the picture's size, where its hottest pixel is
// (where the model on loopback is sensitive), the colour bar's ends, and the two ways the API
// answers it (base64 in JSON, or image/png when Accept asks for it).

import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';
import { renderSaliency } from '../../src/probe/picture.js';
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

/** The map's pixel (in image coordinates) whose colour is reddest (R − B), scanning the map's part of the picture. */
function reddest(png: PNG, zoom: number): [number, number] {
  let best = -Infinity;
  let where: [number, number] = [0, 0];
  for (let y = 0; y < H * zoom; y++) {
    for (let x = 0; x < W * zoom; x++) {
      const [r, , b] = rgbAt(png, x, y);
      if (r! - b! > best) {
        best = r! - b!;
        where = [Math.floor(y / zoom), Math.floor(x / zoom)];
      }
    }
  }
  return where;
}

describe('renderSaliency', () => {
  const base = { height: H, width: W, channels: 1, layout: 'hwc' as const, pixels: Float64Array.from(pixels), range: [0, 1] as [number, number] };

  it('draws a gradient on a diverging scale: red where it is largest, blue at the bar’s bottom, grey where it is 0', () => {
    const { png, colourScale } = renderSaliency({ ...base, map: weights, kind: 'gradient' });
    const picture = PNG.sync.read(png);
    // 12×10 pixels enlarged 16 times (to about 256 across), and a 6 + 14 pixel bar.
    expect([picture.width, picture.height]).toEqual([W * 16 + 20, H * 16]);
    const largest = Math.max(...weights.map(Math.abs));
    expect(colourScale).toEqual({ kind: 'diverging', min: -largest, max: largest });
    const [r, c] = reddest(picture, 16);
    expect(inBlock(r, c)).toBe(true);
    const barX = picture.width - 1;
    expect(rgbAt(picture, barX, 0)).toEqual([180, 4, 38]);
    expect(rgbAt(picture, barX, picture.height - 1)).toEqual([59, 76, 192]);
    // A zero map shows the image alone, in grey.
    const plain = PNG.sync.read(renderSaliency({ ...base, map: new Float64Array(H * W), kind: 'gradient' }).png);
    const grey = Math.round(255 * pixels[0]!);
    expect(rgbAt(plain, 0, 0)).toEqual([grey, grey, grey]);
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
    expect(rgbAt(picture, picture.width - 1, picture.height - 1)).toEqual([255, 255, 204]);
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
    expect([picture.width, picture.height]).toEqual([W * 16 + 20, H * 16]);
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
