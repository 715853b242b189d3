// Scheduler: token budget, chunked prefill, decode-first, seat limit, stop conditions, prefix hits,
// protocol checks. Every scenario runs the fake runner (which checks the KV contents it reads) and
// ends with the pool full again. Preemption, tiers, fairness, timeouts and aborts:
// serve_scheduler_policy.test.ts.

import { describe, expect, it } from "vitest";
import { checkInvariants, expectedOutput, setup } from "./serve_fake_runner.js";

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe("Scheduler: budget and chunked prefill", () => {
  it("prefills a long prompt in budget-sized chunks, then decodes one token per step", () => {
    const s = setup();
    s.add({ reqId: "a", promptTokenIds: range(1, 41), maxTokens: 3 });
    const o1 = s.step();
    expect(o1.scheduledNewReqs).toEqual([{ reqId: "a", promptTokenIds: range(1, 41), outputTokenIds: [], samplingParams: undefined, blockIds: [0, 1, 2, 3], numComputedTokens: 0 }]);
    expect(o1.numScheduledTokens).toEqual({ a: 16 });
    expect(s.outputs).toEqual([]); // a partial chunk samples nothing
    const o2 = s.step();
    expect(o2.scheduledCachedReqs).toEqual([{ reqId: "a", newTokenIds: [], newBlockIds: [4, 5, 6, 7], numComputedTokens: 16 }]);
    expect(o2.totalNumScheduledTokens).toBe(16);
    const o3 = s.step();
    expect(o3.scheduledCachedReqs).toEqual([{ reqId: "a", newTokenIds: [], newBlockIds: [8, 9], numComputedTokens: 32 }]);
    expect(o3.numScheduledTokens).toEqual({ a: 8 });
    expect(s.outputs.map((o) => o.newTokenIds.length)).toEqual([1]);
    const first = s.outputs[0]!.newTokenIds[0]!;
    const o4 = s.step();
    expect(o4.scheduledCachedReqs).toEqual([{ reqId: "a", newTokenIds: [first], newBlockIds: [10], numComputedTokens: 40 }]);
    expect(o4.numScheduledTokens).toEqual({ a: 1 });
    const done = s.finish();
    expect(done.get("a")!.tokens).toEqual(expectedOutput(range(1, 41), 3, 64));
    expect(done.get("a")!.final.finishReason).toBe("length");
  });

  it("serves running decodes first; a new long prompt takes the rest of the budget", () => {
    const s = setup();
    s.add({ reqId: "d1", promptTokenIds: [1, 2, 3], maxTokens: 20 });
    s.add({ reqId: "d2", promptTokenIds: [4, 5, 6], maxTokens: 20 });
    s.step();
    s.add({ reqId: "long", promptTokenIds: range(10, 50), maxTokens: 2 });
    const chunks: number[] = [];
    for (let i = 0; i < 3; i++) {
      const o = s.step();
      expect(o.numScheduledTokens.d1).toBe(1);
      expect(o.numScheduledTokens.d2).toBe(1);
      expect(o.totalNumScheduledTokens).toBeLessThanOrEqual(16);
      chunks.push(o.numScheduledTokens.long!);
    }
    expect(chunks).toEqual([14, 14, 12]);
    const done = s.finish();
    expect(done.get("long")!.tokens).toEqual(expectedOutput(range(10, 50), 2, 64));
    expect(done.get("d1")!.tokens).toEqual(expectedOutput([1, 2, 3], 20, 64));
  });

  it("caps one request's chunk with maxPrefillChunk so two prompts share a step", () => {
    const s = setup({ maxPrefillChunk: 8 });
    s.add({ reqId: "a", promptTokenIds: range(1, 21) });
    s.add({ reqId: "b", promptTokenIds: range(30, 50) });
    expect(s.step().numScheduledTokens).toEqual({ a: 8, b: 8 });
    s.finish();
  });

  it("never runs more than maxNumSeqs requests", () => {
    const s = setup({ maxNumSeqs: 2 });
    for (const id of ["a", "b", "c"]) s.add({ reqId: id, promptTokenIds: [1, 2], maxTokens: 4 });
    const o = s.step();
    expect(Object.keys(o.numScheduledTokens)).toEqual(["a", "b"]);
    expect(s.sched.numRunning).toBe(2);
    expect(s.sched.numWaiting).toBe(1);
    s.finish();
  });
});

describe("Scheduler: stop conditions", () => {
  const prompt = [7, 8, 9];
  const ref = expectedOutput(prompt, 20, 64);

  it("stops at a stop id (kept as the last token), at maxTokens, at the context length", () => {
    const stopAt = ref.findIndex((t, i) => i >= 3 && ref.indexOf(t) === i);
    const s = setup();
    s.add({ reqId: "stop", promptTokenIds: prompt, maxTokens: 20, stopTokenIds: [ref[stopAt]!] });
    s.add({ reqId: "eos", promptTokenIds: prompt, maxTokens: 20, eosTokenId: ref[stopAt]! });
    s.add({ reqId: "ignore", promptTokenIds: prompt, maxTokens: 20, eosTokenId: ref[stopAt]!, ignoreEos: true });
    s.add({ reqId: "len", promptTokenIds: prompt, maxTokens: 5 });
    s.add({ reqId: "ctx", promptTokenIds: range(1, 61), maxTokens: 20 });
    const done = s.finish();
    expect(done.get("stop")!.tokens).toEqual(ref.slice(0, stopAt + 1));
    expect(done.get("stop")!.final).toMatchObject({ finishReason: "stop", stopTokenId: ref[stopAt], numOutputTokens: stopAt + 1 });
    expect(done.get("eos")!.final).toMatchObject({ finishReason: "stop", stopTokenId: ref[stopAt] });
    expect(done.get("ignore")!.tokens).toEqual(ref);
    expect(done.get("ignore")!.final.finishReason).toBe("length");
    expect(done.get("len")!.tokens).toEqual(ref.slice(0, 5));
    expect(done.get("len")!.final).toMatchObject({ finishReason: "length", numPromptTokens: 3, numOutputTokens: 5 });
    // 60 prompt tokens, context 64: 4 tokens, then the context is full.
    expect(done.get("ctx")!.tokens).toHaveLength(4);
    expect(done.get("ctx")!.final.finishReason).toBe("length");
  });

  it("streams every token once and reports timings", () => {
    const s = setup();
    s.add({ reqId: "a", promptTokenIds: prompt, maxTokens: 4 });
    s.advance(5);
    s.step();
    s.advance(5);
    const done = s.finish();
    expect(s.outputs.filter((o) => o.reqId === "a").map((o) => o.newTokenIds.length)).toEqual([1, 1, 1, 1]);
    expect(done.get("a")!.final).toMatchObject({ arrivalTime: 0, firstScheduledTime: 5, firstTokenTime: 5, finishedTime: 10, numPreemptions: 0 });
  });
});

describe("Scheduler: prefix cache", () => {
  it("a request sharing a prompt prefix gets the cached blocks: refcount 2 while both run", () => {
    const s = setup();
    const shared = range(1, 9); // two full blocks
    s.add({ reqId: "a", promptTokenIds: [...shared, 100, 101], maxTokens: 6 });
    s.step();
    s.add({ reqId: "b", promptTokenIds: [...shared, 200], maxTokens: 6 });
    const o = s.step();
    const b = o.scheduledNewReqs.find((r) => r.reqId === "b")!;
    expect(b.numComputedTokens).toBe(8);
    expect(b.blockIds.slice(0, 2)).toEqual([0, 1]);
    expect(o.numScheduledTokens.b).toBe(1);
    expect(s.sched.kv.pool.block(0).refCount).toBe(2);
    expect(s.sched.kv.pool.block(1).refCount).toBe(2);
    const done = s.finish();
    expect(done.get("b")!.tokens).toEqual(expectedOutput([...shared, 200], 6, 64));
    expect(done.get("b")!.final.numCachedTokens).toBe(8);
    expect(s.sched.kv.pool.block(0).content).not.toBeNull();
    expect(s.sched.stats()).toMatchObject({ prefixCacheQueriedTokens: 19, prefixCacheHitTokens: 8, numRunning: 0, numWaiting: 0, kvCacheUsage: 0 });
  });
});

describe("Scheduler: validation and protocol", () => {
  it("rejects bad requests and configs with the numbers", () => {
    const s = setup();
    s.add({ reqId: "a", promptTokenIds: [1] });
    expect(() => s.add({ reqId: "a", promptTokenIds: [1] })).toThrow(/request a already exists/);
    expect(() => s.add({ reqId: "b", promptTokenIds: [1], tier: "gold" })).toThrow(/unknown tier "gold" \(known: interactive, standard, batch\)/);
    expect(() => s.add({ reqId: "c", promptTokenIds: range(0, 64) })).toThrow(/prompt of 64 tokens; the context length is 64/);
    expect(() => s.add({ reqId: "d", promptTokenIds: [] })).toThrow(/prompt is empty/);
    expect(() => s.add({ reqId: "e", promptTokenIds: [1.5] })).toThrow(/promptTokenIds\[0\] = 1.5 is not a token id/);
    expect(() => s.add({ reqId: "f", promptTokenIds: [1], maxTokens: 0 })).toThrow(/maxTokens must be an integer >= 1/);
    expect(() => setup({ cache: { numBlocks: 15, blockSize: 4 } })).toThrow(/15 blocks of 4 tokens cannot hold one request of maxModelLen 64/);
    expect(() => setup({ maxNumSeqs: 0 })).toThrow(/maxNumSeqs must be a positive integer/);
    s.finish();
  });

  it("enforces schedule -> updateFromOutput order and checks the runner's samples", () => {
    const s = setup();
    s.add({ reqId: "a", promptTokenIds: [1, 2, 3] });
    const o = s.sched.schedule();
    expect(() => s.sched.schedule()).toThrow(/schedule\(\) called again before updateFromOutput\(\) of step 1/);
    expect(() => s.sched.updateFromOutput(o, { sampledTokenIds: {} })).toThrow(/computed all 3 tokens of a but the runner sampled no token/);
    expect(() => s.sched.updateFromOutput(o, { sampledTokenIds: { a: [5], zz: [1] } })).toThrow(/sampled for zz, which step 1 did not schedule/);
    expect(() => s.sched.updateFromOutput({ ...o }, { sampledTokenIds: { a: [5] } })).toThrow(/not the output of the last schedule/);
    checkInvariants(s.sched);
    s.outputs.push(...s.sched.updateFromOutput(o, s.runner.execute(o)));
    s.finish();
  });

  it("an idle step schedules nothing and still delivers finished ids", () => {
    const s = setup();
    const o = s.step();
    expect(o).toEqual({ step: 1, scheduledNewReqs: [], scheduledCachedReqs: [], numScheduledTokens: {}, totalNumScheduledTokens: 0, finishedReqIds: [], preemptedReqIds: [] });
    expect(s.sched.hasWork).toBe(false);
    expect(structuredClone(o)).toEqual(o);
  });
});
