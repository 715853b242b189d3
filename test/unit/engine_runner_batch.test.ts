// The model runner's host side: runner state follows SchedulerOutput's diffs, a step flattens into a
// padded ragged batch with exact positions, slots, block tables and sample rows, bucket sizes, and the
// KV cache sizing (explicit, from a memory fraction, capped, refused when too small).

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { createSampler } from "../../src/models/sampling/index.js";
import { kvBytesPerBlock, sizeKvCache } from "../../src/serve/kv_memory.js";
import { RunnerState, pow2AtLeast, tokenBucket } from "../../src/serve/runner_batch.js";
import type { SchedulerOutput } from "../../src/serve/types.js";

const draws: [unknown, number][] = [];
const state = () => new RunnerState(4, 8, (p, n) => (draws.push([p, n]), createSampler({ temperature: 0 })));

function step(s: number, over: Partial<SchedulerOutput>): SchedulerOutput {
  return { step: s, scheduledNewReqs: [], scheduledCachedReqs: [], numScheduledTokens: {}, totalNumScheduledTokens: 0, finishedReqIds: [], preemptedReqIds: [], ...over };
}

describe("runner batch", () => {
  it("buckets token counts: powers of two up to 64, multiples of 64 up to maxJitTokens, then multiples of it", () => {
    expect([1, 2, 3, 5, 17, 64].map((n) => tokenBucket(n, 256))).toEqual([1, 2, 4, 8, 32, 64]);
    expect([65, 128, 129, 160, 256].map((n) => tokenBucket(n, 256))).toEqual([128, 128, 192, 192, 256]);
    // Over maxJitTokens: eager, in multiples of it.
    expect([257, 300, 513].map((n) => tokenBucket(n, 256))).toEqual([512, 512, 768]);
    expect([33, 65].map((n) => tokenBucket(n, 32))).toEqual([64, 96]);
    expect(pow2AtLeast(33)).toBe(64);
  });

  it("flattens new and cached requests in batch order with exact slots, padding and sample rows", () => {
    const st = state();
    draws.length = 0;
    // a: 6-token prompt, 2 of them from the prefix cache, computed in full; b: resumed after a preemption
    // with 2 output tokens, a 5-token chunk of its 7 tokens.
    const s1 = step(1, {
      scheduledNewReqs: [
        { reqId: "a", promptTokenIds: [10, 11, 12, 13, 14, 15], outputTokenIds: [], samplingParams: { seed: 1 }, blockIds: [7, 3], numComputedTokens: 2 },
        { reqId: "b", promptTokenIds: [20, 21, 22, 23, 24], outputTokenIds: [25, 26], samplingParams: { seed: 2 }, blockIds: [5, 6], numComputedTokens: 0 },
      ],
      numScheduledTokens: { a: 4, b: 5 }, totalNumScheduledTokens: 9,
    });
    st.update(s1);
    expect(draws).toEqual([[{ seed: 1 }, 0], [{ seed: 2 }, 2]]);
    const b1 = st.flatten(s1, 64);
    expect([b1.tokenBucket, b1.seqBucket, b1.numTokens]).toEqual([16, 2, 9]);
    expect(Array.from(b1.ids)).toEqual([12, 13, 14, 15, 20, 21, 22, 23, 24, -1, -1, -1, -1, -1, -1, -1]);
    expect(Array.from(b1.positions)).toEqual([2, 3, 4, 5, 0, 1, 2, 3, 4, -1, -1, -1, -1, -1, -1, -1]);
    // slot = blockIds[p / 4] * 4 + p % 4
    expect(Array.from(b1.slots)).toEqual([30, 31, 12, 13, 20, 21, 22, 23, 24, -1, -1, -1, -1, -1, -1, -1]);
    expect(Array.from(b1.tokenSeq.subarray(0, 9))).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(Array.from(b1.blockTables)).toEqual([7, 3, 0, 0, 0, 0, 0, 0, 5, 6, 0, 0, 0, 0, 0, 0]);
    // only a reached its end: its last token (row 3) is sampled
    expect(Array.from(b1.sampleRows)).toEqual([3, -1]);
    expect(b1.sampled.map((r) => r.reqId)).toEqual(["a"]);

    // Next step: a got token 16 and a new block; b finishes its prompt chunk.
    const s2 = step(2, {
      scheduledCachedReqs: [
        { reqId: "b", newTokenIds: [], newBlockIds: [], numComputedTokens: 5 },
        { reqId: "a", newTokenIds: [16], newBlockIds: [9], numComputedTokens: 6 },
      ],
      numScheduledTokens: { a: 1, b: 2 }, totalNumScheduledTokens: 3,
    });
    st.update(s2);
    const b2 = st.flatten(s2, 64);
    expect(Array.from(b2.ids)).toEqual([25, 26, 16, -1]);
    expect(Array.from(b2.positions)).toEqual([5, 6, 6, -1]);
    expect(Array.from(b2.slots)).toEqual([25, 26, 14, -1]); // a at position 6: block 3 (its second), slot 2
    expect(Array.from(b2.tokenSeq.subarray(0, 3))).toEqual([0, 0, 1]);
    expect(Array.from(b2.sampleRows)).toEqual([1, 2]);
    expect(b2.sampled.map((r) => r.reqId)).toEqual(["b", "a"]);

    // Finished and preempted requests are dropped; a cached request the runner lost is an error.
    st.update(step(3, { finishedReqIds: ["a"], preemptedReqIds: ["b"] }));
    expect(st.size).toBe(0);
    expect(() => st.update(step(4, { scheduledCachedReqs: [{ reqId: "a", newTokenIds: [], newBlockIds: [], numComputedTokens: 7 }], numScheduledTokens: { a: 1 }, totalNumScheduledTokens: 1 })))
      .toThrow(/schedules a as cached, but the runner holds no state for it/);
  });

  it("refuses a numComputedTokens that disagrees with what it computed, and a short block table", () => {
    const st = state();
    const s1 = step(1, {
      scheduledNewReqs: [{ reqId: "a", promptTokenIds: [1, 2, 3], outputTokenIds: [], samplingParams: {}, blockIds: [0], numComputedTokens: 0 }],
      numScheduledTokens: { a: 3 }, totalNumScheduledTokens: 3,
    });
    st.update(s1);
    st.flatten(s1, 64);
    expect(() => st.update(step(2, { scheduledCachedReqs: [{ reqId: "a", newTokenIds: [4], newBlockIds: [], numComputedTokens: 2 }], numScheduledTokens: { a: 1 }, totalNumScheduledTokens: 1 })))
      .toThrow(/says a has 2 tokens computed; the runner computed 3/);
    const s3 = step(3, { scheduledCachedReqs: [{ reqId: "a", newTokenIds: [4, 5], newBlockIds: [], numComputedTokens: 3 }], numScheduledTokens: { a: 2 }, totalNumScheduledTokens: 2 });
    st.update(s3);
    expect(() => st.flatten(s3, 64)).toThrow(/needs 2 blocks for 5 tokens but its table has 1/);
  });
});

describe("kv cache sizing", async () => {
  const cpu = await getBackend("cpu");
  const shape = { layers: 5, kvHeads: 4, maxSeq: 512, headDim: 8 };
  const base = { backend: cpu, shape, dtype: "f32" as const, blockSize: 16, weightsBytes: 1_000_000, useful: 2048, need: 32 };

  it("counts bytes per block over every layer, K and V", () => {
    expect(kvBytesPerBlock(shape, 16, "f32")).toBe(2 * 5 * 16 * 4 * 8 * 4);
    expect(kvBytesPerBlock(shape, 16, "f16")).toBe(2 * 5 * 16 * 4 * 8 * 2);
  });

  it("takes an explicit count, a fraction of memory after the weights, or the useful cap", () => {
    expect(sizeKvCache({ ...base, numBlocks: 100 })).toMatchObject({ numBlocks: 100, reason: "as configured" });
    const per = kvBytesPerBlock(shape, 16, "f32");
    const s = sizeKvCache({ ...base, memoryFraction: 0.5, deviceMemoryBytes: 2_000_000 + 200 * per });
    expect(s.numBlocks).toBe(100);
    expect(sizeKvCache({ ...base, deviceMemoryBytes: 1e12 }).numBlocks).toBe(2048);
  });

  it("refuses a cache that cannot hold one full-context request", () => {
    expect(() => sizeKvCache({ ...base, numBlocks: 31 })).toThrow(/31 blocks .* cannot hold one request of the full context \(32 blocks/);
    expect(() => sizeKvCache({ ...base, memoryFraction: 0.9, deviceMemoryBytes: 1_000_000 })).toThrow(/cannot hold one request/);
  });
});
