// prefix_cache.ts: what identifies a full KV block's contents for prefix caching: a 64-bit FNV-1a
// hash chained over the parent block's hash and the block's token ids, rooted in a namespace (the
// model name and version), plus the hit-rate counters. It does not hold blocks or decide eviction
// (block_pool.ts) and does not choose which blocks of a request to cache (kv_cache_manager.ts).
//
// NOTE: a hash is only an index. The pool keeps each cached block's parent hash and token ids and a
// lookup compares them, so a collision between two different blocks is never a hit. What is left is
// a collision of two different *parents* whose children have equal tokens: that needs two prefixes
// with the same 64-bit hash, about 2^-64 per pair of distinct prefixes.

import type { Request } from "./request.js";

/** 16 lowercase hex digits: a FNV-1a 64 state. */
export type BlockHash = string;

/** What a cached block must match besides its hash: its parent's hash and its own tokens. */
export interface BlockContent {
  readonly hash: BlockHash;
  readonly parentHash: BlockHash;
  readonly tokenIds: readonly number[];
}

const OFFSET_HI = 0xcbf29ce4;
const OFFSET_LO = 0x84222325;
const TWO_32 = 4294967296;

/**
 * FNV-1a 64 over bytes, with the 64-bit state as two uint32 halves.
 * NOTE: the prime is 2^40 + 0x1b3, so x * prime mod 2^64 = x * 0x1b3 + (lo << 40): every product
 * stays below 2^42 and is exact in a double; `>>> 0` reduces mod 2^32. No BigInt on the hot path.
 */
class Fnv64 {
  hi = OFFSET_HI;
  lo = OFFSET_LO;

  byte(b: number): void {
    const lo = (this.lo ^ b) >>> 0;
    const t = lo * 0x1b3;
    this.hi = (this.hi * 0x1b3 + Math.floor(t / TWO_32) + ((lo << 8) >>> 0)) >>> 0;
    this.lo = t >>> 0;
  }

  /** A uint32, little-endian. */
  word(w: number): void {
    this.byte(w & 0xff);
    this.byte((w >>> 8) & 0xff);
    this.byte((w >>> 16) & 0xff);
    this.byte(w >>> 24);
  }

  hex(): BlockHash {
    return this.hi.toString(16).padStart(8, "0") + this.lo.toString(16).padStart(8, "0");
  }
}

/** FNV-1a 64 of a byte string (the reference vectors are defined over bytes). */
export function fnv1a64(bytes: ArrayLike<number>): BlockHash {
  const h = new Fnv64();
  for (let i = 0; i < bytes.length; i++) h.byte(bytes[i]!);
  return h.hex();
}

/** The parent hash of a sequence's first block: the namespace's UTF-8 bytes, hashed. */
export function rootHash(namespace: string): BlockHash {
  return fnv1a64(new TextEncoder().encode(namespace));
}

/** Hash of tokenIds[start, end) chained onto parent. Token ids must be integers in [0, 2^32). */
export function hashBlock(parent: BlockHash, tokenIds: ArrayLike<number>, start: number, end: number): BlockHash {
  const h = new Fnv64();
  h.word(parseInt(parent.slice(0, 8), 16));
  h.word(parseInt(parent.slice(8), 16));
  for (let i = start; i < end; i++) h.word(tokenIds[i]!);
  return h.hex();
}

/**
 * Extend req.blockHashes to cover every full block of its tokens and return it. Hashes already there
 * stay (a request's tokens only grow), so each block is hashed once per request, preemptions included.
 */
export function ensureBlockHashes(req: Request, blockSize: number, root: BlockHash): readonly BlockHash[] {
  const hashes = req.blockHashes;
  const tokens = req.allTokenIds;
  const numFull = Math.floor(tokens.length / blockSize);
  for (let i = hashes.length; i < numFull; i++) {
    hashes.push(hashBlock(i === 0 ? root : hashes[i - 1]!, tokens, i * blockSize, (i + 1) * blockSize));
  }
  return hashes;
}

/** Prefix-cache counters, in tokens: a query is a request admitted with caching on. */
export interface PrefixCacheStats {
  readonly requests: number;
  readonly queriedTokens: number;
  readonly hitTokens: number;
  /** hitTokens / queriedTokens (0 before the first query). */
  readonly hitRate: number;
}

export class PrefixCacheCounters {
  private requests = 0;
  private queried = 0;
  private hits = 0;

  record(numTokens: number, numHitTokens: number): void {
    this.requests++;
    this.queried += numTokens;
    this.hits += numHitTokens;
  }

  snapshot(): PrefixCacheStats {
    return {
      requests: this.requests,
      queriedTokens: this.queried,
      hitTokens: this.hits,
      hitRate: this.queried === 0 ? 0 : this.hits / this.queried,
    };
  }
}
