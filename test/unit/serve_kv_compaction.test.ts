// KV cache resize and compaction on the real engine (stories260K on cpu): resizing while requests
// stream gives exactly the tokens of an engine that never resized (greedy), the pool and the prefix
// cache stay consistent and leak nothing, bad sizes are refused with the reason and change nothing, and
// the bytes come back to the device (the memory accountant of src/core/memory.ts), also when a model is
// unloaded under load, and another version can claim them.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { memoryAccountant, trackMemory } from "../../src/core/memory.js";
import { loadModel } from "../../src/models/formats/index.js";
import { openModel } from "../../src/models/open_model.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { Engine } from "../../src/serve/engine.js";
import type { GenerateChunk } from "../../src/serve/engine_client.js";
import type { KvResizeReport } from "../../src/serve/kv_compaction.js";
import { ModelRegistry } from "../../src/serve/model_registry.js";
import { WeightCache } from "../../src/serve/weight_cache.js";
import { MODEL, PROMPTS, makeEngine, poolState, run, stories260K } from "./engine_helpers.js";

// 128-token context in blocks of 4: one request needs 32 blocks; 8 requests of ~50 tokens about 100.
const OPTS = { blockSize: 4, numBlocks: 128, maxModelLen: 128, maxNumSeqs: 16 } as const;
const MAX = 40;

async function expectPoolFull(engine: Engine): Promise<void> {
  const { free, total } = await poolState(engine);
  expect(free).toBe(total);
}

describe("KV cache resize and compaction", () => {
  it("gives the same greedy tokens when the cache shrinks and grows while 8 requests stream", async () => {
    const prompts = PROMPTS.slice(0, 8);
    const ref = await makeEngine(OPTS);
    const want = (await Promise.all(prompts.map((p) => run(ref, p, { maxTokens: MAX, ignoreEos: true })))).map((r) => r.tokenIds);
    const wantAgain = (await Promise.all(prompts.map((p) => run(ref, p, { maxTokens: 8, ignoreEos: true })))).map((r) => r.tokenIds);
    await ref.close();

    const engine = await makeEngine(OPTS);
    try {
      const core = engine.core(MODEL)!;
      // A blocker takes the lowest blocks first; aborted once the others run, it leaves holes below their blocks.
      const stop = new AbortController();
      const blocker = run(engine, PROMPTS.slice(14, 17).join(". "), { maxTokens: 80, ignoreEos: true, signal: stop.signal });
      await waitFor(() => core.stats().numFreeBlocks <= 128 - 14, "the blocker to hold 14 blocks");
      const main = Promise.all(prompts.map((p) => run(engine, p, { maxTokens: MAX, ignoreEos: true })));
      await waitFor(() => core.scheduler.numRunning === 9, "9 running requests");
      stop.abort();
      expect((await blocker).finishReason).toBe("abort");
      let streaming = true;
      void main.finally(() => (streaming = false));
      const reports: KvResizeReport[] = [];
      const refused: string[] = [];
      let shrink = true;
      while (streaming) {
        const s = core.stats();
        const target = shrink ? Math.max(32, s.numBlocks - s.numFreeBlocks + 4) : 128;
        shrink = !shrink;
        try {
          reports.push(await engine.resizeKv(MODEL, target));
        } catch (err) {
          // A step between reading the stats and the resize may have taken the slack: a clear refusal.
          expect((err as Error).message).toMatch(/cannot compact to \d+ blocks: requests hold \d+ of the \d+/);
          refused.push((err as Error).message);
        }
        // The runner's tables follow the KV manager's after every resize.
        for (const id of core.scheduler.kv.reqIds()) {
          const runnerIds = core.runner.blockIdsOf(id);
          if (runnerIds) expect(runnerIds).toEqual(core.scheduler.kv.blockIds(id));
        }
        // A few steps between resizes (each one drops the captured steps: they are captured again).
        const step = core.numSteps;
        while (streaming && core.numSteps < step + 4) await new Promise((r) => setTimeout(r, 5));
      }
      const got = (await main).map((r) => r.tokenIds);
      expect(got).toEqual(want);
      expect(reports.filter((r) => r.numBlocks < r.fromBlocks).length).toBeGreaterThanOrEqual(2);
      expect(reports.reduce((n, r) => n + r.movedBlocks, 0)).toBeGreaterThan(0);
      console.log(`${reports.length} resizes under load (${refused.length} refused), ${reports.reduce((n, r) => n + r.movedBlocks, 0)} blocks moved`);
      await expectPoolFull(engine);

      // Shrink the idle pool full of cached blocks: the newest survive and still serve prefix hits.
      const before = core.stats();
      const cached = core.scheduler.kv.pool.numCached;
      const r = await engine.resizeKv(MODEL, 40);
      expect(r.evictedBlocks).toBe(Math.max(0, cached - 40));
      expect(core.scheduler.kv.pool.numCached).toBe(Math.min(cached, 40));
      expect(core.stats().numBlocks).toBe(40);
      const again = await Promise.all(prompts.map((p) => run(engine, p, { maxTokens: 8, ignoreEos: true })));
      expect(again.map((x) => x.tokenIds)).toEqual(wantAgain);
      expect(core.stats().prefixCacheHitTokens - before.prefixCacheHitTokens).toBeGreaterThan(0);
      await expectPoolFull(engine);
      expect((await engine.models())[0]!.kvTokens).toBe(40 * 4);
    } finally {
      await engine.close();
    }
  }, 60_000);

  it("refuses sizes that cannot work, naming why, and changes nothing", async () => {
    const engine = await makeEngine(OPTS);
    try {
      await expect(engine.resizeKv(MODEL, 31)).rejects.toThrow(/31 blocks cannot hold one request of the full context \(128 tokens need 32 blocks of 4\)/);
      await expect(engine.resizeKv(MODEL, 2.5)).rejects.toThrow(/give an integer >= 32/);
      await expect(engine.resizeKv("nope", 64)).rejects.toThrow(/model 'nope' is not served/);
      // Hold 8 requests' blocks (~64 after their prompts and first tokens), then ask for less.
      const it = prompts8().map((p) => engine.generate(req(p))[Symbol.asyncIterator]());
      const core = engine.core(MODEL)!;
      const live = () => core.stats().numBlocks - core.stats().numFreeBlocks;
      while (live() <= 36) await Promise.all(it.map((i) => i.next()));
      await expect(engine.resizeKv(MODEL, 32)).rejects.toThrow(/cannot compact to 32 blocks: requests hold \d+ of the 128 \(retry when fewer are running\)/);
      expect(engine.core(MODEL)!.stats().numBlocks).toBe(128);
      for (const i of it) while (!(await i.next()).done);
      await expectPoolFull(engine);
    } finally {
      await engine.close();
    }
  }, 60_000);

  it("returns the bytes to the device: a shrink, and an unload under load; another version claims them", async () => {
    const tracked = trackMemory(await getBackend("cpu"));
    const acct = memoryAccountant(tracked)!;
    // Engine-level shrink on a tracked backend.
    const m = await stories260K();
    const engine = new Engine([{ ...m, model: fromLoaded(loadModel(MODEL), tracked) }], OPTS);
    await engine.ready();
    try {
      const bpb = engine.core(MODEL)!.runner.sizing.bytesPerBlock;
      const live0 = acct.snapshot().liveTotal;
      const r = await engine.resizeKv(MODEL, 48);
      const live1 = acct.snapshot().liveTotal;
      expect(live0 - live1).toBe((128 - 48) * bpb);
      expect(r.bytesBefore - r.bytesAfter).toBe(live0 - live1);
      console.log(`shrink 128 -> 48 blocks: ${live0 - live1} bytes returned (accountant), ${r.ms.toFixed(1)} ms`);
    } finally {
      await engine.close();
    }

    // Registry: unload s@1 while its requests stream; none fails; s@2 then grows into the memory.
    const host = new Engine([], { maxModelLen: 128, blockSize: 4, maxNumSeqs: 8 });
    await host.ready();
    const weights = new WeightCache({ maxBytes: 64 * 2 ** 20, open: (p) => openModel(p) });
    const registry = new ModelRegistry({ engine: host, backend: tracked, weights });
    try {
      await registry.load({ name: "s", version: "1", path: MODEL, kvBlocks: 96 });
      await registry.load({ name: "s", version: "2", path: MODEL, kvBlocks: 32 });
      const bpb = host.core("s@1")!.runner.sizing.bytesPerBlock;
      const streams = PROMPTS.slice(0, 6).map((p) => host.generate({ ...req(p), model: "s@1" })[Symbol.asyncIterator]());
      await Promise.all(streams.map((s) => s.next()));
      const before = acct.snapshot().liveTotal;
      registry.setRoute("s", { stable: "2", canaryShare: 0 });
      const unloading = registry.unload("s", "1");
      const ends = await Promise.all(streams.map(async (s) => {
        let last: GenerateChunk | undefined;
        let n = 1;
        for (let x = await s.next(); !x.done; x = await s.next()) (last = x.value, n += x.value.tokenIds.length);
        return { n, reason: last?.finishReason };
      }));
      await unloading;
      expect(ends.every((e) => e.reason === "length")).toBe(true);
      const after = acct.snapshot().liveTotal;
      // KV (96 blocks) and the weights (the registry frees them) leave; the weight cache keeps its host copy.
      expect(before - after).toBeGreaterThanOrEqual(96 * bpb);
      console.log(`unload s@1 under load: ${before - after} bytes returned (KV ${96 * bpb}), ${ends.length} streams finished`);
      // A byte budget: the most whole blocks that fit (128 blocks and a half).
      const grown = await registry.resizeKv("s", "2", { kvBytes: 128 * bpb + bpb / 2 });
      expect(grown.kvBlocks).toBe(128);
      expect(acct.snapshot().liveTotal - after).toBe((128 - 32) * bpb);
      const out = await collect(host.generate({ ...req(PROMPTS[0]!), model: "s" }));
      expect(out.at(-1)!.finishReason).toBe("length");
    } finally {
      await host.close();
    }
  }, 60_000);
});

/** Poll cond every 5 ms; throw after 20 s naming what did not happen. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let n = 0;
const prompts8 = () => PROMPTS.slice(0, 8);
const req = (text: string) => ({
  reqId: `kvc${n++}`, model: MODEL, prompt: { kind: "text" as const, text }, sampling: { temperature: 0 }, maxTokens: 30, ignoreEos: true,
});

async function collect(it: AsyncIterable<GenerateChunk>): Promise<GenerateChunk[]> {
  const out: GenerateChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}
