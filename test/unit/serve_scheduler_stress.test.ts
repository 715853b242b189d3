// Seeded stress test of the engine core: 1000 requests with random prompts (some sharing prefixes),
// lengths, tiers and tenants arrive over time on a small pool, with aborts (waiting, running and
// in flight) and queue timeouts, driven by the fake runner. After every step: no block owned twice,
// refcounts equal owners, free queue = unreferenced blocks, the runner read back exactly the tokens
// of the request it computed. At the end: every request finished exactly once, with exactly the
// tokens it generates alone (a prefix of them if aborted), and the pool is full.

import { describe, expect, it } from "vitest";
import type { SlaTier } from "../../src/serve/sla.js";
import { Scheduler } from "../../src/serve/scheduler.js";
import type { RequestOutput } from "../../src/serve/types.js";
import { EOS, FakeRunner, checkInvariants, collect, expectedOutput } from "./serve_fake_runner.js";

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TIERS: SlaTier[] = [
  { name: "interactive", ttftTargetMs: 20, tpotTargetMs: 5, queueTimeoutMs: 150 },
  { name: "standard", ttftTargetMs: 100, tpotTargetMs: 10, queueTimeoutMs: 400 },
  { name: "batch", ttftTargetMs: 1000, tpotTargetMs: 50, queueTimeoutMs: Infinity },
];

describe("Scheduler stress", () => {
  it.each([1, 2])("1000 random requests, seed %i: invariants hold every step, outputs match a solo run", (seed) => {
    const rand = mulberry32(seed);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const maxModelLen = 64;
    const eosEvery = 23;
    let now = 0;
    const sched = new Scheduler({
      maxNumBatchedTokens: 48, maxNumSeqs: 12, maxModelLen, maxPrefillChunk: 32,
      cache: { numBlocks: 40, blockSize: 4, namespace: "stress" }, tiers: TIERS, now: () => now,
    });
    const runner = new FakeRunner(sched, eosEvery);
    const prefixes = Array.from({ length: 4 }, () => Array.from({ length: int(8, 24) }, () => int(1, 511)));
    const prompts = new Map<string, { prompt: number[]; maxTokens: number }>();
    const outputs: RequestOutput[] = [];
    let added = 0;
    let aborts = 0;
    let steps = 0;
    while (added < 1000 || sched.hasWork) {
      // Arrivals: bursts and lulls.
      for (let k = int(0, 3); k > 0 && added < 1000; k--, added++) {
        const shared = rand() < 0.5 ? prefixes[int(0, 3)]! : [];
        const prompt = [...shared, ...Array.from({ length: int(1, 50 - shared.length) }, () => int(1, 511))];
        const maxTokens = int(1, 30);
        const reqId = `r${added}`;
        prompts.set(reqId, { prompt, maxTokens });
        sched.addRequest({ reqId, promptTokenIds: prompt, maxTokens, eosTokenId: EOS, tier: TIERS[int(0, 2)]!.name, tenant: `t${int(0, 4)}` });
      }
      // Aborts of random live requests (waiting or running), sometimes while the step is in flight.
      const live = [...sched.runningRequests(), ...sched.waitingRequests()];
      if (live.length > 0 && rand() < 0.04) aborts += sched.abort(live[int(0, live.length - 1)]!.reqId) ? 1 : 0;
      const out = sched.schedule();
      expect(out.totalNumScheduledTokens).toBeLessThanOrEqual(48);
      expect(out.scheduledNewReqs.length + out.scheduledCachedReqs.length).toBeLessThanOrEqual(12);
      if (live.length > 0 && rand() < 0.02) aborts += sched.abort(live[int(0, live.length - 1)]!.reqId) ? 1 : 0;
      outputs.push(...sched.updateFromOutput(out, runner.execute(structuredClone(out))));
      checkInvariants(sched);
      now += 1;
      if (++steps > 50_000) throw new Error("stress: not done after 50000 steps");
    }

    const done = collect(outputs);
    expect(done.size).toBe(1000);
    const reasons: Record<string, number> = {};
    for (const [reqId, { tokens, final }] of done) {
      const { prompt, maxTokens } = prompts.get(reqId)!;
      const ref = expectedOutput(prompt, maxTokens, maxModelLen, eosEvery);
      reasons[final.finishReason!] = (reasons[final.finishReason!] ?? 0) + 1;
      if (final.finishReason === "stop" || final.finishReason === "length") expect(tokens, reqId).toEqual(ref);
      else expect(ref.slice(0, tokens.length), reqId).toEqual(tokens);
      expect(final.numOutputTokens).toBe(tokens.length);
    }
    expect(sched.kv.numBlocksFree).toBe(40);
    expect(runner.reqs.size).toBe(0);
    const stats = sched.stats();
    // The scenario exercises every path: all finish reasons, preemptions, prefix hits and evictions.
    expect(reasons.abort).toBe(aborts);
    expect(Object.keys(reasons).sort()).toEqual(["abort", "length", "stop", "timeout"]);
    expect(stats.totalPreemptions).toBeGreaterThan(0);
    expect(stats.prefixCacheHitTokens).toBeGreaterThan(0);
    expect(stats.numEvictions).toBeGreaterThan(0);
  });
});
