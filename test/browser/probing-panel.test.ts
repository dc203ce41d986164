// The playground's probing panel in headless chromium: a person picks a black box, an input and a
// method, presses Probe, and reads the estimate as bars, a heat map over a drawn digit, or
// highlighted words. What is shown is checked against closed forms: the gradient of a linear
// function is its weights, and leaving a word out of an additive scorer drops its weight.

import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactSaliency } from '../../src/demo/model.js';
import { startDemoModel, type DemoModel } from '../../src/demo/model-server.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from '../probe/fake-model.js';
import { CHROMIUM, hasChromium, openBrowser, SCRATCH, type Browser } from './chromium.js';

/** The legend's scale: blue at −scale, white at 0, red at +scale, linear between. */
function legendColour(t: number): [number, number, number] {
  const end = t >= 0 ? [220, 38, 38] : [37, 99, 235];
  const a = Math.min(1, Math.abs(t));
  return end.map((c) => Math.round(255 + (c - 255) * a)) as [number, number, number];
}

/** An additive sentence scorer: its logit is the sum of its words' weights (unknown words 0). */
const WORD_WEIGHTS: Record<string, number> = { not: -1.5, good: 2, film: 0.25, dull: -0.75, wonderful: 1.25 };
const sentenceLogit = (tokens: string[]) => tokens.reduce((s, t) => s + (WORD_WEIGHTS[t] ?? 0), 0);

const LINEAR_WEIGHTS = [1.5, -0.5, 2];
const linearLogit = (x: number[]) => x.reduce((s, xi, i) => s + LINEAR_WEIGHTS[i]! * xi, 0);
const NOISE = 1e-6;

describe.skipIf(!hasChromium)(`the probing panel in chromium (skipped when ${CHROMIUM} is absent)`, () => {
  let app: App;
  let model: FakeModel;
  let slowModel: FakeModel;
  let mnist: DemoModel;
  let noisyModel: FakeModel;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    model = await serveModel((input) => ({ json: { logits: [sentenceLogit(input as string[])] } }));
    slowModel = await serveModel((input) => ({ json: { logits: [sentenceLogit(input as string[])] }, delayMs: 400 }));
    // The fake models are on loopback: allowed only because the list names their very address and port.
    mnist = await startDemoModel();
    // A linear model w·x whose answers carry ±NOISE in turn: sample spread known, differences exact otherwise.
    noisyModel = await serveModel((input, { count }) => ({ json: { logits: [linearLogit(input as number[]) + (count % 2 === 0 ? NOISE : -NOISE)] } }));
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin, slowModel.origin, mnist.origin, noisyModel.origin] });
    await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await openBrowser({ width: 1400, height: 1000 });
    page = browser.page;
    await page.goto(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`);
    await page.waitForSelector('body[data-state="done"]');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await model?.close();
    await slowModel?.close();
    await mnist?.close();
    await noisyModel?.close();
  });

  async function probe(): Promise<void> {
    await page.click('#probe-run');
    await page.waitForSelector('body[data-probe="done"]');
  }

  async function useDemoTarget(expr: string, input: 'vector' | 'image'): Promise<void> {
    await page.check('input[name="probe-target"][value="expr"]');
    await page.fill('#probe-expr', expr);
    await page.check(`input[name="probe-input"][value="${input}"]`);
  }

  async function useUrlTarget(url: string, tokens: string[]): Promise<void> {
    await page.check('input[name="probe-target"][value="url"]');
    await page.fill('#probe-url', url);
    await page.fill('#probe-body', '{"input": "$input"}');
    await page.fill('#probe-pointer', '/logits');
    await page.fill('#probe-output', '0');
    await page.check('input[name="probe-input"][value="text"]');
    await page.fill('#probe-text', tokens.join(' '));
  }

  it('labels every control of the panel, so a screen reader names each one', async () => {
    for (const input of ['vector', 'text', 'image']) {
      await page.check(`input[name="probe-input"][value="${input}"]`);
      const methods = (await page.evaluate(`[...document.querySelectorAll('#probe-method option')].map((o) => o.value)`)) as string[];
      expect(methods.length).toBeGreaterThan(1);
      for (const method of methods) {
        await page.selectOption('#probe-method', method);
        const unnamed = await page.evaluate(`[...document.querySelectorAll('#probing input, #probing select, #probing textarea, #probing canvas[tabindex]')]
          .filter((c) => c.offsetParent !== null)
          .filter((c) => !(c.labels && c.labels.length > 0) && !c.getAttribute('aria-label') && !c.getAttribute('aria-labelledby'))
          .map((c) => c.id)`);
        expect(unnamed, `${input}, ${method}`).toEqual([]);
      }
    }
  }, 60_000);

  it('shows the gradient of sum(w * x) as bars equal to w, at 2n + 1 queries', async () => {
    const w = [0.75, -1.25, 2.5, 0.125, -2, 1];
    await useDemoTarget(`w = [${w.join(', ')}]\nsum(w * x)`, 'vector');
    // The demo menu no longer names the function once it is someone's own.
    expect(await page.locator('#probe-demo').inputValue()).toBe('custom');
    await page.fill('#probe-vector', '[0.3, -1, 2, 4, 0.5, -7]');
    await page.selectOption('#probe-method', 'central');
    await page.fill('#probe-budget', '');
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    expect(await page.locator('#probe-summary').innerText()).toContain(`${2 * w.length + 1} queries spent`);
    const rows = page.locator('#probe-bars tbody tr');
    expect(await rows.count()).toBe(w.length);
    const scale = Math.max(...w.map(Math.abs));
    for (let i = 0; i < w.length; i++) {
      const cells = rows.nth(i).locator('td');
      expect(Number(await cells.nth(1).innerText())).toBeCloseTo(w[i]!, 6);
      // The bar's length is |w_i| / max|w| of half the track, on the side of its sign.
      const track = (await cells.nth(2).locator('.track').boundingBox())!;
      const bar = (await cells.nth(2).locator('.bar').boundingBox())!;
      // (The track's box includes its 1 px borders on both sides.)
      expect(bar.width / ((track.width - 2) / 2)).toBeCloseTo(Math.abs(w[i]!) / scale, 2);
      const centre = track.x + track.width / 2;
      if (w[i]! > 0) expect(bar.x).toBeCloseTo(centre, 0);
      else expect(bar.x + bar.width).toBeCloseTo(centre, 0);
    }
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-bars.png') });
  }, 60_000);

  it('shows the gradient of a drawn digit as a heat map whose colours are the closed form', async () => {
    // f = sum(left half) − 2·sum(right half): ∂f/∂pixel is +1 on the left, −2 on the right.
    await useDemoTarget('sum(x[:, :14]) - 2 * sum(x[:, 14:])', 'image');
    await page.click('#probe-clear');
    // Drawn with the keyboard: Space inks the pen's pixel, Shift + arrow draws as the pen moves.
    await page.focus('#probe-canvas');
    await page.keyboard.press('Space');
    for (let i = 0; i < 6; i++) await page.keyboard.press('Shift+ArrowRight');
    for (let i = 0; i < 6; i++) await page.keyboard.press('Shift+ArrowDown');
    expect(await page.locator('#probe-canvas-pen').innerText()).toBe('pen at row 20, column 20');
    await page.selectOption('#probe-method', 'central');
    await page.fill('#probe-patch', '1');
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    expect(await page.locator('#probe-summary').innerText()).toContain(`${2 * 28 * 28 + 1} queries spent`);
    expect(await page.locator('#probe-legend-high').innerText()).toBe('+2');
    expect(await page.locator('#probe-legend-low').innerText()).toBe('-2');
    const colours = (await page.evaluate(`(() => {
      const g = document.getElementById('probe-map-estimate').getContext('2d');
      const at = (row, column) => Array.from(g.getImageData(column * 8 + 4, row * 8 + 4, 1, 1).data.slice(0, 3));
      return { left: [at(0, 0), at(27, 13), at(14, 3)], right: [at(0, 14), at(27, 27), at(20, 20)] };
    })()`)) as { left: number[][]; right: number[][] };
    for (const c of colours.left) expect(c).toEqual(legendColour(1 / 2));
    for (const c of colours.right) expect(c).toEqual(legendColour(-2 / 2));
    // Pointing at a pixel reads its value, for the estimate and for the exact map beside it.
    await page.locator('#probe-maps').scrollIntoViewIfNeeded();
    const map = (await page.locator('#probe-map-estimate').boundingBox())!;
    await page.mouse.move(map.x + (3.5 * map.width) / 28, map.y + (10.5 * map.height) / 28);
    const left = await page.locator('#probe-map-readout').innerText();
    expect(left).toMatch(/^row 10, column 3: estimate /);
    expect(Number(left.split('estimate ')[1])).toBeCloseTo(1, 6);
    const exact = (await page.locator('#probe-map-exact').boundingBox())!;
    await page.mouse.move(exact.x + (20.5 * exact.width) / 28, exact.y + (5.5 * exact.height) / 28);
    expect(await page.locator('#probe-map-readout').innerText()).toBe('row 5, column 20: exact -2');
    // By keyboard: focus the estimate and move the cursor from the centre (14, 14) to (12, 11).
    await page.focus('#probe-map-estimate');
    for (const key of ['ArrowUp', 'ArrowUp', 'ArrowLeft', 'ArrowLeft', 'ArrowLeft']) await page.keyboard.press(key);
    const keyed = await page.locator('#probe-map-readout').innerText();
    expect(keyed).toMatch(/^row 12, column 11: estimate /);
    expect(Number(keyed.split('estimate ')[1])).toBeCloseTo(1, 6);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-heatmap.png') });
  }, 60_000);

  it("shows the service's own PNG of the map beside the one drawn in the page", async () => {
    await useDemoTarget('sum(x[:, :14]) - 2 * sum(x[:, 14:])', 'image');
    await page.click('#probe-sample');
    await page.selectOption('#probe-method', 'central');
    await page.fill('#probe-patch', '1');
    await page.fill('#probe-budget', '');
    await page.check('#probe-png');
    const sent = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/jobs');
    await probe();
    await page.uncheck('#probe-png');
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    expect(((await sent).postDataJSON() as { request: Record<string, unknown> }).request).toMatchObject({ format: 'png', image: { shape: [28, 28] } });
    // The gradient is +1 left, −2 right: a diverging bar from −2 to 2.
    expect(await page.locator('#probe-map-png-caption').innerText()).toBe("the service's PNG (diverging, -2 to 2)");
    const src = (await page.locator('#probe-map-png').getAttribute('src'))!;
    expect(src.startsWith('data:image/png;base64,')).toBe(true);
    const picture = PNG.sync.read(Buffer.from(src.slice('data:image/png;base64,'.length), 'base64'));
    await expect.poll(() => page.evaluate("document.getElementById('probe-map-png').naturalWidth")).toBe(picture.width);
    // The picture's map is the image enlarged by a whole factor (the bar and its numbers under it): a left pixel reads red, a right one blue.
    const zoom = Math.floor(picture.width / 28);
    const rgb = (row: number, column: number) => {
      const at = ((row * zoom + (zoom >> 1)) * picture.width + column * zoom + (zoom >> 1)) * 4;
      return [picture.data[at]!, picture.data[at + 1]!, picture.data[at + 2]!];
    };
    for (const [row, column] of [[0, 0], [27, 13]] as const) expect(rgb(row, column)[0]).toBeGreaterThan(rgb(row, column)[2]!);
    for (const [row, column] of [[0, 14], [27, 27]] as const) expect(rgb(row, column)[2]).toBeGreaterThan(rgb(row, column)[0]!);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-png.png') });
  }, 60_000);

  it('clears the pixel readout and the picture with each new answer', async () => {
    await useDemoTarget('sum(x[:, :14]) - 2 * sum(x[:, 14:])', 'image');
    await page.click('#probe-sample');
    await page.selectOption('#probe-method', 'central');
    await page.fill('#probe-patch', '1');
    await page.fill('#probe-budget', '');
    await page.check('#probe-png');
    await probe();
    await page.uncheck('#probe-png');
    const prompt = /^Point at a map/;
    expect(await page.locator('#probe-map-readout').innerText()).toMatch(prompt);
    await page.locator('#probe-maps').scrollIntoViewIfNeeded();
    const map = (await page.locator('#probe-map-estimate').boundingBox())!;
    await page.mouse.move(map.x + (3.5 * map.width) / 28, map.y + (10.5 * map.height) / 28);
    expect(await page.locator('#probe-map-readout').innerText()).toMatch(/^row 10, column 3: estimate 1/);
    await page.mouse.move(0, 0);
    // Another function: the old value is not left standing under the new maps, nor the old PNG beside them.
    await page.fill('#probe-expr', 'sum(x[:, :14]) - 3 * sum(x[:, 14:])');
    await probe();
    expect(await page.locator('#probe-map-readout').innerText()).toMatch(prompt);
    expect(await page.locator('#probe-map-png-figure').isHidden()).toBe(true);
    expect(await page.locator('#probe-legend-low').innerText()).toBe('-3');
    // The keyboard reads the new values (the right half is −3 now, −2 before).
    await page.focus('#probe-map-estimate');
    for (let i = 0; i < 28; i++) await page.keyboard.press('ArrowRight');
    expect(await page.locator('#probe-map-readout').innerText()).toMatch(/^row \d+, column 27: estimate -3$/);
  }, 60_000);

  it('shows every demo’s whole name in the demo menu (nothing clipped) and says what it shows under it', async () => {
    const fits = (await page.evaluate(`(() => {
      const select = document.getElementById('probe-demo');
      const style = getComputedStyle(select);
      const g = document.createElement('canvas').getContext('2d');
      g.font = style.font;
      // The text's room: the box less its padding and the arrow (about 24 px).
      const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 24;
      return [...select.options].map((o) => [o.text, g.measureText(o.text).width, room]);
    })()`)) as [string, number, number][];
    expect(fits.length).toBeGreaterThan(3);
    for (const [text, width, room] of fits) expect(width, text).toBeLessThanOrEqual(room);
    await page.selectOption('#probe-demo', '2');
    expect(await page.locator('#probe-demo-note').innerText()).toContain('sum(x[7:21, 7:21]^2)');
    await page.selectOption('#probe-demo', '0');
    expect(await page.locator('#probe-demo-note').innerText()).toContain('gradient is w');
  }, 60_000);

  it('shows patch occlusion of a drawn digit as the closed-form drop of each patch', async () => {
    // f = sum(w * x) with w = +1 on the left half, −2 on the right: blanking a patch P (zero
    // baseline) drops f by Σ_{i∈P} w_i·x_i, and 4×4 patches tile the 28×28 image (49 groups).
    await useDemoTarget('sum(x[:, :14]) - 2 * sum(x[:, 14:])', 'image');
    await page.click('#probe-sample');
    await page.selectOption('#probe-method', 'occlusion');
    await page.fill('#probe-patch', '4');
    await page.selectOption('#probe-baseline', 'zero');
    const sent = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/jobs');
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    const request = (await sent).postDataJSON() as { request: { at: number[][]; image: unknown } };
    expect(request.request.image).toEqual({ shape: [28, 28], patch: [4, 4], baseline: 'zero' });
    const x = request.request.at;
    const weight = (column: number) => (column < 14 ? 1 : -2);
    const drop = (row: number, column: number) => {
      let sum = 0;
      for (let r = row - (row % 4); r < row - (row % 4) + 4; r++) for (let c = column - (column % 4); c < column - (column % 4) + 4; c++) sum += weight(c) * x[r]![c]!;
      return sum;
    };
    expect(await page.locator('#probe-summary').innerText()).toContain(`${49 + 1} queries spent`);
    expect(await page.locator('#probe-summary').innerText()).toContain('49 groups');
    const drops = Array.from({ length: 28 * 28 }, (_, p) => drop(Math.floor(p / 28), p % 28));
    const scale = Math.max(...drops.map(Math.abs));
    expect(Number((await page.locator('#probe-legend-high').innerText()).slice(1))).toBeCloseTo(scale, 2);
    // Every pixel's colour is its patch's drop on the legend's scale (no exact map for occlusion).
    const colours = (await page.evaluate(`(() => {
      const g = document.getElementById('probe-map-estimate').getContext('2d');
      const out = [];
      for (let p = 0; p < 784; p++) out.push(Array.from(g.getImageData((p % 28) * 8 + 4, Math.floor(p / 28) * 8 + 4, 1, 1).data.slice(0, 3)));
      return out;
    })()`)) as number[][];
    // (Within one level per channel: the drops are measured in float64, a rounding apart from the sums here.)
    drops.forEach((d, p) => legendColour(d / scale).forEach((c, k) => expect(Math.abs(colours[p]![k]! - c), `pixel ${p}`).toBeLessThanOrEqual(1)));
    expect(await page.locator('#probe-map-exact-figure').isHidden()).toBe(true);
    await page.locator('#probe-maps').scrollIntoViewIfNeeded();
    const map = (await page.locator('#probe-map-estimate').boundingBox())!;
    await page.mouse.move(map.x + (17.5 * map.width) / 28, map.y + (9.5 * map.height) / 28);
    const readout = await page.locator('#probe-map-readout').innerText();
    expect(readout).toMatch(/^row 9, column 17: score /);
    expect(Number(readout.split('score ')[1])).toBeCloseTo(drop(9, 17), 5);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-occlusion.png') });
  }, 60_000);

  it('draws random directions at low resolution on an image, as asked, and shows how close they came', async () => {
    // ∂f/∂pixel is +1 on the left half and −2 on the right: constant on each 7×7 cell, so it lies in
    // the span of the 16 low-resolution directions, which a time prior (Kaczmarz) recovers.
    await useDemoTarget('sum(x[:, :14]) - 2 * sum(x[:, 14:])', 'image');
    await page.click('#probe-sample');
    await page.selectOption('#probe-method', 'spsa');
    expect(await page.locator('#probe-basis-row').isVisible()).toBe(true);
    expect(await page.locator('#probe-patch-row').isVisible()).toBe(false);
    await page.selectOption('#probe-basis', 'lowres');
    expect(await page.locator('#probe-patch-row').isVisible()).toBe(true);
    await page.fill('#probe-patch', '7');
    await page.selectOption('#probe-prior', 'time');
    await page.fill('#probe-budget', '201');
    const sent = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/jobs');
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    const request = ((await sent).postDataJSON() as { request: Record<string, unknown> }).request;
    expect(request).toMatchObject({ method: 'spsa', basis: 'lowres', prior: 'time', budget: 201, image: { shape: [28, 28], patch: [7, 7] } });
    const summary = await page.locator('#probe-summary').innerText();
    expect(summary).toContain('lowres basis of 16');
    expect(summary).toContain('time prior');
    expect(Number(/cosine to the exact gradient ([\d.]+)/.exec(summary)![1])).toBeGreaterThan(0.99);
    // The estimate's map: the left half red, the right half blue, as the exact map beside it.
    const colours = (await page.evaluate(`(() => {
      const g = document.getElementById('probe-map-estimate').getContext('2d');
      return [3, 10, 17, 24].map((column) => Array.from(g.getImageData(column * 8 + 4, 14 * 8 + 4, 1, 1).data.slice(0, 3)));
    })()`)) as number[][];
    for (const [i, c] of colours.entries()) {
      const [r, , b] = c as [number, number, number];
      if (i < 2) expect(r).toBeGreaterThan(b);
      else expect(b).toBeGreaterThan(r);
    }
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-lowres.png') });
  }, 60_000);

  it("shows the MNIST demo model's saliency map, estimated over HTTP, as its exact gradient", async () => {
    await page.check('input[name="probe-target"][value="url"]');
    await page.click('#probe-mnist');
    expect(await page.locator('#probe-body').inputValue()).toBe('{"image": "$input"}');
    expect(await page.locator('#probe-pointer').inputValue()).toBe('/logits');
    expect(await page.locator('#probe-output').inputValue()).toBe('7');
    await page.fill('#probe-url', mnist.url); // the test's model listens on a free port, not 8081
    await page.click('#probe-sample');
    await page.selectOption('#probe-method', 'central');
    await page.fill('#probe-patch', '1');
    await page.fill('#probe-budget', '');
    const sent = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/jobs');
    const before = mnist.predictions;
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    expect(mnist.predictions - before).toBe(2 * 784 + 1);
    const x = ((await sent).postDataJSON() as { request: { at: number[][] } }).request.at.flat();
    // The saliency map by reverse mode through the demo network's weights: what the prober estimates.
    const exact = exactSaliency(x, 7);
    const scale = Math.max(...exact.map(Math.abs));
    expect(Number((await page.locator('#probe-legend-high').innerText()).slice(1))).toBeCloseTo(scale, 2);
    const colours = (await page.evaluate(`(() => {
      const g = document.getElementById('probe-map-estimate').getContext('2d');
      const out = [];
      for (let p = 0; p < 784; p++) out.push(Array.from(g.getImageData((p % 28) * 8 + 4, Math.floor(p / 28) * 8 + 4, 1, 1).data.slice(0, 3)));
      return out;
    })()`)) as number[][];
    // Central differences with a 1e-2 step on a tanh network: within a few colour levels of the exact map.
    let worst = 0;
    exact.forEach((g, p) => legendColour(g / scale).forEach((c, k) => (worst = Math.max(worst, Math.abs(colours[p]![k]! - c)))));
    expect(worst).toBeLessThanOrEqual(3);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-mnist.png') });
  }, 120_000);

  it('chooses the step from the output noise it measured, and says which', async () => {
    await useUrlTarget(noisyModel.url, ['unused']);
    await page.check('input[name="probe-input"][value="vector"]');
    await page.fill('#probe-vector', '[1, 2, 3]');
    await page.selectOption('#probe-method', 'central');
    expect(await page.locator('#probe-noise-row').isVisible()).toBe(true);
    await page.fill('#probe-repeats', '10');
    await page.fill('#probe-budget', '');
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    const summary = await page.locator('#probe-summary').innerText();
    // Ten answers alternating ±NOISE: a standard deviation of NOISE·√(10/9) (n − 1) or NOISE (n).
    const sigma = Number(/output noise σ = ([\d.e+-]+) from 10 repeats/.exec(summary)![1]);
    expect(sigma).toBeGreaterThanOrEqual(NOISE * 0.999);
    expect(sigma).toBeLessThanOrEqual(NOISE * Math.sqrt(10 / 9) * 1.001);
    // Central differences take the step (3σ/curvature)^(1/3), curvature 1 by default.
    const epsilon = Number(/step ε = ([\d.e+-]+)/.exec(summary)![1]);
    expect(epsilon).toBeCloseTo(Math.cbrt(3 * sigma), 3);
    // The bars: the weights, up to the noise over the step.
    const rows = page.locator('#probe-bars tbody tr');
    for (let i = 0; i < LINEAR_WEIGHTS.length; i++) {
      expect(Math.abs(Number(await rows.nth(i).locator('td').nth(1).innerText()) - LINEAR_WEIGHTS[i]!)).toBeLessThan(1e-3);
    }
    await page.fill('#probe-repeats', '');
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-noise.png') });
  }, 60_000);

  it('highlights the words of a sentence by their occlusion scores on a model at an allowed URL', async () => {
    const tokens = ['this', 'film', 'is', 'not', 'good', 'but', 'never', 'dull', ',', 'wonderful'];
    await useUrlTarget(model.url, tokens);
    await page.selectOption('#probe-method', 'occlusion');
    await page.fill('#probe-budget', '');
    const before = model.requests;
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    // m + 1 queries: the sentence, then each word left out once.
    expect(model.requests - before).toBe(tokens.length + 1);
    expect(await page.locator('#probe-summary').innerText()).toContain(`${tokens.length + 1} queries spent`);
    const words = page.locator('#probe-sentence mark.word');
    expect(await words.count()).toBe(tokens.length);
    const scale = Math.max(...tokens.map((t) => Math.abs(WORD_WEIGHTS[t] ?? 0)));
    for (let i = 0; i < tokens.length; i++) {
      const word = words.nth(i);
      // Leaving a word out of an additive scorer drops the logit by exactly its weight.
      const weight = WORD_WEIGHTS[tokens[i]!] ?? 0;
      expect(Number(await word.getAttribute('data-score'))).toBeCloseTo(weight, 12);
      expect(await word.getAttribute('title')).toContain(tokens[i]!);
      const [r, g, b] = legendColour(weight / scale);
      expect(await word.getAttribute('style')).toBe(`background-color: rgb(${r}, ${g}, ${b});`);
    }
    expect(await page.locator('#probe-legend-high').innerText()).toBe(`+${scale}`);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-words.png') });
  }, 60_000);

  it("shows a sentence's Shapley values, which for an additive scorer are the words' weights, with the efficiency check", async () => {
    const tokens = ['not', 'a', 'good', 'film', 'but', 'wonderful'];
    await useUrlTarget(model.url, tokens);
    await page.selectOption('#probe-method', 'shapley');
    expect(await page.locator('#probe-samples-row').isVisible()).toBe(true);
    await page.fill('#probe-samples', '8');
    await page.fill('#probe-budget', '');
    await probe();
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    // Every word adds its weight whatever comes before it: each marginal contribution, and so the mean, is the weight.
    const words = page.locator('#probe-sentence mark.word');
    expect(await words.count()).toBe(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      expect(Number(await words.nth(i).getAttribute('data-score'))).toBeCloseTo(WORD_WEIGHTS[tokens[i]!] ?? 0, 12);
    }
    const summary = await page.locator('#probe-summary').innerText();
    expect(summary).toContain('8 permutations');
    // The scores add up to f(all) − f(none) = Σ weights − 0.
    const total = sentenceLogit(tokens);
    expect(summary).toContain(`the scores add up to ${total}; f(all) − f(none) = ${total} − 0 = ${total}`);
    // The table of numbers: each word's score, and a standard error of 0 (every permutation agrees).
    await page.locator('#probe-words summary').click();
    const rows = page.locator('#probe-word-table tbody tr');
    expect(await rows.count()).toBe(tokens.length);
    expect(await rows.nth(2).innerText()).toMatch(/^good\s+2\s+0$/);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-shapley.png') });
  }, 60_000);

  it('shows the progress of the probe run as a job, and cancels it', async () => {
    const tokens = ['not', 'good', 'dull', 'film', 'and', 'wonderful', 'is', 'it'];
    await useUrlTarget(slowModel.url, tokens);
    await page.selectOption('#probe-method', 'occlusion');
    await page.click('#probe-run');
    const bar = page.locator('#probe-progress');
    await bar.waitFor({ state: 'visible' });
    // The job says how far it is: queries done of the m + 1 planned, as the bar's value and in words.
    await expect.poll(async () => Number(await bar.getAttribute('value')), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(Number(await bar.getAttribute('max'))).toBe(tokens.length + 1);
    expect(await page.locator('#probe-status').innerText()).toMatch(new RegExp(`^running: \\d+ of ${tokens.length + 1} · \\d+ queries sent · \\d+\\.\\d s$`));
    await page.waitForSelector('body[data-probe="done"]');
    expect(await bar.isHidden()).toBe(true);
    expect(await page.locator('#probe-status').innerText()).toMatch(/^done in \d+\.\d s$/);
    expect(await page.locator('#probe-sentence mark.word').count()).toBe(tokens.length);

    // A new run hides the last answer at once: no old sentence under the new run's progress bar.
    await page.fill('#probe-text', [...tokens, ...tokens, ...tokens].join(' '));
    await page.click('#probe-run');
    expect(await page.locator('#probe-result').isHidden()).toBe(true);
    expect(await page.locator('#probe-progress').isVisible()).toBe(true);
    // Cancel: the job stops and its queries with it; that is no error, a neutral status says so.
    await page.locator('#probe-cancel').click();
    await page.waitForSelector('body[data-probe="done"]');
    expect(await page.locator('#probe-error').isHidden()).toBe(true);
    expect(await page.locator('#probe-status').innerText()).toMatch(/^cancelled after \d+ queries · \d+\.\d s$/);
    expect(await page.locator('#probe-status').getAttribute('class')).toContain('cancelled');
    expect(await page.locator('#probe-result').isHidden()).toBe(true);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-cancelled.png') });
    const sent = slowModel.requests;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(slowModel.requests - sent).toBeLessThanOrEqual(4); // at most the queries already in flight
  }, 60_000);

  it('falls back to one POST /probe with an indeterminate bar and the time elapsed where there are no jobs', async () => {
    await page.route('**/jobs', (route) => route.fulfill({ status: 404, contentType: 'application/problem+json', body: '{"status":404,"code":"not_found"}' }));
    try {
      await useUrlTarget(slowModel.url, ['not', 'good']);
      await page.selectOption('#probe-method', 'occlusion');
      await page.click('#probe-run');
      const bar = page.locator('#probe-progress');
      await bar.waitFor({ state: 'visible' });
      expect(await bar.getAttribute('value')).toBeNull();
      await expect.poll(() => page.locator('#probe-status').innerText()).toMatch(/^running… \d+\.\d s$/);
      await page.waitForSelector('body[data-probe="done"]');
      expect(await page.locator('#probe-sentence mark.word').count()).toBe(2);
      expect(Number(await page.locator('#probe-sentence mark.word').first().getAttribute('data-score'))).toBeCloseTo(WORD_WEIGHTS.not!, 12);
      // Cancel hangs up, which stops the probe on the server: no queries after the ones in flight.
      await useUrlTarget(slowModel.url, Array.from({ length: 30 }, (_, i) => `w${i}`));
      await page.click('#probe-run');
      await page.locator('#probe-cancel').click();
      await page.waitForSelector('body[data-probe="done"]');
      expect(await page.locator('#probe-error').isHidden()).toBe(true);
      expect(await page.locator('#probe-status').innerText()).toMatch(/^cancelled · \d+\.\d s$/);
      const sent = slowModel.requests;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(slowModel.requests - sent).toBeLessThanOrEqual(4);
    } finally {
      await page.unroute('**/jobs');
    }
  }, 60_000);

  it('says what fits when the budget is too small (422), and puts the cursor on the budget', async () => {
    await useDemoTarget('sum(x)', 'vector');
    await page.fill('#probe-vector', '[1, 2, 3]');
    await page.selectOption('#probe-method', 'central');
    await page.fill('#probe-budget', '3');
    await probe();
    await page.waitForSelector('#probe-error:not([hidden])');
    expect(await page.locator('#probe-error-title').innerText()).toBe('422 Limit exceeded (limit_exceeded)');
    // Central differences on 3 coordinates need 2·3 + 1 = 7 queries; the message says so once.
    const message = await page.locator('#probe-error-message').innerText();
    expect(message).toContain('need 7 queries, more than the budget of 3');
    expect(message.split('need 7 queries').length).toBe(2);
    expect(await page.locator('#probe-error-hint').innerText()).toContain('change what the message names');
    expect(await page.evaluate('document.activeElement.id')).toBe('probe-budget');
    await page.fill('#probe-budget', '');
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-422.png') });
  }, 60_000);

  it('says what to do when the URL is not an allowed origin (403)', async () => {
    await useUrlTarget('http://127.0.0.1:9/predict', ['not', 'good']);
    await probe();
    await page.waitForSelector('#probe-error:not([hidden])');
    expect(await page.locator('#probe-error-title').innerText()).toContain('403');
    expect(await page.locator('#probe-error-title').innerText()).toContain('probe_target_forbidden');
    expect(await page.locator('#probe-error-hint').innerText()).toContain('PROBE_ALLOWED_ORIGINS');
    expect(await page.locator('#probe-error-hint').innerText()).toContain('http://127.0.0.1:9');
    expect(await page.locator('#probe-result').isHidden()).toBe(true);
    await page.locator('#probing').screenshot({ path: join(SCRATCH, 'probe-403.png') });
    expect(browser.problems).toEqual([]);
  }, 60_000);
});
