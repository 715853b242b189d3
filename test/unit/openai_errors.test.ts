// openai_errors.test.ts: every bad input and fault of the OpenAI HTTP layer gets OpenAI's error shape
// {error: {message, type, param, code}} with the right status, over plain fetch against a real server
// (stories260K on the Engine): 400 for malformed JSON, wrong types, bad max_tokens, empty
// prompts, invalid UTF-8, prompts over the context (the message names the lengths) and unsupported
// features; 401 for API keys; 404 unknown model or route; 405; 413 over the body limit; 429 when the
// queue is full (Retry-After); 503 while loading or draining; an engine failure mid-stream becomes an
// SSE error event. The server keeps serving after each.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineClient, GenerateChunk } from "../../src/serve/engine_client.js";
import { EngineError } from "../../src/serve/engine_client.js";
import { OpenAIServer } from "../../src/serve/openai/server.js";
import type { ServedModel } from "../../src/serve/served_model.js";
import { Engine } from "../../src/serve/engine.js";
import type { Served } from "./openai_helpers.js";
import { MODEL, serve, stories260K } from "./openai_helpers.js";

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

let s: Served;

beforeAll(async () => {
  s = await serve({ maxBodyBytes: 4096 });
});

afterAll(async () => {
  await s?.close();
});

async function call(url: string, path: string, body: BodyInit | object | undefined, init: RequestInit = {}): Promise<{ status: number; headers: Headers; json: ErrorBody & Record<string, unknown> }> {
  const raw: BodyInit | undefined =
    body === undefined || typeof body === "string" || body instanceof Uint8Array || body instanceof ReadableStream ? (body as BodyInit | undefined) : JSON.stringify(body);
  const r = await fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json" }, ...init, ...(raw === undefined ? {} : { body: raw }) });
  return { status: r.status, headers: r.headers, json: (await r.json()) as ErrorBody & Record<string, unknown> };
}

/** Expect an OpenAI-shaped error; returns it. */
async function expectError(p: ReturnType<typeof call>, status: number, param?: string | null, code?: string | null): Promise<ErrorBody["error"]> {
  const { status: got, json } = await p;
  expect({ status: got, message: json.error?.message }).toMatchObject({ status });
  expect(Object.keys(json.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(json.error.message).toMatch(/\S/);
  if (param !== undefined) expect(json.error.param).toBe(param);
  if (code !== undefined) expect(json.error.code).toBe(code);
  return json.error;
}

const completion = (body: object) => call(s.url, "/v1/completions", { model: MODEL, prompt: "Once upon a time", max_tokens: 2, ...body });

describe("400 bad request", () => {
  it("malformed JSON, an empty body, a body that is not an object", async () => {
    expect((await expectError(call(s.url, "/v1/completions", '{"model": "stories260K", "prompt": '), 400)).message).toMatch(/not valid JSON/);
    expect((await expectError(call(s.url, "/v1/completions", ""), 400)).message).toMatch(/empty/);
    expect((await expectError(call(s.url, "/v1/completions", "[1, 2]"), 400)).message).toMatch(/JSON object/);
  });

  it("wrong types name the field", async () => {
    await expectError(completion({ max_tokens: "10" }), 400, "max_tokens");
    await expectError(completion({ temperature: "hot" }), 400, "temperature");
    await expectError(completion({ stream: "yes" }), 400, "stream");
    await expectError(completion({ model: 42 }), 400, "model");
    await expectError(call(s.url, "/v1/chat/completions", { model: MODEL, messages: "hello" }), 400, "messages");
    await expectError(call(s.url, "/v1/chat/completions", { model: MODEL, messages: [{ role: "robot", content: "x" }] }), 400, "messages.0.role");
  });

  it("negative, fractional and huge max_tokens", async () => {
    await expectError(completion({ max_tokens: -1 }), 400, "max_tokens");
    await expectError(completion({ max_tokens: 2.5 }), 400, "max_tokens");
    const huge = await expectError(completion({ max_tokens: 1_000_000 }), 400, "max_tokens");
    expect(huge.message).toMatch(/1000000.*context of 512/);
  });

  it("out-of-range sampling parameters", async () => {
    await expectError(completion({ temperature: 3 }), 400, "temperature");
    await expectError(completion({ top_p: 0 }), 400, "top_p");
    await expectError(completion({ n: 0 }), 400, "n");
    await expectError(completion({ seed: -1 }), 400, "seed");
    await expectError(completion({ logit_bias: { abc: 1 } }), 400);
    await expectError(completion({ logit_bias: { "100000": 1 } }), 400, "logit_bias");
    await expectError(completion({ stop: [""] }), 400, "stop.0");
    await expectError(completion({ stream_options: { include_usage: true } }), 400, "stream_options");
  });

  it("empty prompts", async () => {
    await expectError(completion({ prompt: "" }), 400, "prompt");
    await expectError(completion({ prompt: [] }), 400, "prompt");
    await expectError(completion({ prompt: [[]] }), 400, "prompt.0");
    await expectError(call(s.url, "/v1/chat/completions", { model: MODEL, messages: [] }), 400, "messages");
  });

  it("token ids outside the vocabulary", async () => {
    const e = await expectError(completion({ prompt: [1, 99999] }), 400, "prompt");
    expect(e.message).toMatch(/99999.*vocabulary of 512/);
  });

  it("invalid UTF-8", async () => {
    const bytes = new TextEncoder().encode(`{"model": "${MODEL}", "prompt": "Once XX"}`);
    bytes.set([0xc3, 0x28], bytes.indexOf(0x58)); // a 2-byte lead followed by an ASCII byte
    expect((await expectError(call(s.url, "/v1/completions", bytes), 400)).message).toMatch(/UTF-8/);
  });

  it("a prompt over the context names both lengths", async () => {
    const e = await expectError(completion({ prompt: "cat ".repeat(600) }), 400, "prompt", "context_length_exceeded");
    expect(e.message).toMatch(/context of 512 tokens.*prompt is \d{3,} tokens/);
    const c = await expectError(completion({ prompt: "Once upon a time", max_tokens: 510 }), 400, "max_tokens", "context_length_exceeded");
    expect(c.message).toMatch(/context of 512 tokens.*515 were requested \(5 in the prompt, 510 to generate\)/);
  });

  it("unsupported features are refused by name", async () => {
    await expectError(call(s.url, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "x" }], tools: [{ type: "function" }] }), 400, "tools");
    await expectError(call(s.url, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] }), 400);
    await expectError(completion({ echo: true }), 400, "echo");
  });
});

describe("401, 404, 405, 413", () => {
  it("API keys: missing or wrong -> 401; right -> 200; /health stays open", async () => {
    const k = await serve({ apiKeys: [{ key: "sk-right", tenant: "team-a" }] });
    try {
      const body = { model: MODEL, prompt: "Once upon a time", max_tokens: 1 };
      const missing = await call(k.url, "/v1/completions", body);
      expect(missing.status).toBe(401);
      expect(missing.json.error.code).toBe("invalid_api_key");
      expect(missing.headers.get("www-authenticate")).toBe("Bearer");
      await expectError(call(k.url, "/v1/completions", body, { headers: { Authorization: "Bearer sk-wrong" } }), 401, null, "invalid_api_key");
      const ok = await call(k.url, "/v1/completions", body, { headers: { Authorization: "Bearer sk-right" } });
      expect(ok.status).toBe(200);
      expect(k.recorder.seen.at(-1)!.req.tenant).toBe("team-a");
      expect((await fetch(`${k.url}/health`)).status).toBe(200);
      expect((await fetch(`${k.url}/v1/models`)).status).toBe(401);
    } finally {
      await k.close();
    }
  });

  it("unknown model -> 404 model_not_found; unknown route -> 404; wrong method -> 405", async () => {
    const e = await expectError(completion({ model: "gpt-4" }), 404, "model", "model_not_found");
    expect(e.message).toMatch(/gpt-4.*stories260K/);
    expect((await fetch(`${s.url}/v1/models/nope`)).status).toBe(404);
    expect((await fetch(`${s.url}/v2/anything`)).status).toBe(404);
    const r = await fetch(`${s.url}/v1/completions`);
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("POST");
  });

  it("a body over the limit -> 413, whether its length is declared or streamed", async () => {
    const big = JSON.stringify({ model: MODEL, prompt: "x".repeat(5000) });
    const declared = await expectError(call(s.url, "/v1/completions", big), 413, null, "request_too_large");
    expect(declared.message).toMatch(/over the limit of 4096 bytes/);
    const bytes = new TextEncoder().encode(big);
    const streamed = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 1000) c.enqueue(bytes.subarray(i, i + 1000));
        c.close();
      },
    });
    await expectError(call(s.url, "/v1/completions", streamed, { duplex: "half" } as RequestInit), 413, null, "request_too_large");
    expect((await completion({})).status).toBe(200);
  });
});

describe("429 and 503", () => {
  it("queue full -> 429 with Retry-After; the queue frees when the running request ends", async () => {
    const q = await serve({ maxWaiting: 0, maxNumSeqs: 1, retryAfterS: 2 });
    try {
      const ctl = new AbortController();
      const running = await fetch(`${q.url}/v1/completions`, {
        method: "POST", signal: ctl.signal, body: JSON.stringify({ model: MODEL, prompt: "Once upon a time", max_tokens: 300, stream: true }),
      });
      const reader = running.body!.getReader();
      await reader.read(); // a first event: the request is running
      const full = await call(q.url, "/v1/completions", { model: MODEL, prompt: "Once upon a time", max_tokens: 1 });
      expect(full.status).toBe(429);
      expect(full.json.error).toMatchObject({ type: "rate_limit_error", code: "queue_full" });
      expect(full.headers.get("retry-after")).toBe("2");
      ctl.abort();
      await reader.cancel().catch(() => {});
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await call(q.url, "/v1/completions", { model: MODEL, prompt: "Once upon a time", max_tokens: 1 })).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
      expect(status).toBe(200);
    } finally {
      await q.close();
    }
  });

  it("a burst of 100 requests: each is served or gets 429, and nothing is left behind", async () => {
    const b = await serve({ maxWaiting: 8, maxNumSeqs: 1 });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const body = JSON.stringify({ model: MODEL, prompt: "Once upon a time", max_tokens: 2, stream: i % 2 === 0 });
          const r = await fetch(`${b.url}/v1/completions`, { method: "POST", body });
          const text = await r.text();
          return { status: r.status, complete: r.status !== 200 || i % 2 === 1 || text.endsWith("data: [DONE]\n\n") };
        }),
      );
      const count = (st: number) => statuses.filter((r) => r.status === st).length;
      expect(count(200) + count(429)).toBe(100);
      expect(count(200)).toBeGreaterThanOrEqual(9);
      expect(count(429)).toBeGreaterThan(0);
      expect(statuses.every((r) => r.complete)).toBe(true);
      expect(await b.engine.stats()).toMatchObject({ running: 0, waiting: 0, kvCacheUsage: 0 });
      expect((await call(b.url, "/v1/completions", { model: MODEL, prompt: "Once upon a time", max_tokens: 2 })).status).toBe(200);
    } finally {
      await b.close();
    }
  });

  it("503 with Retry-After while the models load, then 200", async () => {
    let loaded!: (m: readonly ServedModel[]) => void;
    const engine = new Engine(new Promise<readonly ServedModel[]>((r) => (loaded = r)), { numBlocks: 64 });
    const server = new OpenAIServer(engine, { retryAfterS: 3 });
    const url = `http://127.0.0.1:${(await server.listen(0)).port}`;
    try {
      const h = await fetch(`${url}/health`);
      expect(h.status).toBe(503);
      expect(await h.json()).toEqual({ status: "loading" });
      const e = await call(url, "/v1/completions", { model: MODEL, prompt: "Once", max_tokens: 1 });
      expect(e.status).toBe(503);
      expect(e.headers.get("retry-after")).toBe("3");
      expect(e.json.error.message).toMatch(/loading/);
      loaded([await stories260K()]);
      await engine.ready();
      expect((await fetch(`${url}/health`)).status).toBe(200);
      expect((await call(url, "/v1/completions", { model: MODEL, prompt: "Once", max_tokens: 1 })).status).toBe(200);
    } finally {
      await server.close(1000);
      await engine.close();
    }
  });

  it("503 while the engine drains", async () => {
    const d = await serve();
    try {
      await d.engine.drain();
      const h = await fetch(`${d.url}/health`);
      expect(h.status).toBe(503);
      expect(await h.json()).toEqual({ status: "draining" });
      await expectError(call(d.url, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "x" }] }), 503, null, "service_unavailable");
    } finally {
      await d.close();
    }
  });
});

describe("engine failures", () => {
  /** NOTE: a test double at the boundary: the real engine does not fail on demand. One chunk, then an internal error. */
  const failing: EngineClient = {
    async *generate(): AsyncGenerator<GenerateChunk> {
      yield { textDelta: "Once", tokenIds: [1] };
      throw new EngineError({ code: "internal", message: "the device was lost" });
    },
    models: async () => [{ id: "m", created: 0, ownedBy: "test", maxModelLen: 64 }],
    health: async () => ({ status: "ready" }),
    abort: async () => {},
    stats: async () => ({ running: 0, waiting: 0 }),
  };

  it("mid-stream: an SSE error event, then [DONE]; not streaming: a 500", async () => {
    const server = new OpenAIServer(failing, { log: () => {} });
    const url = `http://127.0.0.1:${(await server.listen(0)).port}`;
    try {
      const r = await fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "m", prompt: "x", stream: true }) });
      expect(r.status).toBe(200);
      const events = (await r.text()).split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
      expect(events.at(-1)).toBe("[DONE]");
      expect(JSON.parse(events.at(-2)!)).toEqual({ error: { message: "the device was lost", type: "server_error", param: null, code: null } });
      expect(JSON.parse(events[0]!).choices[0].text).toBe("Once");
      const plain = await call(url, "/v1/completions", { model: "m", prompt: "x" });
      expect(plain.status).toBe(500);
      expect(plain.json.error.message).toBe("the device was lost");
    } finally {
      await server.close(1000);
    }
  });
});
