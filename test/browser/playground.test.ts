// The playground page in a real headless browser (Debian's chromium, driven by playwright-core):
// a person types the lecture's f and a point, and sees the gradient and the graph picture; a
// syntax error is shown at its line and column. Skipped only where /usr/bin/chromium is absent
// (.ci/run installs it).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`browser tests skipped: ${CHROMIUM} is absent (apt-get install -y chromium; .ci/run does this)`);

describe.skipIf(!hasChromium)(`the playground in chromium (skipped when ${CHROMIUM} is absent)`, () => {
  let app: App;
  let base: string;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    app = buildTestApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    profile = mkdtempSync(join(tmpdir(), 'adjoint-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // A blocked script or style (the page's content security policy) shows up here.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('status of 4')) problems.push(`console: ${m.text()}`);
    });
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-state="done"]');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
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
    await page.screenshot({ path: join(profile, 'playground.png'), fullPage: true });
    expect(problems).toEqual([]);
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
