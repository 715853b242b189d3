// processors.ts: the changes to raw logits that come before any truncation or draw: logit bias and
// the repetition / presence / frequency penalties, applied in place on the sampler's working copy.
// It does not scale by temperature or truncate the distribution (sampler.ts does).

import type { ResolvedSamplingParams } from "./params.js";

/**
 * Copy logits into `out` (float64), failing on NaN or +Infinity: the model broke, never sample from
 * that. NOTE: -Infinity is allowed (a model or caller may mask tokens that way).
 */
export function copyLogits(logits: ArrayLike<number>, out: Float64Array): void {
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i]!;
    if (Number.isNaN(x) || x === Infinity) {
      throw new Error(`sampler: logits[${i}] is ${x} (vocabulary size ${logits.length}): the model produced invalid output`);
    }
    out[i] = x;
  }
}

/** Add each bias to its token's logit; -Infinity bans the token. */
export function applyLogitBias(x: Float64Array, bias: ReadonlyMap<number, number>): void {
  for (const [id, b] of bias) {
    if (id >= x.length) throw new Error(`sampler: logitBias names token ${id}, outside the vocabulary (size ${x.length})`);
    x[id] = x[id]! + b;
  }
}

/** How often each token occurs in the history. */
function countTokens(history: ArrayLike<number>, vocabSize: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < history.length; i++) {
    const id = history[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`sampler: history[${i}] = ${id} is not a token id of a vocabulary of size ${vocabSize}`);
    }
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/**
 * The penalties over the tokens already seen (the caller chooses the window: prompt and output,
 * or output only). NOTE: the order is llama.cpp's (llama_sampler_penalties): the repetition penalty
 * first (divide a positive logit, multiply a negative one, so a seen token always becomes less
 * likely), then OpenAI's presence and frequency terms: logit -= presence + count * frequency.
 */
export function applyPenalties(x: Float64Array, history: ArrayLike<number>, p: ResolvedSamplingParams): void {
  const { repetitionPenalty: rep, presencePenalty: presence, frequencyPenalty: frequency } = p;
  if (history.length === 0 || (rep === 1 && presence === 0 && frequency === 0)) return;
  for (const [id, count] of countTokens(history, x.length)) {
    let v = x[id]!;
    if (rep !== 1) v = v <= 0 ? v * rep : v / rep;
    x[id] = v - presence - count * frequency;
  }
}
