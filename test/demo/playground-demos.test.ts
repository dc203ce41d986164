// The playground offers the demo models of `npm run demo:model` where the server is told they are
// (DEMO_MODEL_HOST, DEMO_MODEL_PORT, DEMO_TEXT_PORT: the variables the demo server reads), never
// at an address written into the page's own files.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers.js';

interface Demo {
  url: string;
  origin: string;
  body: string;
  outputPath: string;
  allowed: boolean;
}

async function demosOf(overrides: Parameters<typeof buildTestApp>[0]): Promise<Record<'mnist' | 'text', Demo>> {
  const app = buildTestApp(overrides);
  try {
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    const content = /<meta name="adjoint-demos" content="([^"]*)">/.exec(page.body)?.[1];
    expect(content, 'the page carries the demo models').toBeDefined();
    const decoded = content!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    return JSON.parse(decoded) as Record<'mnist' | 'text', Demo>;
  } finally {
    await app.close();
  }
}

describe("the playground's demo models", () => {
  it('are where the configuration says, and say whether the server may query them', async () => {
    const defaults = await demosOf({});
    expect(defaults.mnist).toEqual({ url: 'http://127.0.0.1:8081/predict', origin: 'http://127.0.0.1:8081', body: '{"image": "$input"}', outputPath: '/logits', allowed: false });
    expect(defaults.text).toMatchObject({ url: 'http://127.0.0.1:8082/sentiment', body: '{"tokens": "$input"}', outputPath: '/logit', allowed: false });
    const moved = await demosOf({ DEMO_MODEL_PORT: 9001, DEMO_TEXT_PORT: 9002, DEMO_MODEL_HOST: 'localhost', PROBE_ALLOWED_ORIGINS: ['http://localhost:9002'] });
    expect(moved.mnist).toMatchObject({ url: 'http://localhost:9001/predict', allowed: false });
    expect(moved.text).toMatchObject({ url: 'http://localhost:9002/sentiment', allowed: true });
  });

  it('are named by no port in the page’s own files', () => {
    for (const name of ['index.html', 'probing.js', 'playground.js']) {
      const text = readFileSync(new URL(`../../src/explain/playground/${name}`, import.meta.url), 'utf8');
      expect(text, name).not.toMatch(/8081|8082/);
    }
  });
});
