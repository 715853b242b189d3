// The admin API of `kiln serve --admin` over HTTP (real engine, stories260K on cpu): load while a
// streaming completion runs, list, canary route, roll forward and back, unload; OpenAI-shaped errors
// (400 bad body, 404 unknown model/version, 405, 409 conflict); the API key guard when keys are set.

import { afterEach, describe, expect, it } from "vitest";
import { openModel } from "../../src/models/open_model.js";
import { getBackend } from "../../src/index.js";
import { Engine } from "../../src/serve/engine.js";
import { ModelRegistry } from "../../src/serve/model_registry.js";
import { AdminApi, isLoopback } from "../../src/serve/openai/admin.js";
import type { OpenAIServerOptions } from "../../src/serve/openai/server.js";
import { OpenAIServer } from "../../src/serve/openai/server.js";
import { WeightCache } from "../../src/serve/weight_cache.js";

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function start(opts: OpenAIServerOptions = {}): Promise<{ url: string; engine: Engine }> {
  const engine = new Engine([], { maxModelLen: 128, numBlocks: 16, maxNumSeqs: 8 });
  await engine.ready();
  const weights = new WeightCache({ maxBytes: 64 * 2 ** 20, open: (p) => openModel(p) });
  const registry = new ModelRegistry({ engine, backend: await getBackend("cpu"), weights });
  const server = new OpenAIServer(engine, { log: () => {}, ...opts, admin: new AdminApi(registry) });
  const { port } = await server.listen(0, "127.0.0.1");
  cleanup = async () => {
    await server.close(2000);
    await engine.close();
  };
  return { url: `http://127.0.0.1:${port}`, engine };
}

const call = async (url: string, method: string, body?: unknown, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { method, headers: { "Content-Type": "application/json", ...headers }, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
};

describe("admin API", () => {
  it("loads a version while a stream runs, routes a canary, rolls forward and back, unloads", async () => {
    const { url, engine } = await start();
    const v1 = await call(`${url}/admin/models`, "POST", { name: "s", version: "1", path: "stories260K", kvBlocks: 10 });
    expect(v1.status).toBe(201);
    expect(v1.body).toMatchObject({ id: "s@1", state: "ready", kvBlocks: 10, weightCache: "miss" });
    // A streaming completion on "s" keeps going while s@2 loads.
    const stream = fetch(`${url}/v1/completions`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "s", prompt: "Once upon a time", max_tokens: 40, temperature: 0, stream: true, ignore_eos: true, user: "alice" }),
    });
    const res = await stream;
    expect(res.status).toBe(200);
    const v2 = await call(`${url}/admin/models`, "POST", { name: "s", version: "2", path: "stories260K" });
    expect(v2.status).toBe(201);
    expect(v2.body.weightCache).toBe("hit");
    const text = await res.text();
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
    expect(text).toContain('"finish_reason":"length"');

    const list = await call(`${url}/admin/models`, "GET");
    expect(list.body.models[0]).toMatchObject({ name: "s", route: { stable: "1", canaryShare: 0 } });
    expect(list.body.models[0].versions.map((v: { id: string; loadMs: number }) => [v.id, typeof v.loadMs])).toEqual([["s@1", "number"], ["s@2", "number"]]);

    const canary = await call(`${url}/admin/models/s/route`, "PUT", { stable: "1", canary: "2", canaryShare: 0.3 });
    expect(canary).toEqual({ status: 200, body: { name: "s", route: { stable: "1", canary: "2", canaryShare: 0.3 } } });
    // Every user gets an answer from one of the versions.
    for (const user of ["a", "b", "c"]) {
      const r = await call(`${url}/v1/completions`, "POST", { model: "s", prompt: "Once", max_tokens: 2, temperature: 0, user });
      expect(r.status).toBe(200);
    }
    expect((await call(`${url}/admin/models/s@2`, "DELETE")).status).toBe(409); // the canary
    expect((await call(`${url}/admin/models/s/route`, "PUT", { stable: "2" })).body.route).toEqual({ stable: "2", canaryShare: 0 });
    expect((await call(`${url}/v1/models/s`, "GET")).status).toBe(200);
    expect((await call(`${url}/admin/models/s/route`, "PUT", { stable: "1" })).status).toBe(200);
    const gone = await call(`${url}/admin/models/s@2`, "DELETE");
    expect(gone).toMatchObject({ status: 200, body: { id: "s@2", state: "unloaded", kvBlocks: 16 } });
    expect(engine.core("s@2")).toBeUndefined();
    expect((await call(`${url}/v1/completions`, "POST", { model: "s@2", prompt: "Once", max_tokens: 2 })).status).toBe(404);
  });

  it("answers errors in OpenAI's shape", async () => {
    const { url } = await start();
    await call(`${url}/admin/models`, "POST", { name: "s", version: "1", path: "stories260K" });
    const cases: [string, string, unknown, number, RegExp][] = [
      ["/admin/models", "POST", "{not json", 400, /not valid JSON/],
      ["/admin/models", "POST", { name: "s", version: "2" }, 400, /path/],
      ["/admin/models", "POST", { name: "s", version: "2", path: "stories260K", kvBlocks: 0 }, 400, /kvBlocks/],
      ["/admin/models", "POST", { name: "s", version: "2", path: "/no/such/file.bin" }, 400, /loading model 's@2' from '\/no\/such\/file.bin' failed/],
      ["/admin/models", "POST", { name: "s", version: "1", path: "stories260K" }, 409, /already loaded/],
      ["/admin/models/s@9", "DELETE", undefined, 404, /'s@9' is not loaded \(loaded versions of 's': 1\)/],
      ["/admin/models/s", "DELETE", undefined, 400, /not NAME@VERSION/],
      ["/admin/models/s@1", "GET", undefined, 405, /use DELETE/],
      ["/admin/models/x/route", "PUT", { stable: "1" }, 404, /no model named 'x'/],
      ["/admin/models/s/route", "PUT", { stable: "7" }, 404, /stable: model 's@7' is not loaded/],
      ["/admin/models/s/route", "PUT", { stable: "1", canary: "1", canaryShare: 0.2 }, 400, /is the stable version/],
      ["/admin/models/s/route", "PUT", { stable: "1", canary: "2" }, 400, /canaryShare is required/],
      ["/admin/models/s/route", "PUT", { stable: "1", canaryShare: 1.5 }, 400, /canaryShare/],
    ];
    for (const [path, method, body, status, message] of cases) {
      const r = await call(`${url}${path}`, method, body);
      expect([path, method, r.status]).toEqual([path, method, status]);
      expect(r.body.error.message).toMatch(message);
      expect(Object.keys(r.body.error).sort()).toEqual(["code", "message", "param", "type"]);
    }
  });

  it("needs an API key when keys are configured", async () => {
    const { url } = await start({ apiKeys: [{ key: "sk-admin", tenant: "ops" }] });
    expect((await call(`${url}/admin/models`, "GET")).status).toBe(401);
    expect((await call(`${url}/admin/models`, "GET", undefined, { Authorization: "Bearer sk-admin" })).status).toBe(200);
  });

  it("knows loopback addresses", () => {
    expect(["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"].map(isLoopback)).toEqual([true, true, true, true]);
    expect(["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", undefined].map(isLoopback)).toEqual([false, false, false, false]);
  });
});
