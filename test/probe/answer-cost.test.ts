// Pictures and probe answers within the cost model (issue 20, item 4): a picture is bounded by the
// PNG's own pixels and sides (colour bar included) before anything is sent; a probe's maps count
// against MAX_ANSWER_ELEMENTS from its plan; a picture is drawn, and a large answer written and
// serialised, on a worker thread, so /healthz answers meanwhile.

import { PNG } from 'pngjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_PICTURE_PIXELS, MAX_PICTURE_SIDE, pictureLayout, pictureTooLarge, renderSaliency } from '../../src/probe/picture.js';
import { Random } from '../../src/engine/random.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { Bench, type FakeModel } from './fake-model.js';

/**
 * No 503 for a delayed event loop: these tests parse megabytes of base64 on machines shared with
 * other work, and what they check is the limits and where the work runs, not the pressure guard.
 */
const CALM = { MAX_EVENT_LOOP_DELAY_MS: 0 };

/** A base64 float64 array of `shape` (cheap to send and parse, whatever its size). */
function encoded(shape: number[], fill: (i: number) => number = () => 0): { dtype: 'float64'; shape: number[]; data: string } {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float64', shape, data: Buffer.from(Float64Array.from({ length: n }, (_, i) => fill(i)).buffer).toString('base64') };
}

/** The sum of a nested array's numbers (an input is sent as nested arrays, whatever its encoding in the request). */
const total = (value: unknown): number => (Array.isArray(value) ? value.reduce((s: number, x) => s + total(x), 0) : Number(value));
/** A model whose one logit is the sum of its input's numbers. */
const summing = (input: unknown) => ({ json: { logits: [total(input)] } });

/** POST /probe of `model`, its body `{"input": ...}`, the first logit of /logits. */
function probe(app: App, model: FakeModel, fields: Record<string, unknown>, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/probe', headers, payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, ...fields } });
}

describe('pictureLayout', () => {
  it('counts the colour bar and the enlargement, as renderSaliency draws them', () => {
    const random = new Random(3);
    for (const [height, width] of [[12, 10], [1, 1], [3, 200], [300, 2], [257, 1]] as const) {
      const layout = pictureLayout(height, width);
      const n = height * width;
      const { png } = renderSaliency({
        height,
        width,
        channels: 1,
        layout: 'hwc',
        pixels: Float64Array.from({ length: n }, () => random.uniform()),
        range: [0, 1],
        map: Float64Array.from({ length: n }, () => random.normal()),
        kind: 'gradient',
      });
      const picture = PNG.sync.read(png);
      expect([picture.width, picture.height], `${height}×${width}`).toEqual([layout.width, layout.height]);
      expect(layout.pixels).toBe(picture.width * picture.height);
    }
  });

  it('refuses the issue’s strip: a 1,048,576 × 1 image is a 132 × 1,048,610 picture (bar and labels under it)', () => {
    const strip = pictureLayout(1_048_576, 1);
    expect([strip.width, strip.height, strip.pixels]).toEqual([132, 1_048_610, 132 * 1_048_610]);
    expect(pictureTooLarge(strip)).toMatch(new RegExp(`sides would be 132×1048610 .* at most ${MAX_PICTURE_SIDE}`));
    // Under the side bound but over the pixels once the bar and its labels are counted: 1024 + 41 rows of 1000.
    expect(pictureTooLarge(pictureLayout(1024, 1000))).toMatch(/1065000 pixels \(1000×1065, colour bar included\), more than the 1048576/);
    expect(1024 * 1000).toBeLessThan(MAX_PICTURE_PIXELS);
    expect(pictureTooLarge(pictureLayout(1000, 1000))).toBeUndefined();
    // The builder counts before it builds, whoever calls it.
    const n = 1_048_576;
    const strip1 = { height: n, width: 1, channels: 1, layout: 'hwc' as const, pixels: new Float64Array(n), range: [0, 1] as [number, number], map: new Float64Array(n), kind: 'gradient' as const };
    expect(() => renderSaliency(strip1)).toThrow(RangeError);
  });
});

describe('POST /probe: pictures and maps counted before anything is sent', () => {
  const bench = new Bench();
  afterEach(() => bench.close());

  it('refuses format png for the issue’s 1,048,576 × 1 image (422 naming format), and for a strip past the side bound', async () => {
    // MAX_ANSWER_ELEMENTS raised so the picture's own bound is what refuses.
    const { model, app } = await bench.serve(summing, { MAX_ANSWER_ELEMENTS: 2_000_000, ...CALM });
    const strip = await probe(app, model, { at: encoded([1_048_576, 1]), method: 'occlusion', image: { shape: [1_048_576, 1], patch: [1_048_576, 1] }, format: 'png' });
    expect(strip.statusCode).toBe(422);
    expect(strip.json()).toMatchObject({ code: 'limit_exceeded', errors: [{ path: 'format' }] });
    expect(strip.json().detail).toMatch(/does not draw this 1048576×1 image: its sides would be 132×1048610/);
    const tall = await probe(app, model, { at: encoded([5000, 2]), method: 'occlusion', image: { shape: [5000, 2], patch: [5000, 2] }, format: 'png' });
    expect(tall.statusCode).toBe(422);
    expect(tall.json().detail).toMatch(/its sides would be 132×5034/);
    // Without a picture the same strip is probed (two queries: one group).
    const json = await probe(app, model, { at: encoded([5000, 2]), method: 'occlusion', image: { shape: [5000, 2], patch: [5000, 2] } });
    expect(json.statusCode, json.body).toBe(200);
    expect(model.requests).toBe(2);
  });

  it('counts every map of the answer against MAX_ANSWER_ELEMENTS from the plan: 422 naming it, nothing sent', async () => {
    const { model, app } = await bench.serve(summing, { MAX_ANSWER_ELEMENTS: 100, ...CALM });
    const ones = (n: number) => new Array<number>(n).fill(1);
    const tokens = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);
    const expr = (fields: Record<string, unknown>) => app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: 'sum(x * x)' }, ...fields } });
    const refused: [string, () => ReturnType<typeof expr>, RegExp][] = [
      ['forward, 101 elements', () => probe(app, model, { at: ones(101), method: 'forward' }), /hold 101 numbers \(gradient: 101 each\)/],
      ['spsa, gradient and stderr', () => probe(app, model, { at: ones(51), method: 'spsa', budget: 20 }), /hold 102 numbers \(gradient, stderr: 51 each\)/],
      ['an expression: the exact gradient too', () => expr({ at: ones(51), method: 'central' }), /hold 102 numbers \(gradient, exact: 51 each\)/],
      ['shapley: scores and stderr', () => probe(app, model, { at: tokens(51), method: 'shapley', samples: 2 }), /hold 102 numbers \(scores, stderr: 51 each\)/],
      ['an image’s occlusion', () => probe(app, model, { at: encoded([11, 11]), method: 'occlusion', image: { shape: [11, 11], patch: [11, 11] } }), /hold 121 numbers \(scores: 121 each\)/],
    ];
    for (const [what, send, detail] of refused) {
      const response = await send();
      expect(response.statusCode, `${what}: ${response.body}`).toBe(422);
      expect(response.json(), what).toMatchObject({ code: 'limit_exceeded', queries: 0, errors: [{ path: 'at' }] });
      expect(response.json().detail, what).toMatch(detail);
      expect(response.json().detail, what).toMatch(/MAX_ANSWER_ELEMENTS of 100/);
    }
    expect(model.requests).toBe(0);
    // At the bound it is answered, and the answer holds just as many numbers as were counted.
    const fits = await expr({ at: ones(50), method: 'central' });
    expect(fits.statusCode, fits.body).toBe(200);
    const answer = fits.json() as { gradient: number[]; exact: number[] };
    expect(answer.gradient.length + answer.exact.length).toBe(100);
    const timePrior = await probe(app, model, { at: ones(100), method: 'nes', prior: 'time', budget: 10 });
    expect(timePrior.statusCode, timePrior.body).toBe(200);
    expect(timePrior.json()).not.toHaveProperty('stderr');
  });
});

describe('POST /probe: pictures and large answers off the event loop', () => {
  const bench = new Bench();
  afterEach(() => bench.close());

  it('draws the picture on a worker: /healthz is answered while it is drawn', async () => {
    const { model, app } = await bench.serve(summing, { WORKERS: 1, ...CALM });
    // A warm worker (its first task loads the engine through tsx).
    const tiny = { height: 1, width: 1, channels: 1, layout: 'hwc' as const, pixels: new Float64Array(1), range: [0, 1] as [number, number], map: new Float64Array(1), kind: 'gradient' as const };
    await app.compute.drawPicture(tiny);
    const offloaded = app.compute.jobs().offloaded;
    // Watch the drawing: whether a health check starts and ends while it is under way.
    const draw = app.compute.drawPicture.bind(app.compute);
    let drawing = false;
    let draws = 0;
    app.compute.drawPicture = async (picture) => {
      drawing = true;
      draws++;
      try {
        return await draw(picture);
      } finally {
        drawing = false;
      }
    };
    const random = new Random(11);
    const side = 400;
    const image = encoded([side, side], () => random.uniform());
    let done = false;
    const pictured = probe(app, model, { at: image, method: 'occlusion', image: { shape: [side, side], patch: [side, side] }, format: 'png' }, { accept: 'image/png' }).finally(() => {
      done = true;
    });
    let answeredWhileDrawing = 0;
    while (!done) {
      const before = drawing;
      const health = await app.inject({ method: 'GET', url: '/healthz' });
      if (before && drawing && health.statusCode === 200) answeredWhileDrawing++;
      await sleep(2);
    }
    const response = await pictured;
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('image/png');
    expect(draws).toBe(1);
    expect(app.compute.jobs().offloaded).toBe(offloaded + 1);
    // Drawn on the event loop, the picture would leave no turn to a health check until it is done.
    expect(answeredWhileDrawing).toBeGreaterThan(0);
    const picture = PNG.sync.read(response.rawPayload);
    expect([picture.width, picture.height]).toEqual([pictureLayout(side, side).width, pictureLayout(side, side).height]);
  });

  it('writes and serialises a large answer on a worker (and a picture in JSON), the same answer as the event loop’s', async () => {
    const { model, app } = await bench.serve(summing, { WORKERS: 1, INLINE_ANSWER_ELEMENTS: 1000, ...CALM });
    const inline = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], ...CALM });
    try {
      const random = new Random(5);
      const image = encoded([60, 50], () => random.uniform());
      const fields = { at: image, method: 'occlusion', image: { shape: [60, 50], patch: [20, 25] } };
      for (const extra of [{}, { encoding: 'base64' }, { format: 'png' }]) {
        const before = app.compute.jobs().offloaded;
        const a = await probe(app, model, { ...fields, ...extra });
        expect(a.statusCode, a.body).toBe(200);
        expect(a.headers['content-type']).toMatch(/^application\/json/);
        // 3,000 numbers, over INLINE_ANSWER_ELEMENTS: built on the worker.
        expect(app.compute.jobs().offloaded, JSON.stringify(extra)).toBe(before + 1);
        const b = await probe(inline, model, { ...fields, ...extra });
        expect(a.json(), JSON.stringify(extra)).toEqual(b.json());
      }
      // A small answer is still written on the event loop.
      const before = app.compute.jobs().offloaded;
      const small = await probe(app, model, { at: [1, 2, 3], method: 'forward' });
      expect(small.statusCode, small.body).toBe(200);
      expect(app.compute.jobs().offloaded).toBe(before);
    } finally {
      await inline.close();
    }
  });
});
