// spec_schedule.ts: the scheduler's one question about speculative decoding: how many of a running
// request's draft tokens to compute with its next token this step. Everything that turns drafting
// off for a step is here: the request opted out, it is not at a decode step (a prompt chunk or a
// recompute), the step's token budget, the context length, its maxTokens, and memory pressure (the
// draft slots would take blocks that the other running requests may need for their own next token).

import type { KVCacheManager } from "../kv_cache_manager.js";
import type { Request } from "../request.js";

export interface DraftDecision {
  /** Draft tokens to schedule after the request's next token. */
  readonly k: number;
  /** True when drafts were dropped only because the pool is short. */
  readonly skippedForMemory: boolean;
}

const NONE: DraftDecision = { k: 0, skippedForMemory: false };

/**
 * Draft tokens of `req` to schedule now. budgetLeft counts its own next token; numRunning is the
 * running requests (each may need a block next step).
 */
export function draftsToSchedule(req: Request, budgetLeft: number, maxModelLen: number, kv: KVCacheManager, numRunning: number): DraftDecision {
  if (!req.speculative || req.specTokenIds.length === 0) return NONE;
  if (req.numTokens - req.numComputedTokens !== 1) return NONE;
  // NOTE: every emitted token must fit the budget, the context (the last draft's position is
  // numTokens - 1 + k < maxModelLen) and maxTokens (k accepted plus one).
  const k = Math.min(req.specTokenIds.length, budgetLeft - 1, maxModelLen - req.numTokens, req.maxTokens - req.numOutputTokens - 1);
  if (k <= 0) return NONE;
  const bs = kv.blockSize;
  const held = kv.blockIds(req.reqId).length;
  const extra = Math.ceil((req.numTokens + k) / bs) - Math.max(held, Math.ceil(req.numTokens / bs));
  if (extra > 0 && kv.numBlocksFree - extra < numRunning) return { k: 0, skippedForMemory: true };
  return { k, skippedForMemory: false };
}
