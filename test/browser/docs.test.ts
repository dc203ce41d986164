// Swagger UI (/docs) in a real headless browser: the page renders every operation under its
// Content-Security-Policy with no violation (its logo's inline style is allowed by hash), and the
// examples it makes from the schemas read sensibly. Skipped only where /usr/bin/chromium is absent.

import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { CHROMIUM, hasChromium, openBrowser, SCRATCH, type Browser } from './chromium.js';

describe.skipIf(!hasChromium)(`/docs in chromium (skipped when ${CHROMIUM} is absent)`, () => {
  let app: App;
  let browser: Browser;
  const violations: string[] = [];

  beforeAll(async () => {
    app = buildTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await openBrowser();
    await browser.page.exposeFunction('reportViolation', (text: string) => violations.push(text));
    await browser.page.addInitScript({
      content: "document.addEventListener('securitypolicyviolation', (e) => window.reportViolation(e.effectiveDirective + ': ' + e.sample + ' (' + e.sourceFile + ':' + e.lineNumber + ')'))",
    });
    await browser.page.goto(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/docs`);
    await browser.page.waitForSelector('.opblock', { timeout: 30_000 });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('renders every operation with no CSP violation and no console error', async () => {
    const operations = await browser.page.locator('.opblock').count();
    expect(operations).toBeGreaterThan(20);
    await browser.page.click('#operations-probing-probe .opblock-summary');
    await browser.page.click('#operations-grading-grade .opblock-summary');
    await browser.page.waitForSelector('#operations-probing-probe .responses-wrapper');
    await browser.page.screenshot({ path: join(SCRATCH, 'docs.png') });
    expect(violations).toEqual([]);
    expect(browser.problems).toEqual([]);
  });

  it('shows examples with sensible numbers (no safe-integer bounds as values)', async () => {
    const probe = await browser.page.locator('#operations-probing-probe').innerText();
    expect(probe).not.toContain('9007199254740991');
    expect(probe).toMatch(/"queries": 5/);
    const grade = await browser.page.locator('#operations-grading-grade').innerText();
    expect(grade).not.toContain('9007199254740991');
  });
});
