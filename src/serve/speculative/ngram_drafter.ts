// ngram_drafter.ts: prompt-lookup drafting (no draft model): find the last n tokens of a sequence
// earlier in its prompt + output and propose the tokens that followed them there. Text that quotes
// or repeats its context (summaries, code edits, extraction, repetitive small models) gets long
// accepted runs for free; text that does not gets no proposals and costs a scan. Proposals are
// deterministic (q is a point mass), so the verifier accepts a token with probability p(token).

import type { Draft, DraftRequest, Drafter } from "./drafter.js";

export interface NgramOptions {
  /** Longest suffix to match; tried first. Default 4. */
  readonly maxN?: number;
  /** Shortest suffix to match. Default 1. */
  readonly minN?: number;
}

/**
 * The tokens that followed the latest earlier occurrence of the last n tokens (n from maxN down to
 * minN; the longest match wins), at most k of them; empty when there is none.
 */
export function lookupNgram(tokens: readonly number[], k: number, minN: number, maxN: number): number[] {
  const len = tokens.length;
  for (let n = Math.min(maxN, len - 1); n >= minN; n--) {
    // NOTE: latest match first: recent context predicts the continuation best.
    for (let i = len - n - 1; i >= 0; i--) {
      let j = 0;
      while (j < n && tokens[i + j] === tokens[len - n + j]) j++;
      if (j < n) continue;
      const out: number[] = [];
      for (let p = i + n; p < len && out.length < k; p++) out.push(tokens[p]!);
      return out;
    }
  }
  return [];
}

export class NgramDrafter implements Drafter {
  readonly name = "ngram";
  private readonly minN: number;
  private readonly maxN: number;

  constructor(opts: NgramOptions = {}) {
    this.minN = opts.minN ?? 1;
    this.maxN = opts.maxN ?? 4;
    if (!(Number.isInteger(this.minN) && this.minN >= 1 && Number.isInteger(this.maxN) && this.maxN >= this.minN)) {
      throw new Error(`ngram drafter: need integers 1 <= minN <= maxN, got minN ${this.minN}, maxN ${this.maxN}`);
    }
  }

  async propose(reqs: readonly DraftRequest[]): Promise<Map<string, Draft>> {
    const out = new Map<string, Draft>();
    for (const r of reqs) {
      const tokens = lookupNgram(r.tokens, r.k, this.minN, this.maxN);
      if (tokens.length > 0) out.set(r.reqId, { tokens, probs: null });
    }
    return out;
  }

  drop(): void {}

  dispose(): void {}
}
