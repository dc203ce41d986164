// A probe's answer serialised on a worker thread (bytes, no schema) must be the answer the route's
// schema serialises inline, byte for byte: both list each kind's fields in one order.

import { describe, expect, it } from 'vitest';
import { GradientAnswerSchema, OcclusionAnswerSchema, ShapleyAnswerSchema } from '../../routes/probe.js';
import { ANSWER_FIELDS, writeAnswer, type ProbeDraft } from '../../src/probe/answer.js';

describe("a probe answer's fields", () => {
  it('are listed in the order of the answer schemas', () => {
    expect(Object.keys(GradientAnswerSchema.shape)).toEqual(ANSWER_FIELDS.gradient);
    expect(Object.keys(OcclusionAnswerSchema.shape)).toEqual(ANSWER_FIELDS.occlusion);
    expect(Object.keys(ShapleyAnswerSchema.shape)).toEqual(ANSWER_FIELDS.shapley);
  });

  it('are written in that order whatever order the draft holds them in', () => {
    const draft: ProbeDraft = {
      fields: { method: 'central', value: 0.5, epsilon: 1e-6, queries: 5, cosine: 1 },
      maps: { gradient: { shape: [2], data: Float64Array.of(1, 2) }, exact: { shape: [2], data: Float64Array.of(1, 2) } },
      encoding: undefined,
      picture: undefined,
    };
    expect(JSON.stringify(writeAnswer(draft, undefined))).toBe('{"method":"central","value":0.5,"gradient":[1,2],"queries":5,"epsilon":0.000001,"exact":[1,2],"cosine":1}');
  });
});
