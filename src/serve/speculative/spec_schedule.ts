// spec_schedule.ts: the scheduler's one question about speculative decoding: how many of a running
// request's draft tokens to compute with its next token this step. Everything that turns drafting
// off for a step is here: the request opted out, it is not at a decode step (a prompt chunk or a
// recompute), the step's token budget, the context length, its maxTokens, and memory pressure (the
// draft slots would take blocks that the other running requests may need for their own next token).

import type { KVCacheManager } from "../kv_cache_manager.js";
import type { Request } from "../request.js";

/** Draft tokens scheduled with a request's next token. */
export interface ScheduledDrafts {
  /** 1 + the drafts. */
  readonly numTokens: number;
  readonly newBlockIds: number[];
  readonly drafts: readonly number[];
}

/**
 * Allocate and schedule req's next token (n = 1) with its drafts, or null (nothing allocated) when
 * draftsToSchedule says none or the pool is short; `skipped` counts drafts dropped for memory.
 */
export function scheduleDrafts(req: Request, n: number, budgetLeft: number, maxModelLen: number, kv: KVCacheManager, numRunning: number, skipped: () => void): ScheduledDrafts | null {
  const { k, skippedForMemory } = draftsToSchedule(req, budgetLeft, maxModelLen, kv, numRunning);
  if (skippedForMemory) skipped();
  const ids = k > 0 ? kv.allocateSlots(req, n + k, undefined, k) : null;
  return ids === null ? null : { numTokens: n + k, newBlockIds: ids, drafts: req.specTokenIds.slice(0, k) };
}

/** SchedulerOutput.scheduledSpecTokens of a step's scheduled requests (absent when none has drafts). */
export function scheduledSpecTokensOf(scheduled: ReadonlyMap<Request, { readonly drafts?: readonly number[] }>): { scheduledSpecTokens?: Record<string, readonly number[]> } {
  const out: Record<string, readonly number[]> = {};
  for (const [req, s] of scheduled) if (s.drafts !== undefined) out[req.reqId] = s.drafts;
  return Object.keys(out).length > 0 ? { scheduledSpecTokens: out } : {};
}

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
