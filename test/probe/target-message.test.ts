// A target that refuses the prober's request (a 4xx) says why: the probe's 502 quotes the
// target's own message, bounded and with control characters removed.

import { afterEach, describe, expect, it } from 'vitest';
import { Bench, probeModel, type FakeAnswer } from './fake-model.js';

interface Problem {
  code: string;
  detail: string;
  queries: number;
}

describe("a target's 4xx", () => {
  const bench = new Bench();
  afterEach(() => bench.close());

  async function probeAnswering(reply: FakeAnswer): Promise<{ status: number; answer: Problem }> {
    const { model, app } = await bench.serve(() => reply);
    return probeModel<Problem>(app, model, { at: [1, 2], method: 'central' });
  }

  it("quotes a problem's detail", async () => {
    const detail = 'the body must be an object with "image": 784 numbers';
    const { status, answer } = await probeAnswering({ status: 400, headers: { 'content-type': 'application/problem+json' }, json: { title: 'missing_image', detail } });
    expect(status).toBe(502);
    expect(answer).toMatchObject({ code: 'probe_target_error', queries: 1 });
    expect(answer.detail).toContain('HTTP 400');
    expect(answer.detail).toContain(JSON.stringify(detail));
  });

  it.each([
    ['message', { message: 'tokens must be strings' }, 'tokens must be strings'],
    ['error', { error: 'bad input' }, 'bad input'],
  ])('quotes a JSON body’s %s', async (_field, json, said) => {
    const { answer } = await probeAnswering({ status: 422, json });
    expect(answer.detail).toContain(JSON.stringify(said));
  });

  it('quotes a text body, its control characters dropped and its length bounded', async () => {
    const raw = `line one\r\n\u001b[31mred\u0007 ${'x'.repeat(10_000)}`;
    const { answer } = await probeAnswering({ status: 404, headers: { 'content-type': 'text/plain' }, raw });
    expect(answer.detail).toContain('HTTP 404');
    expect(answer.detail).toContain('"line one [31mred x');
    expect(answer.detail).not.toMatch(/[\u0000-\u001f]/);
    expect(answer.detail.length).toBeLessThan(500);
    expect(answer.detail).toContain('…"');
  });

  it('says only the status when the body is empty, and never quotes a 5xx', async () => {
    const empty = await probeAnswering({ status: 400, raw: '' });
    expect(empty.answer.detail).toMatch(/answered HTTP 400$/);
    await bench.close();
    const failed = await probeAnswering({ status: 500, json: { detail: 'stack trace here' } });
    expect(failed.answer.detail).not.toContain('stack trace');
  });
});
