// Model management on the real engine (stories260K on cpu): hot loading a second version while the
// first streams, sticky canary routing and its share, roll forward and back, unloading (drain, then the
// KV cache goes), cold start and cached reload times, and the weight cache's LRU bound.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { openModel } from "../../src/models/open_model.js";
import type { OpenedModel } from "../../src/models/open_files.js";
import { pickVersion, stickyPoint } from "../../src/serve/canary.js";
import { Engine } from "../../src/serve/engine.js";
import type { GenerateChunk, GenerateRequest } from "../../src/serve/engine_client.js";
import { ModelRegistry, RegistryError } from "../../src/serve/model_registry.js";
import { WeightCache } from "../../src/serve/weight_cache.js";

async function setup(): Promise<{ engine: Engine; registry: ModelRegistry; weights: WeightCache }> {
  const engine = new Engine([], { maxModelLen: 128, numBlocks: 16, maxNumSeqs: 8 });
  await engine.ready();
  const weights = new WeightCache({ maxBytes: 64 * 2 ** 20, open: (p) => openModel(p) });
  return { engine, registry: new ModelRegistry({ engine, backend: await getBackend("cpu"), weights }), weights };
}

let n = 0;
const request = (model: string, user?: string, maxTokens = 4): GenerateRequest => ({
  reqId: `mm${n++}`, model, prompt: { kind: "text", text: "Once upon a time" }, sampling: { temperature: 0 }, maxTokens, ignoreEos: true,
  ...(user === undefined ? {} : { user }),
});

async function collect(it: AsyncIterable<GenerateChunk>): Promise<GenerateChunk[]> {
  const out: GenerateChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

const tokens = (cs: GenerateChunk[]) => cs.flatMap((c) => c.tokenIds).length;

describe("model registry", () => {
  it("loads a second version while the first streams; the stream completes; the reload is from the weight cache", async () => {
    const { engine, registry } = await setup();
    try {
      const v1 = await registry.load({ name: "s", version: "1", path: "stories260K", kvBlocks: 12 });
      expect(v1).toMatchObject({ id: "s@1", state: "ready", kvBlocks: 12, weightCache: "miss" });
      expect(v1.loadMs).toBeGreaterThan(0);
      const it = engine.generate(request("s", "u", 60))[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      const v2 = await registry.load({ name: "s", version: "2", path: "stories260K", kvBlocks: 24 });
      expect(v2).toMatchObject({ id: "s@2", state: "ready", kvBlocks: 24, weightCache: "hit" });
      let count = first.value!.tokenIds.length;
      let last: GenerateChunk = first.value!;
      for (let r = await it.next(); !r.done; r = await it.next()) (count += r.value.tokenIds.length, last = r.value);
      expect(count).toBe(60);
      expect(last.finishReason).toBe("length");
      expect(engine.core("s@2")!.stats().numBlocks).toBe(24);
      console.log(`cold start s@1: ${v1.loadMs!.toFixed(1)} ms (weights from the file); s@2: ${v2.loadMs!.toFixed(1)} ms (weights from the cache)`);
      // The first version stays the name's stable one; /v1/models shows the name too.
      expect(registry.list().models[0]!.route).toEqual({ stable: "1", canaryShare: 0 });
      expect((await engine.models()).map((c) => c.id).sort()).toEqual(["s", "s@1", "s@2"]);
    } finally {
      await engine.close();
    }
  });

  it("routes 30% of users to the canary, sticky per user, and rolls forward and back", async () => {
    const { engine, registry } = await setup();
    try {
      await registry.load({ name: "s", version: "1", path: "stories260K" });
      await registry.load({ name: "s", version: "2", path: "stories260K" });
      registry.setRoute("s", { stable: "1", canary: "2", canaryShare: 0.3 });
      const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
      const picks = users.map((u) => registry.route(request("s", u)));
      for (const u of users.slice(0, 20)) {
        const seen = new Set(Array.from({ length: 10 }, () => registry.route(request("s", u))));
        expect(seen.size).toBe(1);
      }
      const share = picks.filter((p) => p === "s@2").length / users.length;
      expect(Math.abs(share - 0.3)).toBeLessThan(0.04);
      // Real traffic lands where the route says: count the tokens each version generated.
      const some = users.slice(0, 16);
      await Promise.all(some.map((u) => collect(engine.generate(request("s", u, 2)))));
      const toCanary = some.filter((u) => registry.route(request("s", u)) === "s@2").length;
      expect(engine.core("s@2")!.numGeneratedTokens).toBe(2 * toCanary);
      expect(engine.core("s@1")!.numGeneratedTokens).toBe(2 * (some.length - toCanary));
      // Roll forward: the canary becomes stable for everyone.
      registry.setRoute("s", { stable: "2", canaryShare: 0 });
      expect(new Set(users.map((u) => registry.route(request("s", u))))).toEqual(new Set(["s@2"]));
      expect(registry.aliases().get("s")).toBe("s@2");
      // Roll back.
      registry.setRoute("s", { stable: "1", canaryShare: 0 });
      expect(new Set(users.map((u) => registry.route(request("s", u))))).toEqual(new Set(["s@1"]));
      // A pinned version ignores the route.
      expect(registry.route(request("s@2", "user-0"))).toBeUndefined();
      expect(tokens(await collect(engine.generate(request("s@2", "user-0", 3))))).toBe(3);
    } finally {
      await engine.close();
    }
  });

  it("raising the share only moves users to the canary", () => {
    const route = (share: number) => ({ stable: "1", canary: "2", canaryShare: share });
    for (let i = 0; i < 500; i++) {
      const u = `u${i}`;
      if (pickVersion("s", route(0.1), u) === "2") expect(pickVersion("s", route(0.5), u)).toBe("2");
      expect(stickyPoint("s", u)).toBeGreaterThanOrEqual(0);
      expect(stickyPoint("s", u)).toBeLessThan(1);
    }
  });

  it("unloading drains the version's requests, then frees its KV cache; reloading is a cache hit", async () => {
    const { engine, registry, weights } = await setup();
    try {
      await registry.load({ name: "s", version: "1", path: "stories260K", kvBlocks: 12 });
      await registry.load({ name: "s", version: "2", path: "stories260K", kvBlocks: 20 });
      const core = engine.core("s@2")!;
      const blocksBefore = registry.list().models[0]!.versions.reduce((a, v) => a + v.kvBlocks!, 0);
      const stream = collect(engine.generate(request("s@2", "u", 40)));
      await new Promise((r) => setTimeout(r, 5));
      const unloading = registry.unload("s", "2");
      // Draining: new requests for it are refused at once, the running one finishes.
      await expect(collect(engine.generate(request("s@2")))).rejects.toMatchObject({ code: "model_not_found" });
      expect(registry.list().models[0]!.versions.find((v) => v.version === "2")!.state).toBe("draining");
      expect(tokens(await stream)).toBe(40);
      await unloading;
      expect(engine.core("s@2")).toBeUndefined();
      expect(core.stats().numFreeBlocks).toBe(core.stats().numBlocks);
      const blocksAfter = registry.list().models[0]!.versions.reduce((a, v) => a + v.kvBlocks!, 0);
      expect(blocksBefore - blocksAfter).toBe(20);
      expect((await engine.models()).map((c) => c.id).sort()).toEqual(["s", "s@1"]);
      // Reload: weights from the cache; both times are reported.
      const again = await registry.load({ name: "s", version: "2", path: "stories260K" });
      expect(again.weightCache).toBe("hit");
      expect(again.loadMs).toBeGreaterThan(0);
      expect(weights.stats()).toMatchObject({ entries: 1, hits: 2, misses: 1 });
      weights.clear();
      await registry.unload("s", "2");
      const cold = await registry.load({ name: "s", version: "2", path: "stories260K" });
      expect(cold.weightCache).toBe("miss");
      console.log(`reload s@2: ${again.loadMs!.toFixed(1)} ms with the weight cache, ${cold.loadMs!.toFixed(1)} ms without`);
    } finally {
      await engine.close();
    }
  });

  it("refuses bad operations with the right kind of error", async () => {
    const { engine, registry } = await setup();
    const kind = async (f: () => unknown) => {
      try {
        await f();
      } catch (err) {
        expect(err).toBeInstanceOf(RegistryError);
        return (err as RegistryError).kind;
      }
      throw new Error("did not throw");
    };
    try {
      await registry.load({ name: "s", version: "1", path: "stories260K" });
      await registry.load({ name: "s", version: "2", path: "stories260K" });
      expect(await kind(() => registry.load({ name: "s", version: "1", path: "stories260K" }))).toBe("conflict");
      expect(await kind(() => registry.load({ name: "t", version: "1", path: "/no/such/model.bin" }))).toBe("invalid");
      expect(await kind(() => registry.load({ name: "bad@name", version: "1", path: "stories260K" }))).toBe("invalid");
      expect(await kind(() => registry.unload("s", "9"))).toBe("not_found");
      expect(await kind(() => registry.unload("s", "1"))).toBe("conflict"); // the stable one, with another loaded
      expect(await kind(() => registry.setRoute("nope", { stable: "1", canaryShare: 0 }))).toBe("not_found");
      expect(await kind(() => registry.setRoute("s", { stable: "3", canaryShare: 0 }))).toBe("not_found");
      expect(await kind(() => registry.setRoute("s", { stable: "1", canary: "1", canaryShare: 0.5 }))).toBe("invalid");
      expect(await kind(() => registry.setRoute("s", { stable: "1", canaryShare: 0.5 }))).toBe("invalid");
      registry.setRoute("s", { stable: "1", canary: "2", canaryShare: 0.5 });
      expect(await kind(() => registry.unload("s", "2"))).toBe("conflict"); // the canary
      expect(registry.list().models[0]!.versions).toHaveLength(2);
    } finally {
      await engine.close();
    }
  });
});

describe("weight cache", () => {
  const fake = (bytes: number) => (path: string): OpenedModel => ({
    loaded: { config: {} as never, source: path, metadata: new Map(), tensors: new Map([["w", { shape: [bytes / 4], stored: "f32", read: () => ({ shape: [bytes / 4], dtype: "f32" as const, data: new Float32Array(bytes / 4) }) }]]) },
    tokenizer: {} as never, chatTemplateOrigin: "", stopTokenIds: [],
  });

  it("keeps models by LRU within its byte bound", async () => {
    const c = new WeightCache({ maxBytes: 1000, open: fake(400) });
    expect((await c.get("a")).hit).toBe(false);
    expect((await c.get("b")).hit).toBe(false);
    expect((await c.get("a")).hit).toBe(true); // a is now the most recent
    expect((await c.get("c")).hit).toBe(false); // evicts b
    expect(c.stats()).toMatchObject({ entries: 2, bytes: 800 });
    expect((await c.get("a")).hit).toBe(true);
    expect((await c.get("b")).hit).toBe(false);
    const big = new WeightCache({ maxBytes: 100, open: fake(400) });
    expect((await big.get("a")).bytes).toBe(400);
    expect(big.stats().entries).toBe(0);
  });

  it("lets the event loop run between tensors while it reads a model (a hot load does not stall serving)", async () => {
    const n = 40;
    const reads: number[] = [];
    let turns = 0;
    const open = (path: string): OpenedModel => ({
      loaded: {
        config: {} as never, source: path, metadata: new Map(),
        tensors: new Map(Array.from({ length: n }, (_, i) => [`w${i}`, { shape: [4], stored: "f32", read: () => (reads.push(turns), { shape: [4], dtype: "f32" as const, data: new Float32Array(4) }) }])),
      },
      tokenizer: {} as never, chatTemplateOrigin: "", stopTokenIds: [],
    });
    // Another task on the event loop (as a client's stream would be): one step per turn.
    let stop = false;
    const tick = () => {
      turns++;
      if (!stop) setImmediate(tick);
    };
    setImmediate(tick);
    try {
      await new WeightCache({ maxBytes: 1 << 20, open }).get("m");
    } finally {
      stop = true;
    }
    // The other task ran while the tensors were read, not only before or after.
    expect(reads).toHaveLength(n);
    expect(reads.at(-1)!).toBeGreaterThan(reads[0]!);
  });
});
