// Headless Debian chromium, driven by playwright-core, for the playground's browser tests. The
// tests are skipped only where /usr/bin/chromium is absent (.ci/run installs it).

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`browser tests skipped: ${CHROMIUM} is absent (apt-get install -y chromium; .ci/run does this)`);

/** Screenshots are kept here (gitignored) to be looked at. */
export const SCRATCH = join(import.meta.dirname, '../../.scratch');

export interface Browser {
  page: Page;
  /** Page errors and console errors so far (a script or style the page's CSP blocked shows up here). */
  problems: string[];
  close(): Promise<void>;
}

/** A fresh profile and one page; console errors about 4xx answers (which the page expects) are not problems. */
export async function openBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  mkdirSync(SCRATCH, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'adjoint-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
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
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('status of 4')) problems.push(`console: ${m.text()}`);
  });
  return {
    page,
    problems,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
