// PUT /admin/models/{name}@{version}/kv over HTTP (real server and engine, stories260K on cpu): the KV
// cache is resized while a completion streams, /metrics shows the new size and the fragmentation
// gauges, and bad sizes, bodies and models get OpenAI-shaped errors naming what was wrong.

import { afterEach, describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { openModel } from "../../src/models/open_model.js";
import { Engine } from "../../src/serve/engine.js";
import { ModelRegistry } from "../../src/serve/model_registry.js";
import { AdminApi } from "../../src/serve/openai/admin.js";
import { OpenAIServer } from "../../src/serve/openai/server.js";
import { WeightCache } from "../../src/serve/weight_cache.js";

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function start(): Promise<string> {
  // 128-token context in blocks of 16: one request needs 8 blocks.
  const engine = new Engine([], { maxModelLen: 128, maxNumSeqs: 8 });
  await engine.ready();
  const weights = new WeightCache({ maxBytes: 64 * 2 ** 20, open: (p) => openModel(p) });
  const registry = new ModelRegistry({ engine, backend: await getBackend("cpu"), weights });
  const server = new OpenAIServer(engine, { log: () => {}, admin: new AdminApi(registry) });
  const { port } = await server.listen(0, "127.0.0.1");
  cleanup = async () => {
    await server.close(2000);
    await engine.close();
  };
  return `http://127.0.0.1:${port}`;
}

const call = async (url: string, method: string, body?: unknown) => {
  const r = await fetch(url, { method, headers: { "Content-Type": "application/json" }, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
};

const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);

describe("admin API: KV cache resize", () => {
  it("resizes while a completion streams; /metrics follows; bad input is refused by name", async () => {
    const url = await start();
    expect((await call(`${url}/admin/models`, "POST", { name: "s", version: "1", path: "stories260K", kvBlocks: 32 })).status).toBe(201);
    const res = await fetch(`${url}/v1/completions`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "s", prompt: "Once upon a time", max_tokens: 60, temperature: 0, stream: true, ignore_eos: true }),
    });
    expect(res.status).toBe(200);
    const shrunk = await call(`${url}/admin/models/s@1/kv`, "PUT", { kvBlocks: 12 });
    expect(shrunk.status).toBe(200);
    expect(shrunk.body).toMatchObject({ id: "s@1", kvBlocks: 12, resize: { fromBlocks: 32, numBlocks: 12 } });
    expect(shrunk.body.resize.bytesBefore - shrunk.body.resize.bytesAfter).toBe((20 / 32) * shrunk.body.resize.bytesBefore);
    const text = await res.text();
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
    expect(text).toContain('"finish_reason":"length"');

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(gauge(metrics, "kiln_kv_cache_blocks")).toBe(12);
    expect(gauge(metrics, "kiln_kv_cache_bytes")).toBe(shrunk.body.resize.bytesAfter);
    // Idle: nothing holds a slot, nothing is live.
    expect(gauge(metrics, "kiln_kv_cache_unused_slots")).toBe(0);
    expect(gauge(metrics, "kiln_kv_cache_tail_free_blocks")).toBe(12);
    expect(gauge(metrics, "kiln_kv_cache_hole_blocks")).toBe(0);

    const small = await call(`${url}/admin/models/s@1/kv`, "PUT", { kvBlocks: 7 });
    expect(small.status).toBe(400);
    expect(small.body.error.message).toMatch(/7 blocks cannot hold one request of the full context \(128 tokens need 8 blocks of 16\)/);
    expect(small.body.error.param).toBe("kvBlocks");
    const bad = await call(`${url}/admin/models/s@1/kv`, "PUT", { kvBlocks: "many" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/kvBlocks/);
    const both = await call(`${url}/admin/models/s@1/kv`, "PUT", { kvBlocks: 16, kvBytes: 1 << 20 });
    expect(both.status).toBe(400);
    expect(both.body.error.message).toMatch(/exactly one of kvBlocks \(a block count\) or kvBytes/);
    const tiny = await call(`${url}/admin/models/s@1/kv`, "PUT", { kvBytes: 100 });
    expect(tiny.status).toBe(400);
    expect(tiny.body.error.message).toMatch(/kvBytes 100 is less than one KV block of model 's@1' \(\d+ bytes\)/);
    // A byte budget: the most whole blocks that fit.
    const perBlock = shrunk.body.resize.bytesAfter / 12;
    const byBytes = await call(`${url}/admin/models/s@1/kv`, "PUT", { kvBytes: 10 * perBlock + 1 });
    expect(byBytes.status).toBe(200);
    expect(byBytes.body.kvBlocks).toBe(10);
    const missing = await call(`${url}/admin/models/s@9/kv`, "PUT", { kvBlocks: 16 });
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toMatch(/'s@9' is not loaded/);
    const wrongMethod = await fetch(`${url}/admin/models/s@1/kv`, { method: "GET" });
    expect(wrongMethod.status).toBe(405);
    await wrongMethod.text();
  }, 60_000);
});
