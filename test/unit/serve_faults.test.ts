// serve_faults.test.ts: the fault scenarios of `kiln serve` against the REAL continuous-batching Engine
// over HTTP (stories260K, cpu, 127.0.0.1, a small KV pool of 64 blocks, 16 seats, 64 waiting): bad
// bodies, bad fields, contexts overrun, invalid UTF-8, oversized and truncated bodies, clients that
// leave mid-stream or mid-prefill, a burst of 1000 requests, and token isolation under preemption.
// After EVERY scenario the engine must be idle with its block pool full again, nothing may have been
// logged as an unexpected (500) error, and a greedy request must still give the reference text.
// openai_errors.test.ts covers the error shapes; engine_http.test.ts the
// official client on the Engine. This file is about the Engine's state surviving the faults.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../../src/serve/engine.js";
import { OpenAIServer } from "../../src/serve/openai/server.js";
import { MODEL, PROMPTS, makeEngine, poolState, tokenizer } from "./engine_helpers.js";
import type { Answer } from "./serve_faults_http.js";
import { completionText, expectApiError, pool, post, sendTruncated, sseEvents, waitFor } from "./serve_faults_http.js";

const MAX_BODY = 64 * 1024;
const CONTEXT = 512;
const REFERENCE = ", there was a little girl named Lily";

let engine: Engine;
let server: OpenAIServer;
let url: string;
let port: number;
const logged: string[] = [];

beforeAll(async () => {
  engine = await makeEngine({ numBlocks: 64, maxNumSeqs: 16, maxWaiting: 64 });
  server = new OpenAIServer(engine, { log: (l) => logged.push(l), maxBodyBytes: MAX_BODY });
  ({ port } = await server.listen(0, "127.0.0.1"));
  url = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.close(2000);
  await engine?.close();
});

const completion = (body: object, init?: RequestInit) => post(url, "/v1/completions", { model: MODEL, prompt: "Once upon a time", max_tokens: 2, ...body }, init);
const chat = (body: object) => post(url, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 2, ...body });
const core = () => engine.core(MODEL)!;
/** `n` token ids: "Once upon a time" (with BOS), then " cat" repeated. */
const promptIds = (n: number) => {
  const head = tokenizer.encode("Once upon a time");
  const pad = tokenizer.encode(" cat").at(-1)!;
  return [...head, ...Array<number>(n - head.length).fill(pad)].slice(0, n);
};

/** The engine is idle, no KV block is held, nothing unexpected was logged, and greedy serving still works. */
async function expectHealthy(): Promise<void> {
  expect(await waitFor(async () => { const s = await engine.stats(); return s.running === 0 && s.waiting === 0; })).toBe(true);
  // NOTE: the HTTP handlers of aborted or refused requests must have ended too (a hung handler leaks its connection).
  const inflight = (server as unknown as { inflight: Map<unknown, unknown> }).inflight;
  expect(await waitFor(() => inflight.size === 0, 5000)).toBe(true);
  const before = await poolState(engine);
  expect(before.free).toBe(before.total);
  expect((await engine.stats()).kvCacheUsage).toBe(0);
  const ref = await completion({ max_tokens: 10, temperature: 0 });
  expect(completionText(ref).startsWith(REFERENCE)).toBe(true);
  const after = await poolState(engine);
  expect(after.free).toBe(after.total);
  expect(logged.splice(0)).toEqual([]);
  expect((await fetch(`${url}/health`)).status).toBe(200);
}

/** A test whose last step is expectHealthy(). */
const scenario = (name: string, fn: () => Promise<void>, timeout?: number) => it(name, async () => { await fn(); await expectHealthy(); }, timeout);

describe("bad input against the real engine", () => {
  scenario("malformed JSON: truncated, trailing garbage, not an object, deeply nested", async () => {
    for (const body of ['{"model": "stories260K", "prompt": ', '{"model": "stories260K"} x', "{model: 1}", "null", '"text"', "[1, 2]", "\u0000"]) {
      expectApiError(await post(url, "/v1/completions", body), 400);
      expectApiError(await post(url, "/v1/chat/completions", body), 400);
    }
    const deep = "[".repeat(20_000) + "]".repeat(20_000);
    expectApiError(await post(url, "/v1/completions", deep), 400);
    expectApiError(await post(url, "/v1/completions", `{"model": "${MODEL}", "prompt": ${deep}}`), 400, null, "prompt");
    // An unknown field is ignored however deep it is.
    expect((await post(url, "/v1/completions", `{"model": "${MODEL}", "prompt": "x", "max_tokens": 1, "extra": ${deep}}`)).status).toBe(200);
  });

  scenario("wrong types name the field", async () => {
    const cases: [object, string][] = [
      [{ prompt: 123 }, "prompt"], [{ prompt: {} }, "prompt"], [{ prompt: [1.5] }, "prompt"], [{ prompt: [-1] }, "prompt"],
      [{ prompt: [1, "a"] }, "prompt"], [{ max_tokens: true }, "max_tokens"], [{ n: "2" }, "n"], [{ stop: 5 }, "stop"],
      [{ logprobs: "yes" }, "logprobs"], [{ user: 5 }, "user"], [{ seed: 1.5 }, "seed"], [{ ignore_eos: "no" }, "ignore_eos"],
      [{ tier: 3 }, "tier"], [{ model: ["a"] }, "model"], [{ model: null }, "model"],
    ];
    for (const [body, param] of cases) expect(expectApiError(await completion(body), 400).param).toMatch(new RegExp(`^${param}(\\.|$)`));
    expectApiError(await chat({ messages: [{ role: "user", content: 7 }] }), 400, null, "messages.0.content");
    expectApiError(await chat({ messages: [{ content: "x" }] }), 400, null, "messages.0.role");
    expectApiError(await chat({ messages: {} }), 400, null, "messages");
    expectApiError(await completion({ tier: "platinum" }), 400, null, "tier");
  });

  scenario("negative, zero, fractional and huge max_tokens; the exact fit is served", async () => {
    for (const m of [-1, 0, 2.5, -1e300]) expectApiError(await completion({ max_tokens: m }), 400, null, "max_tokens");
    for (const m of [CONTEXT, 1e6, 2 ** 53, 1e300]) expectApiError(await completion({ max_tokens: m }), 400, null, "max_tokens");
    // "Once upon a time" is 5 tokens with BOS: 507 more fill the context exactly, 508 overrun it.
    const over = expectApiError(await completion({ max_tokens: CONTEXT - 4 }), 400, "context_length_exceeded", "max_tokens");
    expect(over.message).toMatch(/513/);
    const fit = await completion({ max_tokens: CONTEXT - 5, temperature: 0, ignore_eos: true });
    expect(fit.status).toBe(200);
    expect(fit.json!.usage).toEqual({ prompt_tokens: 5, completion_tokens: CONTEXT - 5, total_tokens: CONTEXT });
    expect(fit.json!.choices[0].finish_reason).toBe("length");
  });

  scenario("unknown model", async () => {
    for (const model of ["gpt-4", "STORIES260K", `${MODEL} `, `${MODEL}@9`, "x".repeat(10_000), "ストーリー"]) {
      expectApiError(await completion({ model }), 404, "model_not_found", "model");
      expectApiError(await chat({ model }), 404, "model_not_found", "model");
    }
    expectApiError(await completion({ model: "" }), 400, null, "model");
    expectApiError(await post(url, "/v1/completions", { prompt: "x" }), 400, null, "model");
  });

  scenario("empty prompts; odd but valid ones are served", async () => {
    for (const prompt of ["", [], [[]], [""], ["a", ""]]) expectApiError(await completion({ prompt }), 400);
    expectApiError(await chat({ messages: [] }), 400, null, "messages");
    for (const prompt of [" ", "\n", "\u0000", "😀🦀", "\ud800", "a\udfffb"]) {
      const r = await completion({ prompt, max_tokens: 3 });
      expect({ prompt, status: r.status }).toEqual({ prompt, status: 200 });
    }
    expect((await chat({ messages: [{ role: "user", content: "" }] })).status).toBe(200);
    expect((await chat({ messages: [{ role: "user", content: null }] })).status).toBe(200);
  });

  scenario("a prompt over the context: 400 naming the lengths; 511 tokens are served (chunked prefill)", async () => {
    const text = expectApiError(await completion({ prompt: "cat ".repeat(600) }), 400, "context_length_exceeded", "prompt");
    expect(text.message).toMatch(/context of 512 tokens/);
    expectApiError(await completion({ prompt: promptIds(CONTEXT), max_tokens: 1 }), 400, "context_length_exceeded", "prompt");
    expectApiError(await completion({ prompt: promptIds(CONTEXT - 1), max_tokens: 2 }), 400, "context_length_exceeded", "max_tokens");
    expectApiError(await chat({ messages: [{ role: "user", content: "cat ".repeat(600) }] }), 400, "context_length_exceeded", "messages");
    // A batch of prompts where only the last is too long: nothing of the others may stay behind.
    expectApiError(await completion({ prompt: ["Once", "The cat", "cat ".repeat(600)], max_tokens: 50 }), 400, "context_length_exceeded");
    const fit = await completion({ prompt: promptIds(CONTEXT - 1), max_tokens: 1 });
    expect(fit.status).toBe(200);
    expect(fit.json!.usage).toMatchObject({ prompt_tokens: CONTEXT - 1, completion_tokens: 1 });
  });

  scenario("invalid UTF-8 in the body", async () => {
    const bad = [[0xc3, 0x28], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98]];
    for (const seq of bad) {
      const bytes = new TextEncoder().encode(`{"model": "${MODEL}", "prompt": "Once XXX"}`);
      bytes.set(seq, bytes.indexOf(0x58));
      expect(expectApiError(await post(url, "/v1/completions", bytes), 400).message).toMatch(/UTF-8/);
    }
    const cut = new TextEncoder().encode(`{"model": "${MODEL}", "prompt": "Once 😀"}`);
    expectApiError(await post(url, "/v1/completions", cut.subarray(0, cut.length - 4)), 400);
  });

  scenario("a body over the size limit: declared or streamed (2 MiB)", async () => {
    const big = JSON.stringify({ model: MODEL, prompt: "x".repeat(MAX_BODY) });
    expectApiError(await post(url, "/v1/completions", big), 413, "request_too_large");
    const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
    let sent = 0;
    const streamed = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 32) c.enqueue(chunk); // 2 MiB, far over the limit
        else c.close();
      },
    });
    expectApiError(await post(url, "/v1/completions", streamed), 413, "request_too_large");
  });

  // Was a bug: a dropped upload surfaced as node's plain `Error: aborted` and was logged as a 500;
  // readBytes now turns it into a 400 the server does not log.
  it("a body cut short by the client (declares 1000 bytes, sends 20, leaves) is not an unexpected error", async () => {
    await sendTruncated(port, "/v1/completions", 1000, `{"model": "${MODEL}", `);
    await expectHealthy();
  });
});

describe("clients that leave", () => {
  /** Start a streamed request, do `reads` reads of its SSE body, then abort the fetch; returns the tokens generated meanwhile. */
  async function leaveAfter(path: string, body: object, reads: number): Promise<number> {
    const generated = core().numGeneratedTokens;
    const ctl = new AbortController();
    const r = await fetch(url + path, { method: "POST", body: JSON.stringify({ model: MODEL, stream: true, ...body }), signal: ctl.signal });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    for (let i = 0; i < reads; i++) expect((await reader.read()).done).toBe(false);
    ctl.abort();
    await reader.cancel().catch(() => {});
    expect(await waitFor(async () => (await engine.stats()).running === 0)).toBe(true);
    return core().numGeneratedTokens - generated;
  }

  scenario("mid-stream, completions and chat, n = 4: aborted long before max_tokens", async () => {
    expect(await leaveAfter("/v1/completions", { prompt: "Once upon a time", max_tokens: 500, ignore_eos: true }, 1)).toBeLessThan(200);
    expect(await leaveAfter("/v1/chat/completions", { messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 400, ignore_eos: true }, 2)).toBeLessThan(200);
    expect(await leaveAfter("/v1/completions", { prompt: "The cat", n: 4, max_tokens: 500, ignore_eos: true, temperature: 1, seed: 3 }, 1)).toBeLessThan(800);
  });

  scenario("during the prefill of a long prompt, and while waiting for a non-streamed answer", async () => {
    // 16 different prompts of 490 tokens (no prefix-cache hits): 7,840 tokens of prefill on a pool that holds 2 of them.
    const prompts = Array.from({ length: 16 }, (_, i) => Array.from({ length: 490 }, (_, j) => 3 + ((i * 31 + j * 7) % 500)));
    let generated = core().numGeneratedTokens;
    const ctl = new AbortController();
    const pending = fetch(`${url}/v1/completions`, {
      method: "POST", signal: ctl.signal, body: JSON.stringify({ model: MODEL, prompt: prompts, max_tokens: 1 }),
    }).catch((e: Error) => e);
    expect(await waitFor(async () => (await engine.stats()).running > 0, 5000)).toBe(true);
    ctl.abort();
    expect(await pending).toBeInstanceOf(Error);
    expect(await waitFor(async () => (await engine.stats()).waiting === 0)).toBe(true);
    expect(core().numGeneratedTokens - generated).toBeLessThan(16);
    generated = core().numGeneratedTokens;
    const plain = new AbortController();
    const waiting = fetch(`${url}/v1/completions`, {
      method: "POST", signal: plain.signal, body: JSON.stringify({ model: MODEL, prompt: "Once upon a time", max_tokens: 500, ignore_eos: true }),
    }).catch((e: Error) => e);
    await waitFor(() => core().numGeneratedTokens > generated + 5, 5000);
    plain.abort();
    expect(await waiting).toBeInstanceOf(Error);
    await waitFor(async () => (await engine.stats()).running === 0);
    expect(core().numGeneratedTokens - generated).toBeLessThan(300);
  });
});

describe("load", () => {
  scenario("a burst of 1000 requests: each is served (200) or refused (429 + Retry-After), nothing else", async () => {
    const kinds = (i: number) => ({ stream: i % 2 === 0, chat: i % 3 === 0, n: i % 10 === 9 ? 3 : 1 });
    const answers = await pool(1000, 160, async (i): Promise<Answer> => {
      const k = kinds(i);
      const body = { model: MODEL, max_tokens: 4, stream: k.stream, n: k.n, ...(k.chat ? { messages: [{ role: "user", content: PROMPTS[i % 32] }] } : { prompt: PROMPTS[i % 32] }) };
      return post(url, k.chat ? "/v1/chat/completions" : "/v1/completions", body);
    });
    const statuses = new Map<number, number>();
    answers.forEach((a, i) => {
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      if (a.status === 429) {
        expect(a.headers.get("retry-after")).toBe("1");
        expect(expectApiError(a, 429, "queue_full").type).toBe("rate_limit_error");
      } else {
        completionText(a); // its own checks: status 200, and a stream ends in [DONE] with no error event
        if (!kinds(i).stream) expect(a.json!.choices).toHaveLength(kinds(i).n);
        else expect(sseEvents(a.text).at(-1)).toBe("[DONE]");
      }
    });
    expect([...statuses.keys()].sort()).toEqual([200, 429]);
    expect(statuses.get(200)!).toBeGreaterThanOrEqual(80);
  }, 60_000);

  const tooMany = () => completion({ prompt: PROMPTS.slice(0, 16), n: 16, max_tokens: 2 });

  scenario("one request with more choices than seats + queue (16 prompts x n = 16) is refused whole", async () => {
    const r = await tooMany();
    expect([400, 429]).toContain(r.status);
    expectApiError(r, r.status);
  });

  // Was a bug: 256 choices can never be admitted (16 seats + 64 waiting), even on an idle engine, yet the
  // answer was 429 queue_full with Retry-After, which a client retries forever. The model card now says
  // how many requests the engine holds (maxRequests) and the endpoint refuses a larger group with 400.
  it("a request that can never fit the queue is not told to retry (no 429)", async () => {
    const r = await tooMany();
    const e = expectApiError(r, 400, null, "n");
    expect(r.headers.get("retry-after")).toBeNull();
    expect(e.message).toContain("256 completions");
    await expectHealthy();
  });

  // Was a bug: every choice listens on one abort signal, so 11+ choices made Node warn of a leak;
  // mergeChoices now tells the signal how many listeners to expect.
  it("a request with 12 choices prints no MaxListenersExceededWarning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      expect((await completion({ prompt: PROMPTS.slice(0, 3), n: 4, max_tokens: 2 })).status).toBe(200);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).not.toContain("MaxListenersExceededWarning");
    await expectHealthy();
  });

  scenario("token isolation: 16 concurrent greedy requests under preemption each give their solo text", async () => {
    const prompts = PROMPTS.slice(0, 16);
    // NOTE: 16 x (prompt + 56 tokens) > 64 blocks x 16 tokens, so the concurrent run must preempt.
    const body = (prompt: string, i: number) => ({ prompt, max_tokens: 56, temperature: 0, ignore_eos: true, stream: i % 2 === 0 });
    const solo: string[] = [];
    for (const [i, p] of prompts.entries()) solo.push(completionText(await completion(body(p, i))));
    const preempted = core().stats().totalPreemptions;
    const together = await Promise.all(prompts.map(async (p, i) => completionText(await completion(body(p, i)))));
    expect(together).toEqual(solo);
    expect(new Set(solo).size).toBe(16);
    expect(core().stats().totalPreemptions).toBeGreaterThan(preempted);
  }, 60_000);
});
