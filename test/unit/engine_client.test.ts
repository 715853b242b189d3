// The Engine as an EngineClient (stories260K, cpu): cancellation frees blocks at once, stop strings and
// EOS end a request, logprobs and usage are reported, refusals are EngineErrors with the right code
// and param, the queue limit and queue timeouts hold, and a burst of requests is served or refused
// cleanly with the block pool full again afterwards.

import { describe, expect, it } from "vitest";
import { EngineError } from "../../src/serve/engine_client.js";
import { GREEDY_60, MODEL, makeEngine, poolState, run, stories260K } from "./engine_helpers.js";
import { Engine } from "../../src/serve/engine.js";

async function refusal(p: Promise<unknown>): Promise<EngineError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(EngineError);
  return err as EngineError;
}

describe("engine: requests", () => {
  it("aborting the signal mid-stream ends it with 'abort' and frees its blocks at once", async () => {
    const engine = await makeEngine();
    const core = engine.core(MODEL)!;
    const ctl = new AbortController();
    const gen = engine.generate({ reqId: "a", model: MODEL, prompt: { kind: "text", text: "Once upon a time" }, sampling: { temperature: 0 }, maxTokens: 200 }, ctl.signal);
    const chunks = [];
    for await (const c of gen) {
      chunks.push(c);
      if (chunks.length === 3) {
        ctl.abort();
        expect(core.stats().numFreeBlocks).toBe(core.stats().numBlocks);
      }
    }
    expect(chunks.length).toBe(4);
    expect(chunks[3]).toMatchObject({ tokenIds: [], finishReason: "abort" });
    const { free, total } = await poolState(engine);
    expect(free).toBe(total);
    await engine.close();
  });

  it("leaving the loop early aborts the request", async () => {
    const engine = await makeEngine();
    let n = 0;
    for await (const _ of engine.generate({ reqId: "b", model: MODEL, prompt: { kind: "text", text: "The cat" }, sampling: { temperature: 0 }, maxTokens: 100 })) {
      if (++n === 2) break;
    }
    expect((await engine.stats()).running).toBe(0);
    const { free, total } = await poolState(engine);
    expect(free).toBe(total);
    await engine.close();
  });

  it("a stop string cuts the text and frees the request", async () => {
    const engine = await makeEngine();
    const r = await run(engine, "Once upon a time", { maxTokens: 60, stop: [" girl"] });
    expect(r.text).toBe(", there was a little");
    expect(r.finishReason).toBe("stop");
    const { free, total } = await poolState(engine);
    expect(free).toBe(total);
    expect((await engine.stats()).running).toBe(0);
    await engine.close();
  });

  it("stops at EOS (not output), and without max tokens at the end of the context", async () => {
    const engine = await makeEngine();
    const eos = (await stories260K()).tokenizer.eosId!;
    const atOnce = await run(engine, "Once upon a time", { sampling: { temperature: 0, logitBias: { [eos]: 100 } } });
    expect(atOnce).toMatchObject({ text: "", tokenIds: [], finishReason: "stop", usage: { promptTokens: 5, completionTokens: 0 } });
    // Greedy stories260K never picks EOS here: it runs to the 512-token context.
    const full = await run(engine, "Once upon a time");
    expect(full.finishReason).toBe("length");
    expect(full.text.startsWith(GREEDY_60)).toBe(true);
    expect(full.usage).toEqual({ promptTokens: 5, completionTokens: 512 - 5 });
    const { free, total } = await poolState(engine);
    expect(free).toBe(total);
    await engine.close();
  });

  it("reports logprobs with the top alternatives", async () => {
    const engine = await makeEngine();
    const r = await run(engine, "Once upon a time", { maxTokens: 5, logprobs: true, sampling: { temperature: 0, topLogprobs: 3 } });
    expect(r.logprobs.length).toBe(5);
    for (const [i, lp] of r.logprobs.entries()) {
      expect(lp.id).toBe(r.tokenIds[i]);
      expect(lp.logprob).toBeLessThanOrEqual(0);
      expect(lp.top.length).toBe(3);
      expect(lp.top[0]!.id).toBe(lp.id);
    }
    await engine.close();
  });

  it("refuses bad requests with the right code and param", async () => {
    const engine = await makeEngine();
    const base = { reqId: "x", model: MODEL, prompt: { kind: "text" as const, text: "Hi" }, sampling: {} };
    const first = (req: object) => engine.generate({ ...base, ...req })[Symbol.asyncIterator]().next();
    expect((await refusal(first({ model: "nope" }))).code).toBe("model_not_found");
    expect(await refusal(first({ prompt: { kind: "text", text: "" } }))).toMatchObject({ code: "invalid_request", param: "prompt" });
    expect(await refusal(first({ maxTokens: 600 }))).toMatchObject({ code: "context_length_exceeded", param: "maxTokens" });
    expect(await refusal(first({ sampling: { topP: 2 } }))).toMatchObject({ code: "invalid_request", param: "sampling.topP" });
    expect(await refusal(first({ sampling: { logitBias: { 9999: 1 } } }))).toMatchObject({ code: "invalid_request", param: "sampling.logitBias" });
    expect(await refusal(first({ tier: "gold" }))).toMatchObject({ code: "invalid_request", param: "tier" });
    await engine.close();
  });

  it("serves a context shorter than the model's (maxModelLen): the card, the limit and the default max tokens follow it", async () => {
    const engine = await makeEngine({ maxModelLen: 64 });
    expect((await engine.models())[0]!.maxModelLen).toBe(64);
    expect(await refusal(run(engine, "Once upon a time", { maxTokens: 60 }))).toMatchObject({ code: "context_length_exceeded", param: "maxTokens" });
    const r = await run(engine, "Once upon a time");
    expect(r).toMatchObject({ finishReason: "length", usage: { promptTokens: 5, completionTokens: 59 } });
    await engine.close();
  });

  it("refuses with queue_full past the waiting limit, and serves the rest of a burst", async () => {
    const engine = await makeEngine({ maxNumSeqs: 4, maxWaiting: 6 });
    const runs = Array.from({ length: 30 }, (_, i) => run(engine, `Tom had ${i} apples`, { maxTokens: 3 }).then((r) => r, (e: unknown) => e));
    const results = await Promise.all(runs);
    const refused = results.filter((r) => r instanceof EngineError);
    expect(refused.length).toBe(20);
    for (const e of refused) expect(e).toMatchObject({ code: "queue_full", retryAfterS: 1 });
    for (const r of results.filter((x) => !(x instanceof EngineError))) expect((r as { tokenIds: number[] }).tokenIds.length).toBe(3);
    const { free, total } = await poolState(engine);
    expect(free).toBe(total);
    await engine.close();
  });

  it("fails a request that waits past its tier's queue timeout with queue_timeout", async () => {
    const tiers = [{ name: "standard", ttftTargetMs: 1000, tpotTargetMs: 100, queueTimeoutMs: 30 }];
    const engine = await makeEngine({ maxNumSeqs: 1, tiers });
    const long = run(engine, "Once upon a time", { maxTokens: 100, ignoreEos: true });
    await new Promise((r) => setTimeout(r, 5));
    const err = await refusal(run(engine, "The cat", { maxTokens: 2 }));
    expect(err.code).toBe("queue_timeout");
    expect(err.message).toMatch(/queue timeout 30 ms/);
    expect((await long).tokenIds.length).toBe(100);
    await engine.close();
  });

  it("says loading, then ready; draining refuses new requests and lets running ones finish", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const engine = new Engine(gate.then(stories260K).then((m) => [m]));
    expect((await engine.health()).status).toBe("loading");
    expect((await refusal(run(engine, "Hi", { maxTokens: 1 }))).code).toBe("unavailable");
    release();
    await engine.ready();
    expect((await engine.health()).status).toBe("ready");
    expect((await engine.models()).map((m) => m.id)).toEqual([MODEL]);
    const inflight = run(engine, "Once upon a time", { maxTokens: 20 });
    await new Promise((r) => setTimeout(r, 5));
    const drained = engine.drain();
    expect((await refusal(run(engine, "Hi", { maxTokens: 1 }))).code).toBe("unavailable");
    expect((await inflight).tokenIds.length).toBe(20);
    await drained;
    expect((await engine.health()).status).toBe("draining");
    await engine.close();
  });

  it("a load failure shows in health()", async () => {
    const engine = new Engine(Promise.reject(new Error("no such file")));
    await expect(engine.ready()).rejects.toThrow("no such file");
    expect(await engine.health()).toMatchObject({ status: "failed", message: expect.stringContaining("no such file") });
  });
});
