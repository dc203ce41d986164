// The text demo model (src/demo/text-model.ts, served by src/demo/model-server.ts): the AFINN-165
// lexicon of the `sentiment` package with negation over a scope, its exact gradient with respect to
// per-word weights, the refusals a prober may meet, and POST /probe pointed at it: occlusion,
// Shapley values and central differences over the weights, each against the model's own numbers.

import Sentiment from 'sentiment';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTextModel, type DemoModel } from '../../src/demo/model-server.js';
import { NEGATION_SCOPE, score, tokenize } from '../../src/demo/text-model.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

const reference = new Sentiment();

describe('the text model', () => {
  it('scores a text without negators as the sentiment package does (the same AFINN-165 lexicon)', () => {
    const texts = ['the acting was superb but the plot was dull', 'Great fun, brilliant cast!', 'a terrible, boring mess', 'nothing to report here', 'I love it'];
    for (const text of texts) {
      const { score: expected, tokens } = reference.analyze(text);
      const scored = score(tokenize(text));
      expect(scored.tokens).toEqual(tokens);
      expect(scored.logit, text).toBe(expected);
    }
    // The comparison means something: most of these texts have a score.
    expect(texts.filter((text) => reference.analyze(text).score !== 0).length).toBeGreaterThanOrEqual(4);
    // Where the negator is right before the word the two agree too.
    expect(score(tokenize('not good')).logit).toBe(reference.analyze('not good').score);
  });

  it(`flips every word among the ${NEGATION_SCOPE} tokens after a negator, where the sentiment package sees only the next one`, () => {
    expect(reference.analyze('not a good film').score).toBeGreaterThan(0);
    const good = reference.analyze('good').score;
    expect(score(tokenize('not a good film')).logit).toBe(-good);
    expect(score(tokenize('never boring')).logit).toBe(-reference.analyze('boring').score);
    // Out of scope: four tokens on, "good" is itself again.
    expect(score(tokenize('not that it was a good film')).logit).toBe(good);
    // Two negators cancel.
    expect(score(tokenize("it isn't not good")).logit).toBe(good);
  });

  it('has, as gradient, the exact derivative of the logit with respect to the weights', () => {
    const tokens = tokenize("it isn't not a good film but never boring and not bad");
    let seed = 7;
    const next = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 1.5 - 0.25;
    for (let trial = 0; trial < 5; trial++) {
      const w = tokens.map(() => next());
      const { gradient, logit, contributions } = score(tokens, w);
      expect(contributions.reduce((a, b) => a + b, 0)).toBeCloseTo(logit, 12);
      const h = 1e-5;
      const fd = w.map((_, i) => (score(tokens, w.with(i, w[i]! + h)).logit - score(tokens, w.with(i, w[i]! - h)).logit) / (2 * h));
      gradient.forEach((g, i) => expect(g).toBeCloseTo(fd[i]!, 6));
      expect(gradient.some((g) => g !== 0)).toBe(true);
    }
  });

  it('gives a weight of 0 the effect of taking the word away', () => {
    const tokens = tokenize('the acting was superb but the plot was dull');
    tokens.forEach((_, i) => {
      const zeroed = score(tokens, tokens.map((__, j) => (j === i ? 0 : 1))).logit;
      expect(zeroed).toBe(score(tokens.toSpliced(i, 1)).logit);
    });
  });
});

async function post(url: string, body: unknown) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, type: response.headers.get('content-type'), body: (await response.json()) as Record<string, unknown> };
}

describe('the text model server', () => {
  let server: DemoModel;
  let app: App;
  beforeAll(async () => {
    server = await startTextModel();
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [server.origin] });
  });
  afterAll(async () => {
    await app.close();
    await server.close();
  });

  it('answers a text or its tokens, with weights if given', async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/sentiment`);
    const text = await post(server.url, { text: 'Not a good film.' });
    expect(text).toMatchObject({ status: 200, body: { ...score(tokenize('not a good film')) } });
    expect(text.body.label).toBe('negative');
    const tokens = await post(server.url, { tokens: ['not', 'a', 'good', 'film'], weights: [0.5, 1, 1, 1] });
    expect(tokens.body).toEqual(score(['not', 'a', 'good', 'film'], [0.5, 1, 1, 1]));
    expect(tokens.body.logit).toBe(0);
    expect((await post(server.url, { tokens: [] })).body).toMatchObject({ logit: 0, label: 'neutral' });
    const examples = (await (await fetch(`${server.origin}/examples`)).json()) as { examples: { text: string; logit: number }[] };
    for (const e of examples.examples) expect(e.logit).toBe(score(tokenize(e.text)).logit);
  });

  it.each([
    ['neither text nor tokens', { words: [] }, 'invalid_body', /exactly one of "text" and "tokens"/],
    ['both', { text: 'a', tokens: ['a'] }, 'invalid_body', /exactly one/],
    ['a text that is no string', { text: 3 }, 'invalid_text', /"text" must be a string, got 3/],
    ['tokens that are a string', { tokens: 'not good' }, 'invalid_tokens', /"tokens" must be an array of strings/],
    ['a token that is a number', { tokens: ['good', 2] }, 'invalid_tokens', /tokens\[1\] must be a string/],
    ['too few weights', { tokens: ['a', 'b'], weights: [1] }, 'invalid_weights', /an array of 2 numbers/],
    ['a weight that is no number', { tokens: ['a', 'b'], weights: [1, 'x'] }, 'invalid_weights', /weights\[1\] must be a finite number/],
    ['a body that is an array', ['good'], 'invalid_body', /JSON object/],
  ])('refuses %s with 400 and what to send', async (_name, body, code, detail) => {
    const answer = await post(server.url, body);
    expect(answer).toMatchObject({ status: 400, type: 'application/problem+json', body: { code } });
    expect(answer.body.detail).toMatch(detail);
  });

  async function probe(request: Record<string, unknown>) {
    const response = await app.inject({ method: 'POST', url: '/probe', payload: request });
    return { status: response.statusCode, answer: response.json() as Record<string, unknown> };
  }

  const words = ['the', 'plot', 'was', 'not', 'good', 'but', 'the', 'acting', 'was', 'superb'];
  const f = (tokens: string[]) => score(tokens).logit;

  it('is explained by occlusion over its words: each score is f(all) − f(without the word)', async () => {
    const { status, answer } = await probe({ target: { url: server.url, body: { tokens: '$input' }, outputPath: '/logit' }, at: words, method: 'occlusion' });
    expect(status).toBe(200);
    expect(answer.queries).toBe(words.length + 1);
    expect(answer.scores).toEqual(words.map((_, i) => f(words) - f(words.toSpliced(i, 1))));
    // "not" matters although it has no valence of its own.
    expect((answer.scores as number[])[3]).toBeLessThan(0);
  });

  it('is explained by Shapley values over its words, which add up to f(all) − f(none)', async () => {
    const { status, answer } = await probe({ target: { url: server.url, body: { tokens: '$input' }, outputPath: '/logit' }, at: words, method: 'shapley', samples: 8 });
    expect(status).toBe(200);
    const scores = answer.scores as number[];
    expect(scores.reduce((a, b) => a + b, 0)).toBeCloseTo(f(words) - f([]), 9);
    // Words without valence and out of every negator's scope add nothing in any ordering.
    for (const i of [0, 1, 2]) expect(scores[i]).toBe(0);
  });

  it('has its gradient with respect to the word weights recovered by central differences', async () => {
    const { status, answer } = await probe({
      target: { url: server.url, body: { tokens: words, weights: '$input' }, outputPath: '/logit' },
      at: words.map(() => 1),
      method: 'central',
    });
    expect(status).toBe(200);
    const exact = score(words).gradient;
    (answer.gradient as number[]).forEach((g, i) => expect(g).toBeCloseTo(exact[i]!, 6));
  });

  it("makes a probe that sends it the wrong body fail with the model's own words", async () => {
    const { status, answer } = await probe({ target: { url: server.url, body: { words: '$input' }, outputPath: '/logit' }, at: words, method: 'occlusion' });
    expect(status).toBe(502);
    expect(answer.detail).toMatch(/HTTP 400.*exactly one of \\"text\\" and \\"tokens\\"/);
  });
});
