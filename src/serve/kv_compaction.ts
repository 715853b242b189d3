// kv_compaction.ts: resizing a model's paged KV cache while it serves: plan the block pool's
// renumbering (block_pool.ts planCompaction: live blocks move down, cached ones kept while they fit),
// copy the K/V rows into new device buffers of the new size (model_runner.ts resizeKv), then renumber
// the pool, which the request tables and the prefix cache follow (they hold the block objects). It is
// the one place that changes the size of a running model's pool; when it runs is the engine core's
// (between two steps, EngineCore.between), who asks for it the engine's and the model registry's.

import type { EngineCore } from "./engine_core.js";

/** What one resize did (plain data: the admin API returns it). */
export interface KvResizeReport {
  readonly fromBlocks: number;
  readonly numBlocks: number;
  /** Live or cached blocks that changed id (their rows moved down). */
  readonly movedBlocks: number;
  /** Free cached blocks that did not fit (prefix-cache entries lost). */
  readonly evictedBlocks: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** Wall time of the copy and the renumbering, ms. */
  readonly ms: number;
}

/**
 * Give core's model numBlocks KV blocks. Call it between steps only (EngineCore.between does). Throws,
 * changing nothing, when the size cannot hold one request of the full context, when running requests
 * hold more blocks, or when one layer's cache would exceed the device's largest buffer.
 */
export async function resizeKvCache(core: EngineCore, numBlocks: number): Promise<KvResizeReport> {
  const { runner } = core;
  const kv = core.scheduler.kv;
  const need = runner.maxBlocksPerSeq;
  if (!Number.isInteger(numBlocks) || numBlocks < need) {
    throw new Error(`kv resize: ${numBlocks} blocks cannot hold one request of the full context (${runner.maxModelLen} tokens need ${need} blocks of ${runner.blockSize}); give an integer >= ${need}`);
  }
  const { bytesPerBlock } = runner.sizing;
  const layers = runner.caches.k.length;
  const perBuffer = (numBlocks * bytesPerBlock) / (2 * layers);
  const maxBuffer = runner.backend.caps.maxBufferBytes;
  if (perBuffer > maxBuffer) throw new Error(`kv resize: ${numBlocks} blocks need ${perBuffer} bytes per layer cache, over ${runner.backend.name}'s largest buffer of ${maxBuffer} bytes`);
  const t0 = performance.now();
  const bytesBefore = runner.kvBytes;
  const plan = kv.pool.planCompaction(numBlocks);
  await runner.resizeKv(plan, new Set(kv.reqIds()));
  kv.pool.applyCompaction(plan);
  // The runner's tables and the manager's must agree after the renumbering; if not, no step may run on them.
  for (const id of kv.reqIds()) {
    const want = kv.blockIds(id).join();
    const got = runner.blockIdsOf(id)?.join();
    if (got !== undefined && got !== want) throw new Error(`kv resize: after compaction request ${id} has blocks [${got}] in the runner but [${want}] in the KV manager`);
  }
  return {
    fromBlocks: plan.fromBlocks, numBlocks, movedBlocks: plan.numMoved, evictedBlocks: plan.numEvicted,
    bytesBefore, bytesAfter: runner.kvBytes, ms: performance.now() - t0,
  };
}
