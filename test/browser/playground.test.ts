// The playground page in a real headless browser (Debian's chromium, driven by playwright-core):
// a person types the lecture's f and a point, and sees the gradient and the graph picture; a
// syntax error is shown at its line and column. Skipped only where /usr/bin/chromium is absent
// (.ci/run installs it).

import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { CHROMIUM, hasChromium, openBrowser, SCRATCH, type Browser } from './chromium.js';

describe.skipIf(!hasChromium)(`the playground in chromium (skipped when ${CHROMIUM} is absent)`, () => {
  let app: App;
  let base: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    app = buildTestApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await openBrowser();
    page = browser.page;
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-state="done"]');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function differentiate(expr: string, at: string): Promise<void> {
    await page.fill('#expr', '');
    await page.locator('#expr').pressSequentially(expr);
    await page.fill('#at', at);
    await page.evaluate('document.body.dataset.state = "typed"');
    await page.click('#run');
    await page.waitForSelector('body[data-state="done"]');
  }

  it("shows the gradient of the lecture's f and the graph as SVG", async () => {
    await differentiate('sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', '{"x": 0.7}');
    await expect.poll(() => page.locator('#gradient').innerText()).toContain('-1.87400170496');
    const u = 0.49 + Math.exp(0.49);
    expect(await page.locator('#value').innerText()).toContain(String(Math.sqrt(u) + Math.cos(u)).slice(0, 10));
    const svg = page.locator('#graph svg');
    expect(await svg.count()).toBe(1);
    expect(await page.locator('#graph svg g.node.input').count()).toBe(1);
    expect(await page.locator('#graph svg g.node.output').count()).toBe(1);
    // Both tables: the output row's tangent (seed 1 on x) is the derivative too; x's adjoint is the gradient.
    expect(await page.locator('#forward-table tbody tr').count()).toBeGreaterThan(5);
    expect(await page.locator('#reverse-table tbody tr').last().innerText()).toContain('-1.874');
    expect(await page.locator('#error').isHidden()).toBe(true);
    await page.screenshot({ path: join(SCRATCH, 'playground.png'), fullPage: true });
    expect(browser.problems).toEqual([]);
  }, 60_000);

  it('keeps wide values inside the forward and reverse tables at 1400 px', async () => {
    await page.setViewportSize({ width: 1400, height: 900 });
    const at = {
      W: [[1.123456789, 2.123456789, 3.123456789], [4.123456789, 5.123456789, 6.987654321], [7.5, -8.25, 9.125]],
      x: [0.1234567, 0.2345678, 0.3456789],
      b: [1.111111, 2.222222, 3.333333],
    };
    await differentiate('W @ x + b', JSON.stringify(at));
    for (const id of ['forward-table', 'reverse-table']) {
      // Every cell's box lies inside its card's content box: nothing clipped, nothing to scroll to.
      const boxes = (await page.evaluate(`(() => {
        const table = document.getElementById('${id}');
        const scroll = table.parentElement;
        const card = table.closest('.card').getBoundingClientRect();
        const cells = [...table.querySelectorAll('th, td')].map((c) => c.getBoundingClientRect());
        return { left: card.left, right: card.right, scrollWidth: scroll.scrollWidth, clientWidth: scroll.clientWidth, cells: cells.map((c) => [c.left, c.right]) };
      })()`)) as { left: number; right: number; scrollWidth: number; clientWidth: number; cells: [number, number][] };
      expect(boxes.cells.length).toBeGreaterThan(10);
      expect(boxes.scrollWidth).toBeLessThanOrEqual(boxes.clientWidth);
      for (const [left, right] of boxes.cells) {
        expect(left).toBeGreaterThanOrEqual(boxes.left);
        expect(right).toBeLessThanOrEqual(boxes.right);
      }
    }
    // The reverse table's W row shows its whole adjoint: with a cotangent of ones, d(W @ x)ᵀ1 / dW = 1 xᵀ, x in every row.
    const adjointW = await page.locator('#reverse-table tbody tr').last().locator('td').last().innerText();
    const row = `[${at.x.map((v) => Number(v.toPrecision(6))).join(', ')}]`;
    expect(adjointW.replace(/\s+/g, ' ')).toBe(`[${[row, row, row].join(', ')}]`);
    await page.screenshot({ path: join(SCRATCH, 'playground-tables-1400.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 60_000);

  it('fits wide graphs into their box, and zooms (wheel, buttons) and pans (drag) them by their viewBox', async () => {
    const viewBox = async () => (await page.locator('#graph svg').getAttribute('viewBox'))!.split(' ').map(Number);
    /** The SVG's box, its container's, and the drawn graph's (Graphviz's g.graph) on the page. */
    const boxes = async () =>
      (await page.evaluate(`(() => {
        const rect = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
        const box = document.getElementById('graph');
        const svg = box.querySelector('svg');
        return { box: box.clientWidth, scroll: box.scrollWidth, svg: rect(svg), graph: rect(svg.querySelector('g.graph')) };
      })()`)) as { box: number; scroll: number; svg: number[]; graph: number[] };
    const cases: [string, string, string][] = [
      // Question 2: a GP's log-likelihood over two lengthscales (wider than the card at Graphviz's size).
      ['question2', 'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\nK1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\ny.T @ inv(K1 + K2) @ y', JSON.stringify({ X: [[0, 1], [1, 0.5], [0.3, 0.2]], y: [1, 2, 3], l: [1, 2] })],
      ['gp', 'y.T @ inv(K1 + K2) @ y', JSON.stringify({ y: [1, 2], K1: [[2, 0.5], [0.5, 2]], K2: [[1, 0], [0, 1]] })],
      ['lecture', 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; sqrt(x3) + cos(x3)', '{"x": 0.7}'],
    ];
    for (const [name, expr, at] of cases) {
      await page.fill('#expr', expr);
      await page.fill('#at', at);
      await page.evaluate('document.body.dataset.state = "typed"');
      await page.click('#run');
      await page.waitForSelector('body[data-state="done"]');
      const fitted = await boxes();
      // The picture is no wider than its box, nothing to scroll to, and the whole graph is inside it.
      expect(fitted.svg[2]! - fitted.svg[0]!, name).toBeLessThanOrEqual(fitted.box + 0.5);
      expect(fitted.scroll, name).toBeLessThanOrEqual(fitted.box);
      expect(fitted.graph[0]!, name).toBeGreaterThanOrEqual(fitted.svg[0]! - 0.5);
      expect(fitted.graph[2]!, name).toBeLessThanOrEqual(fitted.svg[2]! + 0.5);
      expect(fitted.graph[1]!, name).toBeGreaterThanOrEqual(fitted.svg[1]! - 0.5);
      expect(fitted.graph[3]!, name).toBeLessThanOrEqual(fitted.svg[3]! + 0.5);
      await page.locator('#graph').screenshot({ path: join(SCRATCH, `playground-graph-${name}.png`) });
    }
    // Question 2 at Graphviz's own size is wider than the card: fitting it shrank it.
    await page.fill('#expr', cases[0]![1]);
    await page.fill('#at', cases[0]![2]);
    await page.evaluate('document.body.dataset.state = "typed"');
    await page.click('#run');
    await page.waitForSelector('body[data-state="done"]');
    const fitted = await viewBox();
    const wide = (await page.request.post(`${base}/graph`, { data: { expr: cases[0]![1], at: JSON.parse(cases[0]![2]), format: 'svg' } })).text();
    const points = Number(/viewBox="[\d.-]+ [\d.-]+ ([\d.]+)/.exec(await wide)![1]);
    expect((points * 4) / 3).toBeGreaterThan((await boxes()).box);
    // The wheel zooms in at the pointer: a narrower view, the point under the pointer kept.
    await page.locator('#graph svg').scrollIntoViewIfNeeded();
    const svg = (await page.locator('#graph svg').boundingBox())!;
    await page.mouse.move(svg.x + svg.width / 4, svg.y + svg.height / 2);
    await page.mouse.wheel(0, -300);
    await expect.poll(async () => (await viewBox())[2]!).toBeLessThan(fitted[2]! * 0.5);
    const zoomed = await viewBox();
    // Dragging pans: 100 px to the right moves the view left by 100 px in the view's units.
    await page.mouse.down();
    await page.mouse.move(svg.x + svg.width / 4 + 100, svg.y + svg.height / 2, { steps: 5 });
    await page.mouse.up();
    const panned = await viewBox();
    expect(panned[2]).toBeCloseTo(zoomed[2]!, 6);
    expect(zoomed[0]! - panned[0]!).toBeCloseTo((100 * zoomed[2]!) / svg.width, 0);
    // "fit" shows the whole graph again; "+" and "−" zoom about the centre.
    await page.getByRole('button', { name: 'Zoom to fit the whole graph' }).click();
    expect(await viewBox()).toEqual(fitted);
    await page.getByRole('button', { name: 'Zoom in' }).click();
    expect((await viewBox())[2]).toBeCloseTo(fitted[2]! / 1.25, 6);
    await page.getByRole('button', { name: 'Zoom out' }).click();
    expect((await viewBox())[2]).toBeCloseTo(fitted[2]!, 6);
    expect(browser.problems).toEqual([]);
  }, 60_000);

  it('shows "Custom" in the Example menu once the code is no longer the example', async () => {
    await page.evaluate('document.body.dataset.state = "typed"');
    await page.selectOption('#example', '1');
    await page.waitForSelector('body[data-state="done"]');
    expect(await page.locator('#example option:checked').innerText()).toContain('Lecture 5.3');
    // Typing one character into the function makes it someone's own code.
    await page.locator('#expr').press('Control+End');
    await page.locator('#expr').pressSequentially(' + 0');
    expect(await page.locator('#example').inputValue()).toBe('custom');
    expect(await page.locator('#example option:checked').innerText()).toContain('Custom');
    // Undoing the edit makes it the example again; so does an equal point written differently.
    await page.locator('#expr').press('Backspace');
    await page.locator('#expr').press('Backspace');
    await page.locator('#expr').press('Backspace');
    await page.locator('#expr').press('Backspace');
    expect(await page.locator('#example').inputValue()).toBe('1');
    await page.fill('#at', '{ "x": 0.7 }');
    expect(await page.locator('#example').inputValue()).toBe('1');
    // Replacing the whole code (as a paste does) shows "Custom" too.
    await page.fill('#expr', 'x^3');
    expect(await page.locator('#example').inputValue()).toBe('custom');
    // Picking an example again loads it and names it.
    await page.evaluate('document.body.dataset.state = "typed"');
    await page.selectOption('#example', '0');
    await page.waitForSelector('body[data-state="done"]');
    expect(await page.locator('#expr').inputValue()).toContain('x1 = W0 * x');
    expect(await page.locator('#example option:checked').innerText()).toContain('Lecture 5.1');
  }, 60_000);

  it('shows a syntax error at its line and column', async () => {
    await differentiate('x1 = x^2\nx2 = sqrt(x1 +* 2)\nx2', '{"x": 0.7}');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.locator('#error-title').innerText()).toContain('does not parse');
    expect(await page.locator('#error-position').innerText()).toBe('at line 2, column 15');
    expect(await page.locator('#error-excerpt mark').innerText()).toBe('*');
    expect(await page.locator('#results').isHidden()).toBe(true);
    // The cursor is put on the offending character.
    expect(await page.evaluate('[document.activeElement.id, document.activeElement.selectionStart]')).toEqual(['expr', 23]);
  }, 60_000);
});
