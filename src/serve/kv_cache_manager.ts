// kv_cache_manager.ts: the block table of each request: which blocks hold its K/V, how many more it
// needs for the next tokens, which of its full blocks can be reused from or offered to the prefix
// cache. It owns the mapping request -> blocks; the blocks themselves are block_pool.ts, the hashes
// prefix_cache.ts, and when a request runs (or is preempted) is the scheduler's call.

import { BlockPool, type KVBlock } from "./block_pool.js";
import { type BlockHash, PrefixCacheCounters, type PrefixCacheStats, ensureBlockHashes, rootHash } from "./prefix_cache.js";
import type { Request } from "./request.js";

export interface KVCacheConfig {
  readonly numBlocks: number;
  /** Tokens per block. */
  readonly blockSize: number;
  /** Default true. */
  readonly enablePrefixCaching?: boolean;
  /** Folded into every block hash: the model name and version, so two models never share blocks. */
  readonly namespace?: string;
}

/** The longest cached prefix of a request: blocks to reuse and the tokens they cover. */
export interface ComputedBlocks {
  readonly blockIds: readonly number[];
  readonly numTokens: number;
}

const NO_HIT: ComputedBlocks = { blockIds: [], numTokens: 0 };

export class KVCacheManager {
  readonly pool: BlockPool;
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  private readonly root: BlockHash;
  private readonly tables = new Map<string, KVBlock[]>();
  /** Per request: how many leading blocks of its table are known to the prefix cache. */
  private readonly numCachedBlocks = new Map<string, number>();
  /** Per request: the tokens its slots were last allocated for (the rest of its last block is unused). */
  private readonly numSlotTokens = new Map<string, number>();
  private readonly counters = new PrefixCacheCounters();

  constructor(config: KVCacheConfig) {
    if (!Number.isInteger(config.blockSize) || config.blockSize < 1) throw new Error(`kv cache: blockSize must be a positive integer, got ${config.blockSize}`);
    this.pool = new BlockPool(config.numBlocks);
    this.blockSize = config.blockSize;
    this.enablePrefixCaching = config.enablePrefixCaching ?? true;
    this.root = rootHash(config.namespace ?? "");
  }

  get numBlocksFree(): number {
    return this.pool.numFree;
  }

  get usage(): number {
    return this.pool.usage;
  }

  get prefixCacheStats(): PrefixCacheStats {
    return this.counters.snapshot();
  }

  blockIds(reqId: string): number[] {
    return (this.tables.get(reqId) ?? []).map((b) => b.id);
  }

  /**
   * Internal fragmentation: token slots of held blocks that no token of their request fills (the tail
   * of each request's last block). NOTE: a block shared through the prefix cache is full, so no slot is counted twice.
   */
  get numUnusedSlots(): number {
    let n = 0;
    for (const [id, table] of this.tables) n += table.length * this.blockSize - (this.numSlotTokens.get(id) ?? 0);
    return n;
  }

  /** Requests that hold blocks. */
  reqIds(): IterableIterator<string> {
    return this.tables.keys();
  }

  /**
   * The longest run of cached full blocks at the start of req's tokens (req holds no blocks yet).
   * NOTE: at most numTokens - 1 tokens: the last token must be computed so the runner has logits.
   */
  getComputedBlocks(req: Request): ComputedBlocks {
    if (!this.enablePrefixCaching) return NO_HIT;
    if (this.tables.has(req.reqId)) throw new Error(`kv cache: getComputedBlocks(${req.reqId}) while it holds blocks`);
    const hashes = ensureBlockHashes(req, this.blockSize, this.root);
    const maxBlocks = Math.floor((req.numTokens - 1) / this.blockSize);
    const blockIds: number[] = [];
    for (let i = 0; i < maxBlocks; i++) {
      const hit = this.pool.lookup(hashes[i]!, i === 0 ? this.root : hashes[i - 1]!, req.allTokenIds, i * this.blockSize);
      if (hit === undefined) break;
      blockIds.push(hit.id);
    }
    return { blockIds, numTokens: blockIds.length * this.blockSize };
  }

  /**
   * Grow req's block table to hold numNewTokens more tokens after its computed ones (after `computed`,
   * the prefix hit from getComputedBlocks, when given: those blocks are taken first). The last
   * numLookahead of them are speculative draft tokens beyond req's tokens (vLLM's lookahead slots).
   * Returns the ids appended to the table, or null (nothing changed) when the pool is short.
   */
  allocateSlots(req: Request, numNewTokens: number, computed: ComputedBlocks = NO_HIT, numLookahead = 0): number[] | null {
    if (!Number.isInteger(numNewTokens) || numNewTokens < 1) throw new Error(`kv cache: allocateSlots(${req.reqId}) needs numNewTokens >= 1, got ${numNewTokens}`);
    const table = this.tables.get(req.reqId) ?? [];
    if (computed.blockIds.length > 0 && (table.length > 0 || req.numComputedTokens > 0)) {
      throw new Error(`kv cache: ${req.reqId} got a prefix hit while it already has ${table.length} blocks and ${req.numComputedTokens} computed tokens`);
    }
    const hits = computed.blockIds.map((id) => this.pool.block(id));
    const numTotalTokens = req.numComputedTokens + computed.numTokens + numNewTokens;
    if (numTotalTokens - numLookahead > req.numTokens) throw new Error(`kv cache: ${req.reqId} asks for slots up to token ${numTotalTokens}, it has ${req.numTokens}`);
    const numNewBlocks = Math.max(0, Math.ceil(numTotalTokens / this.blockSize) - table.length - hits.length);
    // NOTE: a hit block with no references sits in the free queue; taking it leaves one fewer to allocate.
    const numFreeHits = hits.reduce((n, b) => n + (b.refCount === 0 ? 1 : 0), 0);
    if (numNewBlocks > this.pool.numFree - numFreeHits) return null;

    this.pool.touch(hits);
    const fresh = this.pool.allocate(numNewBlocks);
    table.push(...hits, ...fresh);
    this.tables.set(req.reqId, table);
    this.numSlotTokens.set(req.reqId, numTotalTokens);
    if (this.enablePrefixCaching && computed.blockIds.length > 0) this.numCachedBlocks.set(req.reqId, hits.length);
    if (this.enablePrefixCaching && req.numComputedTokens === 0) this.counters.record(req.numTokens, computed.numTokens);
    return [...hits, ...fresh].map((b) => b.id);
  }

  /**
   * Would allocateSlots(req, numNewTokens, computed) succeed if `released` requests freed their blocks
   * first? Counts only blocks no other request holds, and hit blocks that would become free.
   */
  fitsAfterFreeing(req: Request, numNewTokens: number, computed: ComputedBlocks, released: readonly Request[]): boolean {
    const held = new Map<KVBlock, number>();
    for (const r of released) for (const b of this.tables.get(r.reqId) ?? []) held.set(b, (held.get(b) ?? 0) + 1);
    let free = this.pool.numFree;
    for (const [b, k] of held) if (b.refCount === k) free++;
    const hits = computed.blockIds.map((id) => this.pool.block(id));
    for (const b of hits) if (b.refCount === (held.get(b) ?? 0)) free--;
    const numTokens = req.numComputedTokens + computed.numTokens + numNewTokens;
    const numHeld = (this.tables.get(req.reqId)?.length ?? 0) + hits.length;
    return Math.ceil(numTokens / this.blockSize) - numHeld <= free;
  }

  /**
   * Offer req's full blocks whose tokens are all computed to the prefix cache.
   * NOTE: called after the runner wrote them, never at allocation: a block is a hit only once its K/V exist.
   */
  cacheComputedBlocks(req: Request): void {
    if (!this.enablePrefixCaching) return;
    const table = this.tables.get(req.reqId);
    if (table === undefined) return;
    const numFull = Math.floor(req.numComputedTokens / this.blockSize);
    const start = this.numCachedBlocks.get(req.reqId) ?? 0;
    if (numFull <= start) return;
    const hashes = ensureBlockHashes(req, this.blockSize, this.root);
    for (let i = start; i < numFull; i++) {
      const tokenIds = req.allTokenIds.slice(i * this.blockSize, (i + 1) * this.blockSize);
      this.pool.cache(table[i]!, { hash: hashes[i]!, parentHash: i === 0 ? this.root : hashes[i - 1]!, tokenIds });
    }
    this.numCachedBlocks.set(req.reqId, numFull);
  }

  /**
   * Release all of req's blocks. NOTE: last block first, so that among equally old cached blocks the
   * tail of a sequence is evicted before its head (a head block is shared by more prefixes).
   */
  free(req: Request): void {
    const table = this.tables.get(req.reqId);
    this.tables.delete(req.reqId);
    this.numCachedBlocks.delete(req.reqId);
    this.numSlotTokens.delete(req.reqId);
    if (table !== undefined) this.pool.free(table.slice().reverse());
  }
}
