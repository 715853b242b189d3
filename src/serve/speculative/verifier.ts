// verifier.ts: speculative decoding's acceptance rule. Given the target's logits at the k+1 positions
// of one verify forward (the last real token, then each draft token) it keeps the longest accepted
// prefix of the draft and adds one token of its own, so that every emitted token is distributed
// exactly as the target's sampler would have drawn it (Leviathan et al. 2023, Chen et al. 2023):
//   accept draft token d with probability min(1, p(d) / q(d));
//   on the first rejection draw from norm(max(0, p - q)) and stop;
//   when all k are accepted, draw a bonus token from p at the position after the last.
// p is the target sampler's final distribution (bias, penalties, temperature, top-k/p, min-p); q the
// drafter's (a point mass for deterministic drafts). Greedy (p one-hot) makes it "keep the draft while
// it equals the argmax" with no randomness. It owns the rule and its random draws; the logits are
// the model runner's, the drafts the drafter's.
//
// Random draws are a pure function of (seed, output index): the draw of output token j uses draw j of
// the sampler's stream (so with nothing proposed the token is the one sample() would draw), and the
// accept test of token j a second stream. A request resumed after a preemption replays exactly.

import type { SampleResult, Sampler } from "../../models/sampling/index.js";
import { seedKey, uniformAt } from "../../models/sampling/index.js";

/** What one verify kept. */
export interface Verified {
  /** The accepted draft tokens, then one token of the target's (numAccepted + 1 in all). */
  readonly samples: SampleResult[];
  readonly numAccepted: number;
}

/** The acceptance rule: accept `d` given p(d), q(d) and a uniform u in [0, 1). Replaceable for tests that must fail. */
export type AcceptRule = (pd: number, qd: number, u: number) => boolean;

/** min(1, p/q), written so that certain outcomes draw nothing meaningful. */
export const exactAccept: AcceptRule = (pd, qd, u) => pd >= qd || (pd > 0 && u * qd < pd);

const ACCEPT_STREAM = 0x6a09e667;

/** The index drawn from unnormalised weights w with a uniform u (walking ids in order, as sampler.ts does). */
export function drawFrom(w: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let i = 0; i < w.length; i++) total += w[i]!;
  if (!(total > 0)) throw new Error(`speculative verifier: a distribution with no mass (total ${total}) over ${w.length} tokens`);
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < w.length; i++) {
    if (w[i]! <= 0) continue;
    last = i;
    cum += w[i]!;
    if (cum > target) return i;
  }
  return last;
}

export interface VerifyInput {
  readonly sampler: Sampler;
  /** (k + 1, vocab) logits, row i predicting the token after draft token i (row 0: after the last real token). */
  readonly logits: Float32Array;
  readonly vocabSize: number;
  /** The k draft tokens scheduled (a prefix of the drafter's proposal). */
  readonly draft: readonly number[];
  /** The drafter's q per draft token (at least k of them), or null for point masses. */
  readonly draftProbs: readonly Float64Array[] | null;
  /** Output tokens before this step: the penalties' history and the index of the first new token. */
  readonly outputTokens: readonly number[];
  readonly accept?: AcceptRule;
}

export function verify(input: VerifyInput): Verified {
  const { sampler, logits, vocabSize: V, draft, draftProbs } = input;
  const accept = input.accept ?? exactAccept;
  const k = draft.length;
  if (logits.length !== (k + 1) * V) throw new Error(`speculative verifier: ${k} draft tokens need ${(k + 1) * V} logits, got ${logits.length}`);
  if (draftProbs !== null && draftProbs.length < k) throw new Error(`speculative verifier: ${k} draft tokens but ${draftProbs.length} draft distributions`);
  const p = sampler.params;
  const penalised = p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
  const history = penalised ? input.outputTokens.slice() : undefined;
  const key = seedKey(p.seed);
  const acceptKey = (key ^ ACCEPT_STREAM) >>> 0;
  const j0 = input.outputTokens.length;
  const samples: SampleResult[] = [];
  for (let i = 0; i <= k; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    const judged = sampler.judge(row, history);
    const target = judged.probs;
    const j = j0 + i;
    let id: number;
    if (i === k) {
      id = drawFrom(target, uniformAt(key, j)); // bonus: every draft token was accepted
    } else {
      const d = draft[i]!;
      if (!(Number.isInteger(d) && d >= 0 && d < V)) throw new Error(`speculative verifier: draft token ${d} is outside the vocabulary (size ${V})`);
      const q = draftProbs?.[i];
      const qd = q === undefined ? 1 : q[d]!;
      if (accept(target[d]!, qd, uniformAt(acceptKey, j))) {
        samples.push(judged.describe(d));
        history?.push(d);
        continue;
      }
      // Rejected: the residual max(0, p - q); for a point mass that is p without d.
      const residual = target;
      if (q === undefined) residual[d] = 0;
      else for (let t = 0; t < V; t++) residual[t] = Math.max(0, residual[t]! - q[t]!);
      id = drawFrom(residual, uniformAt(key, j));
    }
    samples.push(judged.describe(id));
    return { samples, numAccepted: i };
  }
  throw new Error("speculative verifier: unreachable");
}
