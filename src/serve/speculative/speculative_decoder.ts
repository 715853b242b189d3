// speculative_decoder.ts: the model runner's side of speculative decoding. After each step it asks
// the drafter for up to k tokens per sequence (returned to the scheduler, which schedules them with
// the sequence's next token when the budget and the KV pool allow); in the next step the target
// computes all k+1 positions in one forward and verify() keeps the accepted prefix. It owns the
// drafts in flight, each sequence's k (adapted to its acceptance), and the counters for /metrics.
// What runs is the scheduler's call; the forward and the KV rollback are the runner's.
//
// Adaptive k (Hugging Face's assisted-generation heuristic, per sequence): all drafts accepted ->
// k + 2, otherwise k - 1, within [1, maxK]. A sequence whose drafts keep failing drafts one token a
// step (a cheap probe), one whose drafts hold drafts up to maxK.

import type { CausalTransformer } from "../../models/language_model.js";
import type { SampleResult, Sampler } from "../../models/sampling/index.js";
import type { SpeculativeCounters } from "../engine_client.js";
import type { Draft, Drafter } from "./drafter.js";
import { type AcceptRule, verify } from "./verifier.js";

/** Counters since start (plain data). */
export interface SpeculativeStats {
  readonly drafter: string;
  /** Draft tokens the target verified (proposed and scheduled). */
  readonly numDraftTokens: number;
  /** Of those, accepted. */
  readonly numAcceptedTokens: number;
  /** Sequence-steps that verified at least one draft token. */
  readonly numVerifies: number;
  /** Tokens those sequence-steps emitted (accepted + one each). */
  readonly numEmittedTokens: number;
  /** Milliseconds spent in the drafter. */
  readonly draftMs: number;
}

/** EngineStats.speculative: the counters of several runners (the engine's models) together; absent when none speculates. */
export function speculativeStatsOf(all: readonly (SpeculativeStats | undefined)[]): { speculative?: SpeculativeCounters } {
  const on = all.filter((s): s is SpeculativeStats => s !== undefined);
  if (on.length === 0) return {};
  const sum = (f: (s: SpeculativeStats) => number) => on.reduce((a, s) => a + f(s), 0);
  return { speculative: {
    numDrafts: sum((s) => s.numVerifies), numDraftTokens: sum((s) => s.numDraftTokens), numAcceptedTokens: sum((s) => s.numAcceptedTokens),
    numEmittedTokens: sum((s) => s.numEmittedTokens), draftSeconds: sum((s) => s.draftMs) / 1000,
  } };
}

/** One sequence as the runner holds it. */
export interface SpecSequence {
  readonly reqId: string;
  readonly tokens: readonly number[];
  readonly numPromptTokens: number;
  readonly sampler: Sampler;
}

/** How a model runner speculates (ModelRunnerOptions.speculative). */
export interface SpeculativeConfig extends Omit<SpeculativeOptions, "drafter"> {
  /** Builds the runner's drafter for its target model (one per runner: a drafter holds per-sequence state). */
  readonly drafter: (target: CausalTransformer) => Drafter | Promise<Drafter>;
}

export interface SpeculativeOptions {
  readonly drafter: Drafter;
  /** Most draft tokens per sequence and step (the bound of adaptive k). Default 4. */
  readonly maxK?: number;
  /** Start and keep k = maxK. Default true. */
  readonly adaptive?: boolean;
  /** The acceptance rule (tests substitute a wrong one to show the distribution test can fail). */
  readonly accept?: AcceptRule;
}

export class SpeculativeDecoder {
  readonly drafter: Drafter;
  readonly maxK: number;
  private readonly adaptive: boolean;
  private readonly accept: AcceptRule | undefined;
  private readonly drafts = new Map<string, Draft>();
  private readonly k = new Map<string, number>();
  private numDraftTokens = 0;
  private numAcceptedTokens = 0;
  private numVerifies = 0;
  private numEmittedTokens = 0;
  private draftMs = 0;

  constructor(opts: SpeculativeOptions) {
    this.drafter = opts.drafter;
    this.maxK = opts.maxK ?? 4;
    if (!(Number.isInteger(this.maxK) && this.maxK >= 1 && this.maxK <= 64)) throw new Error(`speculative decoding: k must be an integer in [1, 64], got ${this.maxK}`);
    this.adaptive = opts.adaptive ?? true;
    this.accept = opts.accept;
  }

  stats(): SpeculativeStats {
    const { numDraftTokens, numAcceptedTokens, numVerifies, numEmittedTokens, draftMs } = this;
    return { drafter: this.drafter.name, numDraftTokens, numAcceptedTokens, numVerifies, numEmittedTokens, draftMs };
  }

  /** k for a sequence's next proposal. */
  kOf(reqId: string): number {
    return this.k.get(reqId) ?? this.maxK;
  }

  /**
   * Sample a sequence's tokens from the logits of its `draft.length + 1` verified positions: the
   * accepted draft tokens and one more. `draft` is what the scheduler scheduled (a prefix of the last
   * proposal); outputTokens the sequence's output before this step.
   */
  verify(seq: SpecSequence, logits: Float32Array, vocabSize: number, draft: readonly number[], outputTokens: readonly number[]): SampleResult[] {
    const proposed = this.drafts.get(seq.reqId);
    this.drafts.delete(seq.reqId);
    if (draft.length > 0 && (proposed === undefined || draft.some((t, i) => proposed.tokens[i] !== t))) {
      throw new Error(`speculative decoding: step schedules draft [${draft.join(", ")}] for ${seq.reqId}, which is not its proposal [${proposed?.tokens.join(", ") ?? ""}]`);
    }
    const v = verify({ sampler: seq.sampler, logits, vocabSize, draft, draftProbs: proposed?.probs ?? null, outputTokens, ...(this.accept ? { accept: this.accept } : {}) });
    if (draft.length > 0) {
      this.numDraftTokens += draft.length;
      this.numAcceptedTokens += v.numAccepted;
      this.numVerifies++;
      this.numEmittedTokens += v.samples.length;
      if (this.adaptive) {
        const k = this.kOf(seq.reqId);
        this.k.set(seq.reqId, Math.max(1, Math.min(this.maxK, v.numAccepted === draft.length ? k + 2 : k - 1)));
      }
    }
    return v.samples;
  }

  /** Proposals for the sequences' next step (their tokens include this step's samples), by reqId. */
  async propose(seqs: readonly SpecSequence[]): Promise<Record<string, number[]>> {
    if (seqs.length === 0) return {};
    const t0 = performance.now();
    const reqs = seqs.map((s) => ({ reqId: s.reqId, tokens: s.tokens, numPromptTokens: s.numPromptTokens, k: this.kOf(s.reqId), sampler: s.sampler }));
    const got = await this.drafter.propose(reqs);
    this.draftMs += performance.now() - t0;
    const out: Record<string, number[]> = {};
    for (const [reqId, d] of got) {
      if (d.tokens.length === 0) continue;
      this.drafts.set(reqId, d);
      out[reqId] = d.tokens.slice();
    }
    return out;
  }

  /** Forget a sequence (finished or preempted). */
  drop(reqId: string): void {
    this.drafts.delete(reqId);
    this.k.delete(reqId);
    this.drafter.drop(reqId);
  }

  dispose(): void {
    this.drafter.dispose();
  }
}
