// block_pool.ts: the paged KV cache's blocks as bookkeeping: a fixed number of blocks, each with an
// id, a reference count and (once full and computed) the content it caches; a free queue that hands
// out the least useful block first; the hash -> block map of cached blocks. It does not know about
// requests (kv_cache_manager.ts), hashing (prefix_cache.ts) or the tensors that hold the K/V values
// (the model runner indexes those with the block ids handed out here).
//
// Free queue order, front (taken first) to back:
//   blocks that cache nothing | cached but unreferenced blocks, least recently freed first
// NOTE: a freed block that caches nothing goes to the front: reusing it loses nothing, while a
// cached one may still be a prefix hit. Cached blocks go to the back, so eviction is LRU.
//
// Compaction (planCompaction, then applyCompaction once the K/V rows were copied) renumbers the blocks
// into [0, n): referenced blocks always survive, then as many free cached blocks as fit (most recently
// freed first), the rest of the cached ones are evicted. A block below n keeps its id; a surviving one
// at or above n moves down into a free id below n. Block objects survive renumbering, so the request
// tables of kv_cache_manager.ts (which hold the objects) and the hash map stay valid as they are.

import type { BlockContent, BlockHash } from "./prefix_cache.js";

/** One KV block. Fields are changed by the pool only; read them, never write them. */
export class KVBlock {
  refCount = 0;
  /** Set while the block caches a full block of tokens (kept while free, until reused). */
  content: BlockContent | null = null;
  /** @internal free queue links; null when not in the queue (refCount > 0). */
  prev: KVBlock | null = null;
  /** @internal */
  next: KVBlock | null = null;

  /** NOTE: not readonly: compaction renumbers a block that moves down (the pool only). */
  constructor(public id: number) {}
}

/** What a compaction to numBlocks does, planned before any K/V row moves. */
export interface CompactionPlan {
  readonly fromBlocks: number;
  readonly numBlocks: number;
  /** Per old block id: its new id, or -1 when it does not survive. */
  readonly mapping: Int32Array;
  /** Per new block id: the old block whose K/V rows it takes, or -1 (free: its rows are never read). */
  readonly source: Int32Array;
  /** Surviving blocks that change id (their K/V rows move). */
  readonly numMoved: number;
  /** Free cached blocks that do not fit and lose their content (prefix-cache evictions). */
  readonly numEvicted: number;
}

/** Where the pool's blocks sit, for the fragmentation metrics. */
export interface PoolLayout {
  readonly numBlocks: number;
  /** Blocks referenced by some request. */
  readonly numLive: number;
  /** Highest referenced block id, -1 when none is. */
  readonly highestLive: number;
  /** Free blocks above the highest referenced one: what a shrink can release without moving anything. */
  readonly numTailFree: number;
  /** Free blocks below the highest referenced one: what compaction moves live blocks into. */
  readonly numHoles: number;
}

/** Doubly linked list of free blocks with sentinels: O(1) push at either end, pop, and remove from the middle. */
class FreeBlockQueue {
  private readonly head = new KVBlock(-1);
  private readonly tail = new KVBlock(-1);
  length = 0;

  constructor() {
    this.head.next = this.tail;
    this.tail.prev = this.head;
  }

  popFront(): KVBlock {
    const b = this.head.next!;
    if (b === this.tail) throw new Error("block pool: the free queue is empty");
    this.remove(b);
    return b;
  }

  pushBack(b: KVBlock): void {
    this.insertAfter(this.tail.prev!, b);
  }

  pushFront(b: KVBlock): void {
    this.insertAfter(this.head, b);
  }

  remove(b: KVBlock): void {
    b.prev!.next = b.next;
    b.next!.prev = b.prev;
    b.prev = b.next = null;
    this.length--;
  }

  blocks(): KVBlock[] {
    const out: KVBlock[] = [];
    for (let b = this.head.next!; b !== this.tail; b = b.next!) out.push(b);
    return out;
  }

  private insertAfter(at: KVBlock, b: KVBlock): void {
    b.prev = at;
    b.next = at.next;
    at.next!.prev = b;
    at.next = b;
    this.length++;
  }
}

export class BlockPool {
  private blocks: KVBlock[];
  private readonly freeQueue = new FreeBlockQueue();
  private readonly cached = new Map<BlockHash, KVBlock>();
  private evictions = 0;

  constructor(numBlocks: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new Error(`block pool: numBlocks must be a positive integer, got ${numBlocks}`);
    this.blocks = Array.from({ length: numBlocks }, (_, id) => new KVBlock(id));
    for (const b of this.blocks) this.freeQueue.pushBack(b);
  }

  /** Blocks in the pool (changes only by applyCompaction). */
  get numBlocks(): number {
    return this.blocks.length;
  }

  layout(): PoolLayout {
    let numLive = 0;
    let highestLive = -1;
    for (const b of this.blocks) {
      if (b.refCount === 0) continue;
      numLive++;
      highestLive = b.id;
    }
    const numBlocks = this.blocks.length;
    return { numBlocks, numLive, highestLive, numTailFree: numBlocks - 1 - highestLive, numHoles: highestLive + 1 - numLive };
  }

  /**
   * Plan renumbering the pool into numBlocks blocks (fewer or more than now); nothing changes yet.
   * Throws when the referenced blocks alone need more.
   */
  planCompaction(numBlocks: number): CompactionPlan {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new Error(`block pool: compaction needs a positive integer block count, got ${numBlocks}`);
    const live = this.blocks.filter((b) => b.refCount > 0);
    if (live.length > numBlocks) {
      throw new Error(`block pool: cannot compact to ${numBlocks} blocks: requests hold ${live.length} of the ${this.blocks.length} (retry when fewer are running)`);
    }
    const cachedFree = this.freeQueueBlocks().filter((b) => b.content !== null);
    const room = numBlocks - live.length;
    const keep = new Set([...live, ...cachedFree.slice(Math.max(0, cachedFree.length - room))]);
    const mapping = new Int32Array(this.blocks.length).fill(-1);
    const source = new Int32Array(numBlocks).fill(-1);
    const holes: number[] = [];
    for (let id = 0; id < numBlocks; id++) if (id >= this.blocks.length || !keep.has(this.blocks[id]!)) holes.push(id);
    let numMoved = 0;
    for (const b of this.blocks) {
      if (!keep.has(b)) continue;
      const to = b.id < numBlocks ? b.id : holes[numMoved++]!;
      mapping[b.id] = to;
      source[to] = b.id;
    }
    return { fromBlocks: this.blocks.length, numBlocks, mapping, source, numMoved, numEvicted: cachedFree.length + live.length - keep.size };
  }

  /** Renumber the blocks as planned (after their K/V rows were copied); the pool must not have changed since the plan. */
  applyCompaction(plan: CompactionPlan): void {
    if (plan.fromBlocks !== this.blocks.length) throw new Error(`block pool: a compaction planned for ${plan.fromBlocks} blocks applied to ${this.blocks.length}`);
    const order = this.freeQueueBlocks();
    for (const b of order) this.freeQueue.remove(b);
    const next: KVBlock[] = new Array(plan.numBlocks);
    for (const b of this.blocks) {
      const to = plan.mapping[b.id]!;
      if (to < 0) {
        if (b.refCount > 0) throw new Error(`block pool: compaction drops block ${b.id}, which ${b.refCount} request(s) hold`);
        if (b.content !== null) {
          this.cached.delete(b.content.hash);
          b.content = null;
          this.evictions++;
        }
        continue;
      }
      b.id = to;
      next[to] = b;
    }
    for (let id = 0; id < plan.numBlocks; id++) next[id] ??= new KVBlock(id);
    this.blocks = next;
    // Free queue: empty blocks first, then the surviving cached ones in their old (LRU) order.
    for (const b of next) if (b.refCount === 0 && b.content === null) this.freeQueue.pushBack(b);
    for (const b of order) if (b.content !== null) this.freeQueue.pushBack(b);
  }

  /** Blocks with refCount 0 (cached ones included: they are evicted on demand). */
  get numFree(): number {
    return this.freeQueue.length;
  }

  /** Fraction of blocks referenced by some request, in [0, 1]. */
  get usage(): number {
    return 1 - this.freeQueue.length / this.numBlocks;
  }

  /** How many cached blocks were reused for new content so far. */
  get numEvictions(): number {
    return this.evictions;
  }

  /** Number of blocks that currently cache content (referenced or not). */
  get numCached(): number {
    return this.cached.size;
  }

  block(id: number): KVBlock {
    const b = this.blocks[id];
    if (b === undefined) throw new Error(`block pool: no block ${id} (the pool has ${this.numBlocks})`);
    return b;
  }

  /** Free queue block ids, front (next to be reused) first. */
  freeQueueIds(): number[] {
    return this.freeQueue.blocks().map((b) => b.id);
  }

  private freeQueueBlocks(): KVBlock[] {
    return this.freeQueue.blocks();
  }

  /** Take n blocks from the front of the free queue, evicting what they cached; each gets refCount 1. */
  allocate(n: number): KVBlock[] {
    if (n > this.freeQueue.length) throw new Error(`block pool: asked for ${n} blocks, ${this.freeQueue.length} of ${this.numBlocks} are free`);
    const out: KVBlock[] = [];
    for (let i = 0; i < n; i++) {
      const b = this.freeQueue.popFront();
      if (b.content !== null) {
        this.cached.delete(b.content.hash);
        b.content = null;
        this.evictions++;
      }
      b.refCount = 1;
      out.push(b);
    }
    return out;
  }

  /** Drop one reference from each block, in order; a block that reaches 0 joins the free queue (see the file comment). */
  free(blocks: readonly KVBlock[]): void {
    for (const b of blocks) {
      if (b.refCount <= 0) throw new Error(`block pool: block ${b.id} freed with refCount ${b.refCount}`);
      b.refCount--;
      if (b.refCount === 0) {
        if (b.content === null) this.freeQueue.pushFront(b);
        else this.freeQueue.pushBack(b);
      }
    }
  }

  /** Add a reference to each block (a prefix hit); an unreferenced one leaves the free queue. */
  touch(blocks: readonly KVBlock[]): void {
    for (const b of blocks) {
      if (b.refCount === 0) this.freeQueue.remove(b);
      b.refCount++;
    }
  }

  /**
   * Record that a referenced block now holds `content`. Returns false (and records nothing) when another
   * block already caches the same hash: two requests computed the same block; the first copy serves hits.
   */
  cache(b: KVBlock, content: BlockContent): boolean {
    if (b.refCount === 0) throw new Error(`block pool: block ${b.id} cached while free`);
    if (b.content !== null) throw new Error(`block pool: block ${b.id} already caches ${b.content.hash}`);
    if (this.cached.has(content.hash)) return false;
    b.content = content;
    this.cached.set(content.hash, b);
    return true;
  }

  /** The block caching this exact content (hash, parent hash and token ids all equal), if any. */
  lookup(hash: BlockHash, parentHash: BlockHash, tokenIds: ArrayLike<number>, start: number): KVBlock | undefined {
    const b = this.cached.get(hash);
    if (b === undefined) return undefined;
    const c = b.content!;
    if (c.parentHash !== parentHash) return undefined;
    for (let i = 0; i < c.tokenIds.length; i++) if (c.tokenIds[i] !== tokenIds[start + i]) return undefined;
    return b;
  }
}
