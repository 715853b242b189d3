// Block pool: exact block ids, refcounts and free-queue order after allocate / free / touch / cache.

import { describe, expect, it } from "vitest";
import { BlockPool, type KVBlock } from "../../src/serve/block_pool.js";
import type { BlockContent } from "../../src/serve/prefix_cache.js";

const ids = (bs: readonly KVBlock[]) => bs.map((b) => b.id);
const refs = (p: BlockPool) => Array.from({ length: p.numBlocks }, (_, i) => p.block(i).refCount);
const content = (hash: string, tokens: number[], parentHash = "root"): BlockContent => ({ hash, parentHash, tokenIds: tokens });

describe("BlockPool", () => {
  it("allocates from the front in id order and frees to the back", () => {
    const p = new BlockPool(6);
    expect(p.numFree).toBe(6);
    const a = p.allocate(2);
    const b = p.allocate(3);
    expect(ids(a)).toEqual([0, 1]);
    expect(ids(b)).toEqual([2, 3, 4]);
    expect(refs(p)).toEqual([1, 1, 1, 1, 1, 0]);
    expect(p.numFree).toBe(1);
    expect(p.usage).toBeCloseTo(5 / 6);
    // Uncached blocks freed go to the front (nothing to keep), in the order given.
    p.free(a);
    expect(p.freeQueueIds()).toEqual([1, 0, 5]);
    expect(refs(p)).toEqual([0, 0, 1, 1, 1, 0]);
    expect(ids(p.allocate(2))).toEqual([1, 0]);
    p.free(b);
    p.free([p.block(0), p.block(1)]);
    expect(p.numFree).toBe(6);
    expect(p.usage).toBe(0);
  });

  it("touch adds references and takes a free block out of the queue", () => {
    const p = new BlockPool(4);
    const [b0, b1] = p.allocate(2) as [KVBlock, KVBlock];
    p.touch([b0]);
    expect(refs(p)).toEqual([2, 1, 0, 0]);
    p.free([b0, b1]);
    expect(refs(p)).toEqual([1, 0, 0, 0]);
    expect(p.freeQueueIds()).toEqual([1, 2, 3]);
    p.touch([b1]);
    expect(refs(p)).toEqual([1, 1, 0, 0]);
    expect(p.freeQueueIds()).toEqual([2, 3]);
    p.free([b0, b1]);
    expect(p.numFree).toBe(4);
  });

  it("keeps a freed cached block's content, serves hits from it, evicts it LRU when reused", () => {
    const p = new BlockPool(4);
    const [b0, b1, b2] = p.allocate(3) as [KVBlock, KVBlock, KVBlock];
    expect(p.cache(b0, content("h0", [1, 2]))).toBe(true);
    expect(p.cache(b1, content("h1", [3, 4], "h0"))).toBe(true);
    expect(p.numCached).toBe(2);
    // b1 freed before b0: b1 is the least recently used cached block. b2 caches nothing: front.
    p.free([b1]);
    p.free([b0]);
    p.free([b2]);
    expect(p.freeQueueIds()).toEqual([2, 3, 1, 0]);
    expect(p.block(0).content?.hash).toBe("h0");
    expect(p.lookup("h0", "root", [1, 2], 0)?.id).toBe(0);
    expect(p.lookup("h1", "h0", [9, 3, 4], 1)?.id).toBe(1);
    // Three blocks: the two uncached ones, then the LRU cached one (1), whose hash leaves the map.
    expect(ids(p.allocate(3))).toEqual([2, 3, 1]);
    expect(p.numEvictions).toBe(1);
    expect(p.block(1).content).toBeNull();
    expect(p.lookup("h1", "h0", [3, 4], 0)).toBeUndefined();
    expect(p.lookup("h0", "root", [1, 2], 0)?.id).toBe(0);
    expect(p.numCached).toBe(1);
  });

  it("a lookup verifies parent hash and tokens, not just the hash", () => {
    const p = new BlockPool(2);
    const [b] = p.allocate(1) as [KVBlock];
    p.cache(b, content("h", [5, 6], "parent"));
    expect(p.lookup("h", "parent", [5, 6], 0)?.id).toBe(0);
    expect(p.lookup("h", "parent", [5, 7], 0)).toBeUndefined();
    expect(p.lookup("h", "other", [5, 6], 0)).toBeUndefined();
  });

  it("the first block to cache a hash serves it; a duplicate stays uncached", () => {
    const p = new BlockPool(3);
    const [a, b] = p.allocate(2) as [KVBlock, KVBlock];
    expect(p.cache(a, content("h", [1]))).toBe(true);
    expect(p.cache(b, content("h", [1]))).toBe(false);
    expect(b.content).toBeNull();
    p.free([a, b]);
    expect(p.freeQueueIds()).toEqual([1, 2, 0]);
  });

  it("rejects misuse with errors that name the block", () => {
    const p = new BlockPool(2);
    expect(() => p.allocate(3)).toThrow(/asked for 3 blocks, 2 of 2 are free/);
    const [b] = p.allocate(1) as [KVBlock];
    p.free([b]);
    expect(() => p.free([b])).toThrow(/block 0 freed with refCount 0/);
    expect(() => p.cache(b, content("h", [1]))).toThrow(/block 0 cached while free/);
    expect(() => p.block(7)).toThrow(/no block 7/);
    expect(() => new BlockPool(0)).toThrow(/positive integer/);
  });
});
