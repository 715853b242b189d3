// The continuous-batching Engine behind the OpenAI HTTP server, driven by the official `openai` client
// (stories260K, cpu, 127.0.0.1): 32 concurrent streamed completions each give their solo text, chat
// completions stream, a client that disconnects mid-stream has its blocks freed, /metrics shows the
// engine's gauges, and the block pool is full again at the end.

import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../../src/serve/engine.js";
import { OpenAIServer } from "../../src/serve/openai/server.js";
import { GREEDY_60, MODEL, PROMPTS, makeEngine, poolState } from "./engine_helpers.js";

let engine: Engine;
let server: OpenAIServer;
let client: OpenAI;
let url: string;

beforeAll(async () => {
  engine = await makeEngine();
  server = new OpenAIServer(engine, { log: () => {} });
  const { port } = await server.listen(0, "127.0.0.1");
  url = `http://127.0.0.1:${port}`;
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
});

afterAll(async () => {
  await server?.close(2000);
  await engine?.close();
});

async function streamText(prompt: string, maxTokens: number): Promise<string> {
  const stream = await client.completions.create({ model: MODEL, prompt, max_tokens: maxTokens, temperature: 0, stream: true });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.text ?? "";
  return text;
}

describe("engine over HTTP", () => {
  it("streams llama2.c's greedy text", async () => {
    expect(await streamText("Once upon a time", 60)).toBe(GREEDY_60);
  });

  it("32 concurrent streamed completions each give their solo text", async () => {
    const solo: string[] = [];
    for (const p of PROMPTS) solo.push(await streamText(p, 10));
    const together = await Promise.all(PROMPTS.map((p) => streamText(p, 10)));
    expect(together).toEqual(solo);
    const { free, total } = await poolState(engine);
    expect(free).toBe(total);
  });

  it("streams a chat completion", async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 8, stream: true, seed: 7 });
    let n = 0;
    let finish: string | null = null;
    for await (const c of stream) {
      n++;
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(n).toBeGreaterThan(2);
    expect(["length", "stop"]).toContain(finish);
  });

  it("a client that disconnects mid-stream has its request aborted and its blocks freed", async () => {
    const core = engine.core(MODEL)!;
    const generated = core.numGeneratedTokens;
    const ctl = new AbortController();
    const stream = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 400, temperature: 0, stream: true }, { signal: ctl.signal });
    let n = 0;
    try {
      for await (const _ of stream) if (++n === 3) ctl.abort();
    } catch {
      // NOTE: whether the client's iteration ends or throws on abort is the client's business.
    }
    expect(n).toBe(3);
    for (let i = 0; i < 200 && (await engine.stats()).running > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await engine.stats()).running).toBe(0);
    // It stopped long before its 400 tokens.
    expect(core.numGeneratedTokens - generated).toBeLessThan(100);
    const { free, total } = await poolState(engine);
    expect(free).toBe(total);
  });

  it("/metrics shows the engine's gauges", async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/kiln_kv_cache_usage_ratio\S* 0/);
    expect(text).toMatch(/kiln_prefix_cache_hit_rate\S* [0-9.]+/);
  });
});
