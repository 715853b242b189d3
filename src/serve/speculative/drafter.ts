// drafter.ts: the interface of a speculative-decoding drafter: given the tokens of some running
// sequences, propose up to k next tokens for each, cheaply, for the target model to verify in one
// forward (verifier.ts). A drafter owns only its proposals and whatever state makes them (a draft
// model's KV cache); what is scheduled is the scheduler's call, what is kept the verifier's.
// Implementations: ngram_drafter.ts (prompt lookup, no model), draft_model_drafter.ts (a small model
// of the same tokenizer).

import type { Sampler } from "../../models/sampling/index.js";

/** One sequence to draft for. */
export interface DraftRequest {
  readonly reqId: string;
  /** Prompt then output, including the tokens this step sampled. */
  readonly tokens: readonly number[];
  readonly numPromptTokens: number;
  /** Most tokens to propose (>= 1). */
  readonly k: number;
  /** The target request's sampler: a drafter that samples uses the same processing (temperature, top-k, ...). */
  readonly sampler: Sampler;
}

/** Proposed tokens, and the distribution each was drawn from. */
export interface Draft {
  readonly tokens: readonly number[];
  /**
   * Per token, the drafter's probabilities over the vocabulary (q in the rejection rule); null when
   * the proposal is deterministic (a point mass on each token: n-gram lookup, greedy drafting).
   */
  readonly probs: readonly Float64Array[] | null;
}

export interface Drafter {
  /** "ngram" or "draft:<name>", for logs and metrics. */
  readonly name: string;
  /** Proposals by reqId; a sequence with nothing to propose is left out. */
  propose(reqs: readonly DraftRequest[]): Promise<Map<string, Draft>>;
  /** Forget a sequence (finished or preempted). */
  drop(reqId: string): void;
  /** Free what the drafter holds (a draft model's KV cache). */
  dispose(): void;
}
