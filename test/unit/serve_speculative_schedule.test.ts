// The scheduler's side of speculative decoding, with no model: proposed drafts are scheduled after a
// request's last token (1 + k tokens) within maxTokens, the context and the opt-out; the runner's
// accepted prefix is appended and the rejected positions rolled back out of numComputedTokens; a runner
// that returns more tokens than drafts + 1 is an error naming the request; and the pool is full at the end.

import { describe, expect, it } from "vitest";
import { Scheduler } from "../../src/serve/scheduler.js";

function scheduler(): Scheduler {
  return new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 32, cache: { numBlocks: 16, blockSize: 4 } });
}

describe("scheduler: speculative drafts", () => {
  it("schedules drafts with the last token, keeps the accepted prefix and rolls back the rest", () => {
    const s = scheduler();
    s.addRequest({ reqId: "a", promptTokenIds: [1, 2, 3], maxTokens: 10 });
    let o = s.schedule();
    expect(o.scheduledSpecTokens).toBeUndefined();
    s.updateFromOutput(o, { sampledTokenIds: { a: [7] }, draftTokenIds: { a: [8, 9, 10] } });
    o = s.schedule();
    expect(o.numScheduledTokens).toEqual({ a: 4 });
    expect(o.scheduledSpecTokens).toEqual({ a: [8, 9, 10] });
    expect(o.scheduledCachedReqs[0]!.newTokenIds).toEqual([7]);
    // One draft accepted (8), then the target's own token (11): positions of 9 and 10 are rolled back.
    s.updateFromOutput(o, { sampledTokenIds: { a: [8, 11] }, draftTokenIds: { a: [12, 13, 14, 15, 16, 17, 18, 19, 20] } });
    const a = s.getRequest("a")!;
    expect(a.outputTokenIds).toEqual([7, 8, 11]);
    expect(a.numComputedTokens).toBe(5); // 1 2 3 7 8 computed; 11 is next
    // maxTokens 10 with 3 out: at most 6 drafts (6 accepted + 1 = 10).
    o = s.schedule();
    expect(o.scheduledSpecTokens).toEqual({ a: [12, 13, 14, 15, 16, 17] });
    expect(o.numScheduledTokens).toEqual({ a: 7 });
    s.updateFromOutput(o, { sampledTokenIds: { a: [12, 13, 14, 15, 16, 17, 21] } });
    expect(a.outputTokenIds).toHaveLength(10);
    expect(a.isFinished).toBe(true);
    expect(s.kv.numBlocksFree).toBe(16);
  });

  it("ignores drafts for a request that opted out, and refuses a runner that returns too many tokens", () => {
    const s = scheduler();
    s.addRequest({ reqId: "b", promptTokenIds: [1, 2, 3], maxTokens: 10, speculative: false });
    let o = s.schedule();
    expect(o.scheduledNewReqs[0]!.speculative).toBe(false);
    s.updateFromOutput(o, { sampledTokenIds: { b: [4] }, draftTokenIds: { b: [5, 6] } });
    o = s.schedule();
    expect(o.numScheduledTokens).toEqual({ b: 1 });
    expect(o.scheduledSpecTokens).toBeUndefined();
    expect(() => s.updateFromOutput(o, { sampledTokenIds: { b: [5, 6] } })).toThrow(/scheduled 0 draft tokens of b but the runner sampled 2 tokens \(at most 1\)/);
  });

  it("keeps the last draft inside the context", () => {
    const s = scheduler();
    s.addRequest({ reqId: "c", promptTokenIds: Array.from({ length: 29 }, (_, i) => i + 1), maxTokens: 10 });
    const o = s.schedule();
    s.updateFromOutput(o, { sampledTokenIds: { c: [40] }, draftTokenIds: { c: [41, 42, 43] } });
    // 30 tokens, context 32: two drafts (positions 30 and 31), not three.
    expect(s.schedule().scheduledSpecTokens).toEqual({ c: [41, 42] });
  });
});
