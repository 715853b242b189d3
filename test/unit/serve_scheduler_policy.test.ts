// Scheduler policy: preemption when blocks run out (least important, then newest; recomputed later
// with the same tokens), tiers (order, and a waiting higher tier preempting a lower one), fair share
// between tenants, queue timeouts and aborts. Every scenario ends with the pool full again.

import { describe, expect, it } from "vitest";
import { Request } from "../../src/serve/request.js";
import type { SlaTier } from "../../src/serve/sla.js";
import { WaitingQueue } from "../../src/serve/waiting_queue.js";
import { expectedOutput, setup } from "./serve_fake_runner.js";

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
/** 8 blocks of 4 tokens, context 32: two requests of 28 tokens cannot both finish without a preemption. */
const tight = { maxNumBatchedTokens: 64, maxModelLen: 32, cache: { numBlocks: 8, blockSize: 4 } };

describe("Scheduler: preemption", () => {
  it("preempts the newest request when blocks run out, frees its blocks, recomputes it to the same tokens", () => {
    const s = setup(tight);
    s.add({ reqId: "a", promptTokenIds: range(1, 13), maxTokens: 16 });
    s.advance(1);
    s.add({ reqId: "b", promptTokenIds: range(50, 62), maxTokens: 16 });
    let preemptStep = 0;
    for (let i = 0; i < 10 && preemptStep === 0; i++) {
      const o = s.step();
      if (o.preemptedReqIds.length > 0) {
        expect(o.preemptedReqIds).toEqual(["b"]);
        expect(Object.keys(o.numScheduledTokens)).toEqual(["a"]);
        preemptStep = o.step;
      }
    }
    // Step 1 prefills 12 tokens each (3 blocks); from step 2 each holds 4 blocks (all 8); in step 6
    // a computes its 17th token, which needs a 5th block.
    expect(preemptStep).toBe(6);
    const b = s.sched.getRequest("b")!;
    expect(b.status).toBe("preempted");
    expect(b.numComputedTokens).toBe(0);
    expect(b.numPreemptions).toBe(1);
    expect(s.sched.kv.blockIds("b")).toEqual([]);
    expect(s.sched.kv.blockIds("a")).toHaveLength(5);
    expect(s.sched.stats()).toMatchObject({ numRunning: 1, numWaiting: 1, numPreemptedWaiting: 1, totalPreemptions: 1 });
    const streamedBefore = s.outputs.filter((o) => o.reqId === "b").flatMap((o) => o.newTokenIds);
    expect(streamedBefore).toHaveLength(5);

    let resumed: { outputTokenIds: readonly number[]; numComputedTokens: number; blockIds: readonly number[] } | undefined;
    while (resumed === undefined) resumed = s.step().scheduledNewReqs.find((r) => r.reqId === "b");
    expect(resumed.outputTokenIds).toEqual(streamedBefore);
    // Its 4 full blocks stayed cached when freed; a grew by 3 blocks, evicting b's tail first: 1 hit left.
    expect(resumed.numComputedTokens).toBe(4);
    const done = s.finish();
    expect(done.get("a")!.tokens).toEqual(expectedOutput(range(1, 13), 16, 32));
    expect(done.get("b")!.tokens).toEqual(expectedOutput(range(50, 62), 16, 32));
    expect(done.get("b")!.final.numPreemptions).toBe(1);
    expect(done.get("a")!.final.numPreemptions).toBe(0);
  });

  it("preempts the lowest tier first, even when it is older", () => {
    const s = setup(tight);
    s.add({ reqId: "old-batch", promptTokenIds: range(1, 13), maxTokens: 16, tier: "batch" });
    s.advance(1);
    s.add({ reqId: "new-interactive", promptTokenIds: range(50, 62), maxTokens: 16, tier: "interactive" });
    const preempted: string[] = [];
    for (let i = 0; i < 8; i++) preempted.push(...s.step().preemptedReqIds);
    expect(preempted).toEqual(["old-batch"]);
    const done = s.finish();
    expect(done.get("old-batch")!.tokens).toEqual(expectedOutput(range(1, 13), 16, 32));
    expect(done.get("new-interactive")!.final.numPreemptions).toBe(0);
  });

  it("a waiting higher tier takes a lower tier's seat; the lower one resumes afterwards", () => {
    const s = setup({ maxNumSeqs: 1 });
    s.add({ reqId: "bulk", promptTokenIds: [1, 2, 3, 4], maxTokens: 10, tier: "batch" });
    s.step();
    s.step();
    s.add({ reqId: "chat", promptTokenIds: [9, 9, 9], maxTokens: 3, tier: "interactive" });
    const o = s.step();
    expect(o.preemptedReqIds).toEqual(["bulk"]);
    expect(o.scheduledNewReqs.map((r) => r.reqId)).toEqual(["chat"]);
    expect(o.numScheduledTokens).toEqual({ chat: 3 });
    const done = s.finish();
    expect(done.get("bulk")!.tokens).toEqual(expectedOutput([1, 2, 3, 4], 10, 64));
    expect(done.get("chat")!.final.finishedTime).toBeLessThanOrEqual(done.get("bulk")!.final.finishedTime!);
  });

  it("a waiting higher tier takes a lower tier's blocks", () => {
    const s = setup(tight);
    s.add({ reqId: "bulk", promptTokenIds: range(1, 25), maxTokens: 4, tier: "batch" });
    s.step();
    s.add({ reqId: "chat", promptTokenIds: range(40, 52), maxTokens: 2, tier: "interactive" });
    const o = s.step();
    expect(o.preemptedReqIds).toEqual(["bulk"]);
    expect(o.scheduledNewReqs.map((r) => r.reqId)).toEqual(["chat"]);
    const done = s.finish();
    expect(done.get("bulk")!.tokens).toEqual(expectedOutput(range(1, 25), 4, 32));
  });

  it("does not preempt a lower tier when that would not make room", () => {
    const s = setup(tight);
    s.add({ reqId: "peer", promptTokenIds: range(1, 21), maxTokens: 3, tier: "interactive" }); // 5 blocks
    s.add({ reqId: "bulk", promptTokenIds: range(30, 35), maxTokens: 3, tier: "batch" }); // 2 blocks
    s.step();
    // chat needs 4 blocks: 1 is free and bulk would free 2; peer, of chat's own tier, is no victim.
    s.add({ reqId: "chat", promptTokenIds: range(40, 56), maxTokens: 2, tier: "interactive" });
    expect(s.step().preemptedReqIds).toEqual([]);
    expect(s.sched.getRequest("chat")!.status).toBe("waiting");
    const done = s.finish();
    expect(done.get("bulk")!.final.numPreemptions).toBe(0);
    expect(done.get("chat")!.tokens).toEqual(expectedOutput(range(40, 56), 2, 32));
  });

  it("the same tier waits instead of preempting", () => {
    const s = setup({ maxNumSeqs: 1 });
    s.add({ reqId: "a", promptTokenIds: [1, 2], maxTokens: 3 });
    s.step();
    s.add({ reqId: "b", promptTokenIds: [3, 4], maxTokens: 3 });
    expect(s.step().preemptedReqIds).toEqual([]);
    expect(s.sched.getRequest("b")!.status).toBe("waiting");
    s.finish();
  });
});

describe("Scheduler: tiers and tenants", () => {
  const admissionOrder = (s: ReturnType<typeof setup>) => {
    const order: string[] = [];
    while (s.sched.hasWork) order.push(...s.step().scheduledNewReqs.map((r) => r.reqId));
    return order;
  };

  it("admits by tier, FIFO within a tier", () => {
    const s = setup({ maxNumSeqs: 1 });
    s.add({ reqId: "x-batch", promptTokenIds: [1], maxTokens: 1, tier: "batch" });
    s.add({ reqId: "y-standard", promptTokenIds: [2], maxTokens: 1 });
    s.add({ reqId: "z-interactive", promptTokenIds: [3], maxTokens: 1, tier: "interactive" });
    s.add({ reqId: "y2-standard", promptTokenIds: [4], maxTokens: 1, tier: "standard" });
    expect(admissionOrder(s)).toEqual(["z-interactive", "y-standard", "y2-standard", "x-batch"]);
    s.finish();
  });

  it("round-robins tenants: a flooding tenant does not starve the others", () => {
    const s = setup({ maxNumSeqs: 1 });
    for (let i = 1; i <= 6; i++) s.add({ reqId: `a${i}`, promptTokenIds: [i], maxTokens: 1, tenant: "A" });
    s.add({ reqId: "b1", promptTokenIds: [7], maxTokens: 1, tenant: "B" });
    s.add({ reqId: "b2", promptTokenIds: [8], maxTokens: 1, tenant: "B" });
    const order = [...s.step().scheduledNewReqs, ...s.step().scheduledNewReqs].map((r) => r.reqId);
    s.add({ reqId: "c1", promptTokenIds: [9], maxTokens: 1, tenant: "C" });
    order.push(...admissionOrder(s));
    expect(order).toEqual(["a1", "b1", "a2", "b2", "c1", "a3", "a4", "a5", "a6"]);
    s.finish();
  });

  it("WaitingQueue: preempted requests first (oldest first), removal from anywhere", () => {
    let seq = 0;
    const r = (id: string, priority: number, tenant: string, arrivalTime: number) =>
      new Request({ reqId: id, promptTokenIds: [1], maxTokens: 1, tenant }, { tier: "t", priority, arrivalTime, deadline: Infinity, seq: seq++ });
    const q = new WaitingQueue(2);
    const [n1, n2, p1, p2, hi] = [r("n1", 1, "A", 0), r("n2", 1, "B", 1), r("p1", 1, "A", 5), r("p2", 1, "B", 3), r("hi", 0, "A", 9)];
    q.push(n1);
    q.push(n2);
    q.pushResumed(p1);
    q.pushResumed(p2);
    expect(q.peek()).toBe(p2);
    q.push(hi);
    expect([...q].map((x) => x.reqId)).toEqual(["hi", "p2", "p1", "n1", "n2"]);
    expect(q.peek()).toBe(hi);
    expect(() => q.popAdmitted(n1)).toThrow(/n1 admitted out of order/);
    q.popAdmitted(hi);
    expect(q.remove(p2)).toBe(true);
    expect(q.remove(p2)).toBe(false);
    expect(q.peek()).toBe(p1);
    q.popAdmitted(p1);
    expect(q.remove(n1)).toBe(true);
    expect(q.peek()).toBe(n2);
    expect(q.length).toBe(1);
  });
});

describe("Scheduler: timeouts and aborts", () => {
  const tiers: SlaTier[] = [
    { name: "fast", ttftTargetMs: 50, tpotTargetMs: 10, queueTimeoutMs: 100 },
    { name: "slow", ttftTargetMs: 500, tpotTargetMs: 100, queueTimeoutMs: Infinity },
  ];

  it("fails a request still waiting past its deadline, with a reason; never schedules it", () => {
    const s = setup({ maxNumSeqs: 1, tiers });
    s.add({ reqId: "long", promptTokenIds: [1], maxTokens: 30, tier: "fast" });
    s.add({ reqId: "late", promptTokenIds: [2], maxTokens: 5, tier: "fast" });
    s.add({ reqId: "dated", promptTokenIds: [3], maxTokens: 5, tier: "slow", deadline: 45 });
    const scheduled = new Set<string>();
    for (let i = 0; i < 6; i++) {
      for (const id of Object.keys(s.step().numScheduledTokens)) scheduled.add(id);
      s.advance(30);
    }
    expect(scheduled).toEqual(new Set(["long"]));
    const timeouts = s.outputs.filter((o) => o.finishReason === "timeout");
    expect(timeouts.map((o) => o.reqId)).toEqual(["dated", "late"]);
    expect(timeouts[0]!.message).toBe('request dated waited 60 ms in the queue without being scheduled, past its deadline (tier "slow", queue timeout Infinity ms)');
    expect(timeouts[1]!.message).toMatch(/request late waited 120 ms .* \(tier "fast", queue timeout 100 ms\)/);
    expect(timeouts[1]).toMatchObject({ finished: true, newTokenIds: [], numOutputTokens: 0, firstScheduledTime: null });
    s.finish();
  });

  it("abort frees a running request's blocks at once and tells the runner next step", () => {
    const s = setup();
    s.add({ reqId: "a", promptTokenIds: range(1, 10), maxTokens: 20 });
    s.add({ reqId: "b", promptTokenIds: [1, 2], maxTokens: 20 });
    s.step();
    expect(s.sched.kv.blockIds("a")).toEqual([0, 1, 2]);
    expect(s.sched.abort("a")).toBe(true);
    expect(s.sched.kv.blockIds("a")).toEqual([]);
    expect(s.sched.kv.numBlocksFree).toBe(31);
    expect(s.sched.abort("a")).toBe(false);
    const o = s.step();
    expect(o.finishedReqIds).toEqual(["a"]);
    expect(s.runner.reqs.has("a")).toBe(false);
    expect(s.outputs.find((x) => x.reqId === "a" && x.finished)).toMatchObject({ finishReason: "abort", message: "request a was aborted", numOutputTokens: 1 });
    s.sched.abort("b", "client disconnected");
    expect(s.sched.kv.numBlocksFree).toBe(32);
    const done = s.finish();
    expect(done.get("b")!.final.message).toBe("client disconnected");
  });

  it("abort while a step is in flight: the runner's sample for it is dropped", () => {
    const s = setup();
    s.add({ reqId: "a", promptTokenIds: [1, 2, 3], maxTokens: 5 });
    s.add({ reqId: "b", promptTokenIds: [4, 5, 6], maxTokens: 5 });
    const o = s.sched.schedule();
    s.sched.abort("a");
    const outs = s.sched.updateFromOutput(o, s.runner.execute(o));
    expect(outs.map((x) => [x.reqId, x.newTokenIds.length, x.finishReason])).toEqual([["a", 0, "abort"], ["b", 1, undefined]]);
    s.outputs.push(...outs);
    const done = s.finish();
    expect(done.get("b")!.tokens).toEqual(expectedOutput([4, 5, 6], 5, 64));
  });

  it("abort of a waiting request removes it from the queue; finishRequest reports errors", () => {
    const s = setup({ maxNumSeqs: 1 });
    s.add({ reqId: "a", promptTokenIds: [1], maxTokens: 4 });
    s.add({ reqId: "w", promptTokenIds: [2], maxTokens: 4 });
    s.step();
    expect(s.sched.abort("w")).toBe(true);
    expect(s.sched.numWaiting).toBe(0);
    expect(s.sched.finishRequest("a", "finished_error", "runner failed: out of memory")).toBe(true);
    const o = s.step();
    expect(o.finishedReqIds).toEqual(["a"]); // w never reached the runner
    const done = s.finish();
    expect(done.get("w")!.final.finishReason).toBe("abort");
    expect(done.get("a")!.final).toMatchObject({ finishReason: "error", message: "runner failed: out of memory" });
  });
});
