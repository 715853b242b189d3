// sampler.ts: choosing the next token from a model's logits on the host: greedy, or temperature then
// top-k, top-p and min-p truncation and a seeded draw, with the log-probabilities of the final
// distribution. It owns the order of the steps and the determinism rules; the parameters are
// params.ts, bias and penalties processors.ts, the random stream rng.ts. Stop conditions are stop.ts.
//
// The steps, in order (Hugging Face's and vLLM's order): logit bias, penalties, then greedy argmax when
// temperature is 0; otherwise divide by temperature, keep the top k, keep the nucleus of mass top_p,
// drop tokens below min_p times the best one's probability, and draw from what is left. The
// log-probabilities are those of that final distribution, or (logprobsMode "raw") of the model's logits.

import type { ResolvedSamplingParams, SamplingParams } from "./params.js";
import { validateSamplingParams } from "./params.js";
import { applyLogitBias, applyPenalties, copyLogits } from "./processors.js";
import { seedKey, uniformAt } from "./rng.js";

export interface TokenLogprob {
  readonly id: number;
  /** Natural log of the token's probability in the final distribution (or the model's, logprobsMode "raw"). */
  readonly logprob: number;
}

export interface SampleResult extends TokenLogprob {
  /** The params.topLogprobs most likely tokens of the final distribution, most likely first. */
  readonly top?: readonly TokenLogprob[];
}

export interface Sampler {
  /** The parameters in force, including the seed (a random one when none was given). */
  readonly params: ResolvedSamplingParams;
  /**
   * Choose a token from logits (vocabSize values); history is the tokens the penalties look at.
   * Call n (from 0) uses draw firstDraw + n of the seed's stream, so a sampler replays exactly.
   */
  sample(logits: ArrayLike<number>, history?: ArrayLike<number>): SampleResult;
  /**
   * The distribution sample() draws from for these logits, as probabilities over the vocabulary (greedy:
   * all mass on the argmax). Draws nothing. Speculative decoding's verifier accepts and resamples with it.
   */
  distribution(logits: ArrayLike<number>, history?: ArrayLike<number>): Float64Array;
  /**
   * distribution() and, for any one id, what sample() reports when it picks it (log-probability, top
   * list), from one pass over the logits. Draws nothing. `describe` is valid until the sampler's next call.
   */
  judge(logits: ArrayLike<number>, history?: ArrayLike<number>): Judged;
}

/** A distribution and the SampleResult of a token chosen from it (Sampler.judge). */
export interface Judged {
  readonly probs: Float64Array;
  describe(id: number): SampleResult;
}

/** The k-th largest of values (k >= 1), by quickselect on a copy. */
function kthLargest(values: Float64Array, k: number): number {
  const a = values.slice();
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target]!;
}

/** The k candidates with the largest logits; ties at the boundary go to the lower ids. Result in id order. */
function keepTopK(x: Float64Array, cands: Int32Array, k: number): Int32Array {
  const vals = new Float64Array(cands.length);
  for (let i = 0; i < cands.length; i++) vals[i] = x[cands[i]!]!;
  const t = kthLargest(vals, k);
  let above = 0;
  for (const id of cands) if (x[id]! > t) above++;
  let ties = k - above;
  const out = new Int32Array(k);
  let n = 0;
  for (const id of cands) {
    const v = x[id]!;
    if (v > t || (v === t && ties-- > 0)) out[n++] = id;
  }
  return out;
}

/** The smallest set of most likely candidates whose probability reaches p (at least one). Result in id order. */
function keepNucleus(x: Float64Array, cands: Int32Array, p: number, max: number): Int32Array {
  let total = 0;
  for (const id of cands) total += Math.exp(x[id]! - max);
  // NOTE: llama2.c's shortcut: a token below (1 - p) / (n - 1) of the mass cannot be in the nucleus
  // (all of them together weigh less than 1 - p), so only the rest is sorted.
  const cutoff = cands.length > 1 ? ((1 - p) / (cands.length - 1)) * total : 0;
  const kept = Array.from(cands).filter((id) => Math.exp(x[id]! - max) >= cutoff);
  kept.sort((a, b) => x[b]! - x[a]! || a - b);
  let cum = 0;
  let n = 0;
  while (n < kept.length) {
    cum += Math.exp(x[kept[n]!]! - max);
    n++;
    if (cum >= p * total) break;
  }
  return Int32Array.from(kept.slice(0, n)).sort();
}

function maxOver(x: Float64Array, cands: Int32Array): number {
  let m = -Infinity;
  for (const id of cands) if (x[id]! > m) m = x[id]!;
  return m;
}

/** log of the sum of exp(x) over the candidates. */
function logSumExp(x: Float64Array, cands: Int32Array, max: number): number {
  let s = 0;
  for (const id of cands) s += Math.exp(x[id]! - max);
  return max + Math.log(s);
}

/** The n candidates with the largest logits (ties: lower id first), as log-probabilities. */
function topLogprobs(x: Float64Array, cands: Int32Array, n: number, logZ: number): TokenLogprob[] {
  const best: number[] = [];
  for (const id of cands) {
    const v = x[id]!;
    if (best.length === n && v <= x[best[n - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && x[best[at - 1]!]! < v) at--;
    best.splice(at, 0, id);
    if (best.length > n) best.pop();
  }
  return best.map((id) => ({ id, logprob: x[id]! - logZ }));
}

/** Every token not banned (logit -Infinity after bias and penalties), in id order. */
function finiteIds(x: Float64Array): Int32Array {
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i]! !== -Infinity) n++;
  const out = new Int32Array(n);
  n = 0;
  for (let i = 0; i < x.length; i++) if (x[i]! !== -Infinity) out[n++] = i;
  return out;
}

/**
 * A sampler for one request: validated parameters (errors name the field) and its own random stream.
 * `firstDraw` resumes a request that has already drawn that many tokens (after a preemption): its
 * first call uses draw `firstDraw` of the stream, which the counter-based stream reaches at no cost.
 */
export function createSampler(params: SamplingParams = {}, firstDraw = 0): Sampler {
  if (!(Number.isSafeInteger(firstDraw) && firstDraw >= 0)) throw new Error(`createSampler: firstDraw must be an integer >= 0, got ${firstDraw}`);
  const p = validateSamplingParams(params);
  const key = seedKey(p.seed);
  let draw = firstDraw;
  let x = new Float64Array(0);

  /** Bias, penalties, then (sampling) temperature and truncation, in x: the candidates left. */
  function prepare(logits: ArrayLike<number>, history: ArrayLike<number>): Int32Array {
    const vocab = logits.length;
    if (vocab === 0) throw new Error("sampler: empty logits");
    if (x.length !== vocab) x = new Float64Array(vocab);
    copyLogits(logits, x);
    applyLogitBias(x, p.logitBias);
    applyPenalties(x, history, p);
    let cands = finiteIds(x);
    if (cands.length === 0) throw new Error(`sampler: every token of the vocabulary (size ${vocab}) is banned by logitBias`);
    // NOTE: greedy ignores the truncations (they never remove the argmax); its log-probabilities are
    // those of the biased and penalised logits at temperature 1, the distribution it chose from.
    if (p.temperature === 0) return cands;
    // NOTE: shift by the max before dividing, so a tiny temperature cannot overflow to +Infinity.
    const shift = maxOver(x, cands);
    for (const c of cands) x[c] = (x[c]! - shift) / p.temperature;
    if (p.topK > 0 && p.topK < cands.length) cands = keepTopK(x, cands, p.topK);
    if (p.topP < 1) cands = keepNucleus(x, cands, p.topP, maxOver(x, cands));
    if (p.minP > 0) {
      const floor = maxOver(x, cands) + Math.log(p.minP);
      cands = cands.filter((c) => x[c]! >= floor);
    }
    return cands;
  }

  function argmax(cands: Int32Array): number {
    let id = cands[0]!;
    for (const c of cands) if (x[c]! > x[id]!) id = c;
    return id;
  }

  /** The SampleResult of `id` among the prepared candidates (x as prepare left it). */
  function result(logits: ArrayLike<number>, cands: Int32Array, id: number): SampleResult {
    if (p.logprobsMode === "raw") {
      // NOTE: the model's own distribution: the logits again, before bias, penalties, temperature and truncation.
      copyLogits(logits, x);
      cands = finiteIds(x);
    }
    const logZ = logSumExp(x, cands, maxOver(x, cands));
    const r: SampleResult = { id, logprob: x[id]! - logZ };
    return p.topLogprobs > 0 ? { ...r, top: topLogprobs(x, cands, p.topLogprobs, logZ) } : r;
  }

  function sample(logits: ArrayLike<number>, history: ArrayLike<number> = []): SampleResult {
    const counter = draw++;
    const cands = prepare(logits, history);
    let id: number;
    if (p.temperature === 0) {
      id = argmax(cands);
    } else {
      // NOTE: the draw walks the kept tokens in id order, not by probability: a tiny logit difference
      // between backends then moves the boundaries a little instead of reordering the walk.
      const max = maxOver(x, cands);
      let total = 0;
      for (const c of cands) total += Math.exp(x[c]! - max);
      const target = uniformAt(key, counter) * total;
      let cum = 0;
      id = cands[cands.length - 1]!;
      for (const c of cands) {
        cum += Math.exp(x[c]! - max);
        if (cum > target) {
          id = c;
          break;
        }
      }
    }
    return result(logits, cands, id);
  }

  function judge(logits: ArrayLike<number>, history: ArrayLike<number> = []): Judged {
    const cands = prepare(logits, history);
    const probs = new Float64Array(logits.length);
    if (p.temperature === 0) {
      probs[argmax(cands)] = 1;
    } else {
      const max = maxOver(x, cands);
      let total = 0;
      for (const c of cands) total += (probs[c] = Math.exp(x[c]! - max));
      for (const c of cands) probs[c] = probs[c]! / total;
    }
    const describe = (id: number): SampleResult => {
      if (!(Number.isInteger(id) && id >= 0 && id < logits.length)) throw new Error(`sampler: judge().describe got token ${id}, outside the vocabulary (size ${logits.length})`);
      return result(logits, cands, id);
    };
    return { probs, describe };
  }

  const distribution = (logits: ArrayLike<number>, history?: ArrayLike<number>): Float64Array => judge(logits, history).probs;

  return { params: p, sample, distribution, judge };
}
