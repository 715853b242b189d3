// Block pool compaction and its layout numbers: which blocks survive a shrink, where they move, what
// the prefix cache still finds, and that no block is leaked or lost (exact ids, bookkeeping only; the
// K/V copy and the engine under load are serve_kv_compaction.test.ts).

import { describe, expect, it } from "vitest";
import { BlockPool, type KVBlock } from "../../src/serve/block_pool.js";
import { KVCacheManager } from "../../src/serve/kv_cache_manager.js";
import type { BlockContent } from "../../src/serve/prefix_cache.js";
import { Request } from "../../src/serve/request.js";

const ids = (bs: readonly KVBlock[]) => bs.map((b) => b.id);
let seq = 0;
const request = (reqId: string, promptTokenIds: number[]) =>
  new Request({ reqId, promptTokenIds, maxTokens: 16 }, { tier: "standard", priority: 0, arrivalTime: 0, deadline: Infinity, seq: seq++ });
const content = (hash: string, tokens: number[], parentHash = "root"): BlockContent => ({ hash, parentHash, tokenIds: tokens });

describe("BlockPool layout and compaction", () => {
  it("reports live, tail-free and hole blocks", () => {
    const p = new BlockPool(8);
    expect(p.layout()).toEqual({ numBlocks: 8, numLive: 0, highestLive: -1, numTailFree: 8, numHoles: 0 });
    const bs = p.allocate(6);
    p.free([bs[1]!, bs[2]!]);
    expect(p.layout()).toEqual({ numBlocks: 8, numLive: 4, highestLive: 5, numTailFree: 2, numHoles: 2 });
  });

  it("moves live blocks above the new size into the lowest free ids; the held objects keep their identity", () => {
    const p = new BlockPool(8);
    const bs = p.allocate(6); // 0..5
    p.free([bs[1]!, bs[2]!, bs[3]!]);
    const held = [bs[0]!, bs[4]!, bs[5]!];
    const plan = p.planCompaction(4);
    expect(plan.numMoved).toBe(2);
    expect(Array.from(plan.mapping)).toEqual([0, -1, -1, -1, 1, 2, -1, -1]);
    expect(Array.from(plan.source)).toEqual([0, 4, 5, -1]);
    // Planning changes nothing.
    expect(p.numBlocks).toBe(8);
    expect(ids(held)).toEqual([0, 4, 5]);
    p.applyCompaction(plan);
    expect(p.numBlocks).toBe(4);
    expect(ids(held)).toEqual([0, 1, 2]);
    for (const b of held) expect(p.block(b.id)).toBe(b);
    expect(p.numFree).toBe(1);
    expect(p.freeQueueIds()).toEqual([3]);
    expect(() => p.block(4)).toThrow(/no block 4 \(the pool has 4\)/);
    // Nothing leaked: freeing every holder returns the whole (smaller) pool.
    p.free(held);
    expect(p.numFree).toBe(4);
    expect(p.layout().numLive).toBe(0);
  });

  it("keeps the most recently freed cached blocks that fit, evicts the others, and lookups follow", () => {
    const p = new BlockPool(8);
    const bs = p.allocate(8);
    bs.forEach((b, i) => p.cache(b, content(`h${i}`, [i])));
    // Free 7 (LRU order: 1, 2, 3, 4, 5, 6, 7 freed in that order); block 0 stays held.
    for (let i = 1; i < 8; i++) p.free([bs[i]!]);
    const plan = p.planCompaction(3); // block 0 + the two most recently freed: 6 and 7
    expect(plan.numEvicted).toBe(5);
    p.applyCompaction(plan);
    expect(p.numCached).toBe(3);
    expect(p.numEvictions).toBe(5);
    expect(p.lookup("h0", "root", [0], 0)!.id).toBe(0);
    expect(p.lookup("h6", "root", [6], 0)!.id).toBe(plan.mapping[6]);
    expect(p.lookup("h7", "root", [7], 0)!.id).toBe(plan.mapping[7]);
    for (const h of [1, 2, 3, 4, 5]) expect(p.lookup(`h${h}`, "root", [h], 0)).toBeUndefined();
    // The survivors keep their LRU order at the back of the free queue.
    expect(p.freeQueueIds()).toEqual([plan.mapping[6], plan.mapping[7]]);
    // Reusing a cached block still evicts it (and counts it).
    p.allocate(1);
    expect(p.lookup("h6", "root", [6], 0)).toBeUndefined();
    expect(p.numEvictions).toBe(6);
  });

  it("grows: old ids stay, new blocks are free at the front", () => {
    const p = new BlockPool(2);
    const [a] = p.allocate(1) as [KVBlock];
    const plan = p.planCompaction(5);
    expect(plan.numMoved).toBe(0);
    expect(Array.from(plan.source)).toEqual([0, -1, -1, -1, -1]);
    p.applyCompaction(plan);
    expect(p.numBlocks).toBe(5);
    expect(a.id).toBe(0);
    expect(p.numFree).toBe(4);
    expect(ids(p.allocate(4)).sort()).toEqual([1, 2, 3, 4]);
  });

  it("refuses a size below the referenced blocks, naming the counts, and a stale plan", () => {
    const p = new BlockPool(6);
    p.allocate(4);
    expect(() => p.planCompaction(3)).toThrow(/cannot compact to 3 blocks: requests hold 4 of the 6/);
    expect(() => p.planCompaction(0)).toThrow(/positive integer block count, got 0/);
    const plan = p.planCompaction(4);
    p.applyCompaction(plan);
    expect(() => p.applyCompaction(plan)).toThrow(/planned for 6 blocks applied to 4/);
  });

  it("counts unused token slots (internal fragmentation), shared prefix blocks once", () => {
    const kv = new KVCacheManager({ numBlocks: 16, blockSize: 4 });
    const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const a = request("a", prompt);
    kv.allocateSlots(a, 10); // 3 blocks, 12 slots, 10 tokens
    expect(kv.numUnusedSlots).toBe(2);
    a.numComputedTokens = 10;
    kv.cacheComputedBlocks(a);
    // b shares a's two full blocks (8 tokens) and gets one block of its own for the last 2.
    const b = request("b", prompt);
    const hit = kv.getComputedBlocks(b);
    expect(hit.numTokens).toBe(8);
    kv.allocateSlots(b, 2, hit);
    expect(kv.numUnusedSlots).toBe(4);
    // a grows by 3 tokens: its third block fills (12), a fourth holds 1 of 4.
    a.appendOutputToken(11, 64);
    a.appendOutputToken(12, 64);
    a.appendOutputToken(13, 64);
    kv.allocateSlots(a, 3);
    expect(kv.numUnusedSlots).toBe(3 + 2);
    kv.free(a);
    kv.free(b);
    expect(kv.numUnusedSlots).toBe(0);
    expect(kv.numBlocksFree).toBe(16);
  });
});
