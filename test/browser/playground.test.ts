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
