// Prefix caching: the chained FNV-1a 64 block hash, and the KV cache manager's block tables with
// prefix hits: exact block ids and refcounts while requests share blocks, after they finish, and
// after the cached blocks are evicted.

import { describe, expect, it } from "vitest";
import { KVCacheManager } from "../../src/serve/kv_cache_manager.js";
import { ensureBlockHashes, fnv1a64, hashBlock, rootHash } from "../../src/serve/prefix_cache.js";
import { Request, type RequestParams } from "../../src/serve/request.js";

let seq = 0;
function req(reqId: string, promptTokenIds: number[], extra: Partial<RequestParams> = {}): Request {
  return new Request({ reqId, promptTokenIds, maxTokens: 16, ...extra }, { tier: "standard", priority: 0, arrivalTime: 0, deadline: Infinity, seq: seq++ });
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

/** Reference FNV-1a 64 in BigInt. */
function fnvRef(bytes: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
}

describe("block hash", () => {
  it("is FNV-1a 64 (published vectors and a BigInt reference)", () => {
    const enc = new TextEncoder();
    expect(fnv1a64(enc.encode(""))).toBe("cbf29ce484222325");
    expect(fnv1a64(enc.encode("a"))).toBe("af63dc4c8601ec8c");
    expect(fnv1a64(enc.encode("foobar"))).toBe("85944171f73967e8");
    let x = 12345;
    for (let n = 0; n < 50; n++) {
      const bytes = new Uint8Array(n * 7).map(() => ((x = (x * 1103515245 + 12345) >>> 0) >>> 24));
      expect(fnv1a64(bytes)).toBe(fnvRef(bytes));
    }
  });

  it("chains over the parent, covers every token and the namespace", () => {
    const root = rootHash("stories260K@1");
    const h = hashBlock(root, [1, 2, 3, 4], 0, 4);
    expect(hashBlock(root, [9, 1, 2, 3, 4], 1, 5)).toBe(h);
    expect(hashBlock(rootHash("stories260K@2"), [1, 2, 3, 4], 0, 4)).not.toBe(h);
    expect(hashBlock(root, [1, 2, 3, 5], 0, 4)).not.toBe(h);
    expect(hashBlock(root, [1, 2, 4, 3], 0, 4)).not.toBe(h);
    expect(hashBlock(h, [1, 2, 3, 4], 0, 4)).not.toBe(h);
    expect(hashBlock(root, [2 ** 32 - 1], 0, 1)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("hashes each full block of a request once, extending as tokens arrive", () => {
    const root = rootHash("");
    const r = req("a", range(1, 10));
    const hs = ensureBlockHashes(r, 4, root);
    expect(hs).toEqual([hashBlock(root, r.allTokenIds, 0, 4), hashBlock(hs[0]!, r.allTokenIds, 4, 8)]);
    r.appendOutputToken(77, 100);
    r.appendOutputToken(78, 100);
    r.appendOutputToken(79, 100);
    expect(ensureBlockHashes(r, 4, root)).toHaveLength(3);
    expect(hs[2]).toBe(hashBlock(hs[1]!, [9, 77, 78, 79], 0, 4));
  });
});

describe("KVCacheManager", () => {
  const refs = (kv: KVCacheManager, ids: number[]) => ids.map((i) => kv.pool.block(i).refCount);

  it("allocates block tables and returns null (changing nothing) when the pool is short", () => {
    const kv = new KVCacheManager({ numBlocks: 4, blockSize: 4 });
    const a = req("a", range(1, 11));
    expect(kv.allocateSlots(a, 10)).toEqual([0, 1, 2]);
    a.numComputedTokens = 10;
    const b = req("b", range(1, 9));
    expect(kv.allocateSlots(b, 8)).toBeNull(); // needs 2 blocks, 1 is free
    expect(kv.blockIds("b")).toEqual([]);
    expect(kv.numBlocksFree).toBe(1);
    a.appendOutputToken(50, 100);
    a.appendOutputToken(51, 100);
    expect(kv.allocateSlots(a, 2)).toEqual([]); // tokens 11 and 12 fit in block 2
    a.numComputedTokens = 12;
    a.appendOutputToken(52, 100);
    expect(kv.allocateSlots(a, 1)).toEqual([3]);
    expect(kv.blockIds("a")).toEqual([0, 1, 2, 3]);
    expect(kv.numBlocksFree).toBe(0);
    expect(kv.usage).toBe(1);
    expect(() => kv.allocateSlots(a, 0)).toThrow(/numNewTokens >= 1/);
    expect(() => kv.allocateSlots(a, 2)).toThrow(/asks for slots up to token 14, it has 13/);
    kv.free(a);
    expect(kv.numBlocksFree).toBe(4);
  });

  it("reuses the full blocks of a shared prefix: refcount 2 while both run, kept after, evicted when needed", () => {
    const kv = new KVCacheManager({ numBlocks: 8, blockSize: 4, namespace: "m@1" });
    const a = req("a", range(1, 11)); // 10 tokens: blocks [1..4] [5..8] [9 10 _ _]
    expect(kv.getComputedBlocks(a)).toEqual({ blockIds: [], numTokens: 0 });
    expect(kv.allocateSlots(a, 10)).toEqual([0, 1, 2]);
    a.numComputedTokens = 10;
    kv.cacheComputedBlocks(a);
    expect(kv.pool.numCached).toBe(2); // the partial third block is never cached

    const b = req("b", [...range(1, 9), 50, 51, 52]); // shares two full blocks with a
    const hit = kv.getComputedBlocks(b);
    expect(hit).toEqual({ blockIds: [0, 1], numTokens: 8 });
    expect(kv.allocateSlots(b, 3, hit)).toEqual([0, 1, 3]);
    expect(kv.blockIds("b")).toEqual([0, 1, 3]);
    expect(refs(kv, [0, 1, 2, 3])).toEqual([2, 2, 1, 1]);
    expect(kv.numBlocksFree).toBe(4);
    expect(kv.prefixCacheStats).toEqual({ requests: 2, queriedTokens: 21, hitTokens: 8, hitRate: 8 / 21 });

    kv.free(a);
    expect(refs(kv, [0, 1, 2, 3])).toEqual([1, 1, 0, 1]);
    kv.free(b);
    expect(kv.numBlocksFree).toBe(8);
    // Freed last block first; uncached blocks (3, then 2) at the front, cached ones (1 then 0) at the back.
    expect(kv.pool.freeQueueIds()).toEqual([3, 2, 4, 5, 6, 7, 1, 0]);
    expect(kv.pool.block(0).content).not.toBeNull();
    expect(kv.pool.block(1).content).not.toBeNull();

    // Still a hit after both finished: the blocks leave the free queue again.
    const c = req("c", range(1, 13));
    const hitC = kv.getComputedBlocks(c);
    expect(hitC).toEqual({ blockIds: [0, 1], numTokens: 8 });
    expect(kv.allocateSlots(c, 4, hitC)).toEqual([0, 1, 3]);
    expect(refs(kv, [0, 1, 3])).toEqual([1, 1, 1]);
    c.numComputedTokens = 12;
    kv.cacheComputedBlocks(c);
    kv.free(c);
    expect(kv.pool.freeQueueIds()).toEqual([2, 4, 5, 6, 7, 3, 1, 0]);

    // A request that needs every block evicts the cached ones, least recently freed first.
    const d = req("d", range(100, 132));
    expect(kv.getComputedBlocks(d).numTokens).toBe(0);
    expect(kv.allocateSlots(d, 32)).toEqual([2, 4, 5, 6, 7, 3, 1, 0]);
    expect(kv.pool.numEvictions).toBe(3);
    expect(kv.pool.numCached).toBe(0);
    kv.free(d);
    expect(kv.getComputedBlocks(req("e", range(1, 11))).numTokens).toBe(0);
    expect(kv.numBlocksFree).toBe(8);
  });

  it("never reuses the very last token: a fully cached prompt still computes its last block", () => {
    const kv = new KVCacheManager({ numBlocks: 4, blockSize: 4 });
    const a = req("a", range(1, 9));
    kv.allocateSlots(a, 8);
    a.numComputedTokens = 8;
    kv.cacheComputedBlocks(a);
    kv.free(a);
    const b = req("b", range(1, 9)); // the same 8 tokens: 2 cached blocks, only one may be used
    const hit = kv.getComputedBlocks(b);
    expect(hit).toEqual({ blockIds: [0], numTokens: 4 });
    // Block 1 (cached, unreferenced) is the next free one... after uncached ones; here all others are uncached.
    expect(kv.allocateSlots(b, 4, hit)).toEqual([0, 2]);
  });

  it("counts a hit block sitting in the free queue against the free blocks", () => {
    const kv = new KVCacheManager({ numBlocks: 3, blockSize: 2 });
    const a = req("a", [1, 2, 3, 4, 5]);
    kv.allocateSlots(a, 5);
    a.numComputedTokens = 5;
    kv.cacheComputedBlocks(a);
    kv.free(a);
    const b = req("b", [1, 2, 3, 4, 5, 6]);
    const hit = kv.getComputedBlocks(b);
    expect(hit.blockIds).toEqual([0, 1]);
    // 3 free blocks, 2 of them are the hits: 3 more would not fit, 1 does.
    const big = req("big", [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const bigHit = kv.getComputedBlocks(big);
    expect(bigHit.numTokens).toBe(4);
    expect(kv.allocateSlots(big, 5, bigHit)).toBeNull();
    expect(kv.numBlocksFree).toBe(3);
    expect(kv.blockIds("big")).toEqual([]);
    expect(kv.allocateSlots(b, 2, hit)).toEqual([0, 1, 2]);
    kv.free(b);
    expect(kv.numBlocksFree).toBe(3);
  });

  it("fitsAfterFreeing counts only blocks the released requests hold alone", () => {
    const kv = new KVCacheManager({ numBlocks: 6, blockSize: 2 });
    const a = req("a", [1, 2, 3, 4, 5]);
    kv.allocateSlots(a, 5); // blocks 0 1 2
    a.numComputedTokens = 5;
    kv.cacheComputedBlocks(a);
    const b = req("b", [1, 2, 3, 4, 9]);
    kv.allocateSlots(b, 1, kv.getComputedBlocks(b)); // shares 0 1, owns 3
    expect(kv.numBlocksFree).toBe(2);
    const c = req("c", [7, 7, 7, 7, 7, 7, 7, 7, 7]); // needs 5 blocks
    // Releasing b frees block 3 only (0 and 1 are a's too): 3 free. Releasing a and b frees all 4 held: 6.
    expect(kv.fitsAfterFreeing(c, 9, { blockIds: [], numTokens: 0 }, [b])).toBe(false);
    expect(kv.fitsAfterFreeing(c, 9, { blockIds: [], numTokens: 0 }, [a, b])).toBe(true);
    // d needs 4 blocks beyond its 2 hits. Releasing a and b frees 6, but 2 of those are d's hits: 4 left.
    const d = req("d", [1, 2, 3, 4, 8, 8, 8, 8, 8, 8, 8]);
    const hit = kv.getComputedBlocks(d);
    expect(hit.blockIds).toEqual([0, 1]);
    expect(kv.fitsAfterFreeing(d, 7, hit, [a, b])).toBe(true);
    expect(kv.fitsAfterFreeing(d, 7, hit, [b])).toBe(false);
    kv.free(a);
    kv.free(b);
    expect(kv.allocateSlots(d, 7, hit)).toHaveLength(6);
    kv.free(d);
    expect(kv.numBlocksFree).toBe(6);
  });

  it("a forged block with the right hash but other tokens is not a hit", () => {
    const kv = new KVCacheManager({ numBlocks: 4, blockSize: 2, namespace: "x" });
    const root = rootHash("x");
    const b = req("b", [7, 8, 9]);
    const [forged] = kv.pool.allocate(1);
    kv.pool.cache(forged!, { hash: hashBlock(root, [7, 8], 0, 2), parentHash: root, tokenIds: [7, 9] });
    kv.pool.free([forged!]);
    expect(kv.getComputedBlocks(b)).toEqual({ blockIds: [], numTokens: 0 });
  });

  it("caches nothing and reports no queries with prefix caching off", () => {
    const kv = new KVCacheManager({ numBlocks: 4, blockSize: 2, enablePrefixCaching: false });
    const a = req("a", [1, 2, 3, 4, 5]);
    kv.allocateSlots(a, 5);
    a.numComputedTokens = 5;
    kv.cacheComputedBlocks(a);
    kv.free(a);
    expect(kv.pool.numCached).toBe(0);
    expect(kv.getComputedBlocks(req("b", [1, 2, 3, 4, 5])).numTokens).toBe(0);
    expect(kv.prefixCacheStats.requests).toBe(0);
  });
});
