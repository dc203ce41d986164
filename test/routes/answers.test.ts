// Every answer of answers.cases.ts is byte-for-byte what it was when answers.json was recorded
// (before the request layer was carved out of the engine). Answers over 4000 characters are
// compared by their SHA-256. After a deliberate change of answers, record them again with
// UPDATE_ANSWERS=1 npx vitest run test/routes/answers.test.ts, and say why in the commit.
// (Answers serialised on a worker keep the answer object's key order; inline ones are written by
// the route's response schema, in its order: /check's `ok` comes after `value` inline and later on
// a worker. Both are recorded as they were.)

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers.js';
import { CASES, CONFIGS } from './answers.cases.js';

const file = new URL('../fixtures/answers/answers.json', import.meta.url);
const recorded = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;

function summary(status: number, body: string): string {
  return `${status} ${body.length > 4000 ? `sha256:${createHash('sha256').update(body).digest('hex')}` : body}`;
}

describe('answers stay byte-for-byte the same', () => {
  const answers: Record<string, string> = {};
  for (const { label, config } of CONFIGS) {
    it(`under ${label === 'default' ? 'the default limits' : label === 'workers' ? 'the default limits, on worker threads' : `MAX_LIVE_ELEMENTS=${label}`}`, async () => {
      const app = buildTestApp(config);
      try {
        for (const [name, url, body] of CASES) {
          const res = await app.inject({ method: 'POST', url, payload: body as object });
          const key = `${name} ${label}`;
          answers[key] = summary(res.statusCode, res.body);
          if (!process.env.UPDATE_ANSWERS) expect(answers[key], key).toBe(recorded[key]);
        }
      } finally {
        await app.close();
      }
      if (process.env.UPDATE_ANSWERS && Object.keys(answers).length === CASES.length * CONFIGS.length) {
        writeFileSync(file, JSON.stringify(answers, null, 1) + '\n');
      }
    }, 60_000);
  }
});
