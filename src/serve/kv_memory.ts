// kv_memory.ts: how many KV blocks a model runner gets, and the cache tensors that hold them. The
// count is explicit, or a memory budget (a fraction of the device's memory left after the weights; on
// cpu at most DEFAULT_CPU_KV_BYTES unless the memory is given) divided by a block's bytes, capped at what
// the engine can use (every seat holding a full context) and at the device's largest buffer. One K and one
// V cache per layer, each (numBlocks * blockSize, kvHeads * headDim): row p of block b is row
// b * blockSize + p. It does not decide which request owns which block (block_pool.ts does).

import type { Backend, DType, Tensor } from "../index.js";
import { zeros } from "../index.js";
import { itemsize } from "../core/dtype.js";
import { hostMemoryBytes } from "../core/host.js";
import type { CacheShape } from "../models/kv_cache.js";

export interface KvMemoryOptions {
  /** Use exactly this many blocks (overrides memoryFraction). */
  readonly numBlocks?: number;
  /** Share of the device's memory, after the weights, for the KV cache. Default 0.9 (vLLM's gpu_memory_utilization). */
  readonly memoryFraction?: number;
  /** The device's memory in bytes; default: the host's RAM on cpu, else the backend's largest buffer. */
  readonly deviceMemoryBytes?: number;
}

export interface KvSizing {
  readonly numBlocks: number;
  readonly blockSize: number;
  /** Bytes of one block over all layers, K and V. */
  readonly bytesPerBlock: number;
  /** How the count was reached, for logs. */
  readonly reason: string;
}

/** Bytes one block takes over every layer, K and V. */
export function kvBytesPerBlock(shape: CacheShape, blockSize: number, dtype: DType): number {
  return 2 * shape.layers * blockSize * shape.kvHeads * shape.headDim * itemsize(dtype);
}

/**
 * The KV budget on cpu when no device memory is given (or one request at full length, if more). NOTE: 0.9 of the host's RAM let a 3 MB model
 * whose file claims a 65536-token context take 5.6 GB (64 seats at full length) through the admin API;
 * vLLM's cpu backend reserves a fixed 4 GiB by default (VLLM_CPU_KVCACHE_SPACE), kiln's cpu step serves
 * far smaller models, so a quarter of that.
 */
export const DEFAULT_CPU_KV_BYTES = 1 << 30;

/**
 * NOTE: the backend interface does not report device memory; on cpu the host's RAM is the device's,
 * elsewhere the largest buffer is the one size known to be allocatable (pass deviceMemoryBytes to do better).
 */
function deviceMemory(backend: Backend): number {
  return backend.name === "cpu" ? hostMemoryBytes() : backend.caps.maxBufferBytes;
}

/**
 * The number of KV blocks for a model. `useful` is the most blocks the engine can use (e.g. maxNumSeqs
 * requests of maxModelLen tokens each); `need` the fewest it must have (one request of maxModelLen).
 */
export function sizeKvCache(opts: KvMemoryOptions & {
  readonly backend: Backend;
  readonly shape: CacheShape;
  readonly dtype: DType;
  readonly blockSize: number;
  readonly weightsBytes: number;
  readonly useful: number;
  readonly need: number;
}): KvSizing {
  const { backend, shape, dtype, blockSize, need } = opts;
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`kv cache: blockSize must be a positive integer, got ${blockSize}`);
  const bytesPerBlock = kvBytesPerBlock(shape, blockSize, dtype);
  // One layer's K (or V) cache is one buffer: it must fit the device's largest.
  const perBuffer = bytesPerBlock / (2 * shape.layers);
  const bufferCap = Math.floor(backend.caps.maxBufferBytes / perBuffer);
  let numBlocks: number;
  let reason: string;
  if (opts.numBlocks !== undefined) {
    if (!Number.isInteger(opts.numBlocks) || opts.numBlocks < 1) throw new Error(`kv cache: numBlocks must be a positive integer, got ${opts.numBlocks}`);
    numBlocks = opts.numBlocks;
    reason = "as configured";
    if (numBlocks > bufferCap) throw new Error(`kv cache: ${numBlocks} blocks of ${blockSize} tokens need ${numBlocks * perBuffer} bytes per layer cache, over ${backend.name}'s largest buffer of ${backend.caps.maxBufferBytes} bytes`);
  } else {
    const fraction = opts.memoryFraction ?? 0.9;
    if (!(fraction > 0 && fraction <= 1)) throw new Error(`kv cache: memoryFraction must be in (0, 1], got ${fraction}`);
    const memory = opts.deviceMemoryBytes ?? deviceMemory(backend);
    const free = fraction * memory - opts.weightsBytes;
    // NOTE: never below one request at full length, so a large model keeps loading where memory allows.
    const cpuCap = Math.max(DEFAULT_CPU_KV_BYTES, need * bytesPerBlock);
    const capped = opts.deviceMemoryBytes === undefined && backend.name === "cpu" && free > cpuCap;
    const budget = capped ? cpuCap : free;
    const fits = Math.floor(budget / bytesPerBlock);
    numBlocks = Math.min(fits, opts.useful, bufferCap);
    reason = numBlocks === fits
      ? capped ? `the cpu KV budget of ${cpuCap} bytes` : `${fraction} of ${memory} bytes less ${opts.weightsBytes} bytes of weights`
      : numBlocks === opts.useful ? "enough for every seat at full context" : `${backend.name}'s largest buffer`;
  }
  if (numBlocks < need) {
    throw new Error(`kv cache: ${numBlocks} blocks (${reason}) of ${blockSize} tokens cannot hold one request of the full context (${need} blocks, ${need * bytesPerBlock} bytes)`);
  }
  return { numBlocks, blockSize, bytesPerBlock, reason };
}

export interface KvCaches {
  /** Per layer: (numBlocks * blockSize, kvHeads * headDim), realized (written in place by kv_write). */
  readonly k: readonly Tensor[];
  readonly v: readonly Tensor[];
}

/** Zeroed, realized K and V caches for every layer. */
export async function allocateKvCaches(backend: Backend, shape: CacheShape, numBlocks: number, blockSize: number, dtype: DType): Promise<KvCaches> {
  const rows = numBlocks * blockSize;
  const make = async () => {
    const t = zeros([rows, shape.kvHeads * shape.headDim], { backend, dtype }).add(0);
    return t.realize();
  };
  const k: Tensor[] = [];
  const v: Tensor[] = [];
  for (let l = 0; l < shape.layers; l++) {
    k.push(await make());
    v.push(await make());
  }
  return { k, v };
}
