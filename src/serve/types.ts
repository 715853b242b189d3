// types.ts: the plain, structured-clone-able messages between the engine core's parts:
//   Scheduler --SchedulerOutput--> ModelRunner --ModelRunnerOutput--> Scheduler --RequestOutput[]--> client.
// No classes, Maps or functions, so each can cross a worker_thread or a browser Worker as is.
// It owns the shapes and the protocol rules written on them, not the code that builds or reads them.

/** A request the runner has no state for: first scheduled, or resumed after a preemption. */
export interface NewRequestData {
  readonly reqId: string;
  readonly promptTokenIds: readonly number[];
  /** Output so far: non-empty for a request resumed after a preemption (its K/V is recomputed). */
  readonly outputTokenIds: readonly number[];
  /** Opaque to the scheduler; the runner's sampler reads it. */
  readonly samplingParams: unknown;
  /** The whole block table: token at position p lives in block blockIds[floor(p / blockSize)], slot p % blockSize. */
  readonly blockIds: readonly number[];
  /** Tokens already in the KV cache (prefix-cache hit): compute from this position on. */
  readonly numComputedTokens: number;
  /** False: the request opted out of speculative decoding (the runner proposes no drafts for it). Default true. */
  readonly speculative?: boolean;
}

/** A request the runner already holds: what changed since it last appeared in a SchedulerOutput. */
export interface CachedRequestData {
  readonly reqId: string;
  /** Tokens appended to the request since it was last scheduled (the sampled tokens the scheduler kept). */
  readonly newTokenIds: readonly number[];
  /** Blocks appended to its block table this step. */
  readonly newBlockIds: readonly number[];
  /** Tokens already in the KV cache; equals what the runner computed so far. */
  readonly numComputedTokens: number;
}

/**
 * One engine step's work. For each scheduled request compute tokens [numComputedTokens,
 * numComputedTokens + numScheduledTokens[reqId]) of its token sequence, writing their K/V into its
 * blocks; when that reaches the end of its tokens, sample one token for it.
 * Batch order: scheduledNewReqs, then scheduledCachedReqs (never rely on the order of the Records' keys).
 */
export interface SchedulerOutput {
  /** Counts schedule() calls from 1. */
  readonly step: number;
  readonly scheduledNewReqs: readonly NewRequestData[];
  readonly scheduledCachedReqs: readonly CachedRequestData[];
  readonly numScheduledTokens: Readonly<Record<string, number>>;
  readonly totalNumScheduledTokens: number;
  /** Requests that ended since the last step: drop their state. */
  readonly finishedReqIds: readonly string[];
  /** Requests preempted by this step: drop their state (they come back later as new requests). */
  readonly preemptedReqIds: readonly string[];
  /**
   * Speculative decoding: draft tokens scheduled after a request's last token, counted in its
   * numScheduledTokens (1 + k). The runner computes them too and samples k + 1 positions, keeping the
   * accepted prefix plus one (speculative/verifier.ts). Absent or empty: no drafts this step.
   */
  readonly scheduledSpecTokens?: Readonly<Record<string, readonly number[]>>;
}

/** What the runner sampled: one entry per scheduled request whose computed tokens reached its end. */
export interface ModelRunnerOutput {
  /** One token per sampled request, or (speculative decoding) its accepted draft tokens and one more. */
  readonly sampledTokenIds: Readonly<Record<string, readonly number[]>>;
  /** Speculative decoding: draft tokens proposed for each request's next step (the scheduler may schedule fewer). */
  readonly draftTokenIds?: Readonly<Record<string, readonly number[]>>;
}

/** Why a request ended, in the client's terms. */
export type FinishReason = "stop" | "length" | "abort" | "timeout" | "error";

/** What one step did to one request: the tokens it gained and, at the end, why it finished. */
export interface RequestOutput {
  readonly reqId: string;
  readonly newTokenIds: readonly number[];
  readonly finished: boolean;
  readonly finishReason?: FinishReason;
  /** The stop or EOS id that ended it (finishReason "stop"). */
  readonly stopTokenId?: number;
  /** A sentence for the client (timeouts, errors, aborts). */
  readonly message?: string;
  readonly numPromptTokens: number;
  readonly numOutputTokens: number;
  /** Prompt tokens served from the prefix cache. */
  readonly numCachedTokens: number;
  readonly numPreemptions: number;
  /** Times on the scheduler's clock (ms); null when not reached. */
  readonly arrivalTime: number;
  readonly firstScheduledTime: number | null;
  readonly firstTokenTime: number | null;
  readonly finishedTime: number | null;
}

/** Gauges and counters for /metrics (plain data). */
export interface SchedulerStats {
  readonly numRunning: number;
  readonly numWaiting: number;
  /** Waiting requests that were preempted (a subset of numWaiting). */
  readonly numPreemptedWaiting: number;
  readonly totalPreemptions: number;
  readonly kvCacheUsage: number;
  readonly numFreeBlocks: number;
  readonly numBlocks: number;
  readonly prefixCacheQueriedTokens: number;
  readonly prefixCacheHitTokens: number;
  readonly prefixCacheHitRate: number;
  readonly numEvictions: number;
  /** Internal fragmentation: allocated token slots no token fills (kv_cache_manager.ts numUnusedSlots). */
  readonly numUnusedSlots: number;
  /** Free blocks above the highest referenced one (a shrink releases these without moving K/V). */
  readonly numTailFreeBlocks: number;
  /** Free blocks below the highest referenced one (what compaction moves live blocks into). */
  readonly numHoleBlocks: number;
  /** Speculative decoding: request-steps whose drafts were dropped because the KV pool was short. */
  readonly numSpecSkippedForMemory?: number;
}
