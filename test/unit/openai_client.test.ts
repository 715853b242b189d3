// openai_client.test.ts: the official `openai` npm client against `kiln serve`'s HTTP layer with the
// real stories260K (the Engine, cpu backend) on 127.0.0.1: completions and chat completions,
// streaming and not, n with seeds, stop strings, logprobs, usage (also in the last stream chunk), the
// model list; a client that disconnects mid-stream aborts its engine request; graceful shutdown lets a
// request in flight finish.

import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Served } from "./openai_helpers.js";
import { GREEDY_60, MODEL, serve, waitFor } from "./openai_helpers.js";

let s: Served;
let client: OpenAI;

beforeAll(async () => {
  s = await serve();
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
});

afterAll(async () => {
  await s?.close();
});

describe("completions", () => {
  it("greedy: llama2.c's text, with usage", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 60, temperature: 0 });
    expect(r.object).toBe("text_completion");
    expect(r.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.text).toBe(GREEDY_60);
    expect(r.choices[0]!.finish_reason).toBe("length");
    expect(r.usage).toEqual({ prompt_tokens: 5, completion_tokens: 60, total_tokens: 65 });
  });

  it("streaming gives the same text, then usage in a last chunk without choices", async () => {
    const stream = await client.completions.create({
      model: MODEL, prompt: "Once upon a time", max_tokens: 60, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of stream) {
      chunks++;
      if (c.choices.length > 0) {
        text += c.choices[0]!.text;
        finish = c.choices[0]!.finish_reason ?? finish;
        expect(c.usage).toBeNull();
      } else usage = c.usage;
    }
    expect(text).toBe(GREEDY_60);
    expect(chunks).toBeGreaterThan(10);
    expect(finish).toBe("length");
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 60, total_tokens: 65 });
  });

  it("a stop string ends the text before it (finish_reason stop)", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 60, temperature: 0, stop: ["Lily"] });
    expect(r.choices[0]!.text).toBe(", there was a little girl named ");
    expect(r.choices[0]!.finish_reason).toBe("stop");
  });

  it("the end-of-sequence token: finish_reason stop; ignore_eos (vLLM's extension) generates through it", async () => {
    const base = { model: MODEL, prompt: "Once upon a time", max_tokens: 3, temperature: 0, logit_bias: { "2": 100 } };
    const r = await client.completions.create(base);
    expect(r.choices[0]).toMatchObject({ text: "", finish_reason: "stop" });
    expect(r.usage?.completion_tokens).toBe(0);
    const through = await client.completions.create({ ...base, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(through.choices[0]!.finish_reason).toBe("length");
    expect(through.usage?.completion_tokens).toBe(3);
  });

  it("n choices with a seed: reproducible, and different from each other", async () => {
    const ask = () => client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 12, n: 3, seed: 7, temperature: 1 });
    const [a, b] = [await ask(), await ask()];
    const texts = a.choices.map((c) => c.text);
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(b.choices.map((c) => c.text)).toEqual(texts);
    expect(new Set(texts).size).toBeGreaterThan(1);
    expect(a.usage).toEqual({ prompt_tokens: 5, completion_tokens: 36, total_tokens: 41 });
  });

  it("several prompts: choices indexed prompt-major, each prompt's tokens counted once", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: ["Once upon a time", "The cat"], max_tokens: 4, n: 2, temperature: 0 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(r.choices[0]!.text).toBe(r.choices[1]!.text);
    expect(r.choices[0]!.text).toBe(", there was a");
    expect(r.usage?.completion_tokens).toBe(16);
    expect(r.usage?.prompt_tokens).toBeGreaterThan(5);
  });

  it("logprobs: chosen token and top alternatives, with text offsets", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 4, temperature: 0, logprobs: 3 });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toEqual([",", " there", " was", " a"]);
    expect(lp.text_offset).toEqual([0, 1, 7, 11]);
    lp.token_logprobs!.forEach((x, i) => {
      expect(x).toBeLessThanOrEqual(0);
      const top = lp.top_logprobs![i]!;
      expect(Object.keys(top)).toHaveLength(3);
      // greedy: the chosen token is the most likely one
      expect(Math.max(...Object.values(top))).toBeCloseTo(x, 10);
    });
  });
});

describe("chat completions", () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: "system", content: "You tell stories." },
    { role: "user", content: "Tell me a story." },
  ];

  it("non-streaming: an assistant message, usage, logprobs", async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 2 });
    expect(r.object).toBe("chat.completion");
    expect(r.id).toMatch(/^chatcmpl-/);
    const c = r.choices[0]!;
    expect(c.message.role).toBe("assistant");
    expect(typeof c.message.content).toBe("string");
    expect(c.logprobs!.content).toHaveLength(r.usage!.completion_tokens);
    expect(c.logprobs!.content![0]!.top_logprobs).toHaveLength(2);
    expect(r.usage!.prompt_tokens).toBeGreaterThan(10);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  it("text content parts and the developer role read as plain content and system", async () => {
    const ask = (m: OpenAI.ChatCompletionMessageParam[]) => client.chat.completions.create({ model: MODEL, messages: m, max_tokens: 6, temperature: 0 });
    const plain = await ask(messages);
    const parts = await ask([
      { role: "developer", content: [{ type: "text", text: "You tell stories." }] },
      { role: "user", content: [{ type: "text", text: "Tell me a story." }] },
    ]);
    expect(parts.choices[0]!.message.content).toBe(plain.choices[0]!.message.content);
    expect(parts.usage).toEqual(plain.usage);
  });

  it("streaming: role first, then deltas that add up to the non-streamed reply", async () => {
    const plain = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: MODEL, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    for await (const c of stream) {
      expect(c.object).toBe("chat.completion.chunk");
      if (c.choices[0]) {
        deltas.push(c.choices[0].delta);
        finish = c.choices[0].finish_reason ?? finish;
      } else usage = c.usage;
    }
    expect(deltas[0]).toEqual({ role: "assistant", content: "" });
    expect(deltas.map((d) => d.content ?? "").join("")).toBe(plain.choices[0]!.message.content);
    expect(finish).toBe(plain.choices[0]!.finish_reason);
    expect(usage).toEqual(plain.usage);
  });
});

describe("models, disconnects and shutdown", () => {
  it("lists the served model with its context length", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([MODEL]);
    const m = await client.models.retrieve(MODEL);
    expect(m).toMatchObject({ id: MODEL, object: "model", owned_by: "kiln", max_model_len: 512 });
  });

  it("a client that disconnects mid-stream aborts its request in the engine", async () => {
    const before = s.recorder.seen.length;
    const stream = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 400, temperature: 0, stream: true });
    let got = 0;
    for await (const c of stream) {
      if (c.choices[0]?.text) got++;
      if (got === 3) break; // the client's iterator aborts the HTTP request
    }
    const seen = s.recorder.seen[before]!;
    expect(await waitFor(() => seen.last?.finishReason === "abort")).toBe(true);
    expect(seen.signal?.aborted).toBe(true);
    expect(seen.last!.usage!.completionTokens).toBeLessThan(400);
    expect(await waitFor(async () => (await s.engine.stats()).running === 0)).toBe(true);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/^kiln_request_finished_total\{model_name="stories260K",finished_reason="abort"\} 1$/m);
  });

  it("a client that disconnects before a non-streamed answer aborts its request too", async () => {
    const before = s.recorder.seen.length;
    const ctl = new AbortController();
    const pending = fetch(`${s.url}/v1/completions`, {
      method: "POST", signal: ctl.signal, body: JSON.stringify({ model: MODEL, prompt: "Once upon a time", max_tokens: 400, temperature: 0 }),
    });
    expect(await waitFor(async () => (await s.engine.stats()).running === 1)).toBe(true);
    ctl.abort();
    await expect(pending).rejects.toThrow();
    const seen = s.recorder.seen[before]!;
    expect(await waitFor(() => seen.last?.finishReason === "abort")).toBe(true);
    expect(seen.last!.usage!.completionTokens).toBeLessThan(400);
  });

  it("graceful shutdown lets the request in flight finish, then stops listening", async () => {
    const own = await serve();
    const c = new OpenAI({ baseURL: `${own.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const stream = await c.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 60, temperature: 0, stream: true });
    let text = "";
    let closing: Promise<void> | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      closing ??= own.close();
    }
    await closing;
    expect(text).toBe(GREEDY_60);
    await expect(fetch(`${own.url}/health`)).rejects.toThrow();
  });
});
