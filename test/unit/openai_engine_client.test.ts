// openai_engine_client.test.ts: the Engine as an EngineClient (the contract the OpenAI server and the
// browser page rely on), in process, on the real stories260K, one request running at a time: chunks add up to llama2.c's greedy text with usage on the last one; requests queued
// together each get exactly the text they get alone (no mixing); abort by id, by signal and by leaving
// the loop ends a request (waiting or running) with finishReason "abort"; bad requests are refused
// with the EngineError code and field the HTTP layer maps to a status.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerateChunk, GenerateRequest } from "../../src/serve/engine_client.js";
import { EngineError } from "../../src/serve/engine_client.js";
import { Engine } from "../../src/serve/engine.js";
import { GREEDY_60, MODEL, stories260K, waitFor } from "./openai_helpers.js";

let engine: Engine;
let nextId = 0;

beforeAll(async () => {
  // NOTE: one seat, so requests visibly wait (the abort-while-waiting case needs a waiting request).
  engine = new Engine(stories260K().then((m) => [m]), { maxWaiting: 8, maxNumSeqs: 1, numBlocks: 64 });
  await engine.ready();
});

afterAll(async () => {
  await engine?.close();
});

const request = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({
  reqId: `r${nextId++}`, model: MODEL, prompt: { kind: "text", text: "Once upon a time" }, sampling: { temperature: 0 }, maxTokens: 8, ...over,
});

async function collect(it: AsyncIterable<GenerateChunk>): Promise<{ text: string; ids: number[]; last: GenerateChunk }> {
  let text = "";
  const ids: number[] = [];
  let last: GenerateChunk | undefined;
  for await (const c of it) {
    text += c.textDelta;
    ids.push(...c.tokenIds);
    last = c;
  }
  return { text, ids, last: last! };
}

async function refusal(req: GenerateRequest): Promise<EngineError> {
  try {
    await collect(engine.generate(req));
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    return err as EngineError;
  }
  throw new Error("expected an EngineError");
}

describe("Engine as an EngineClient", () => {
  it("streams llama2.c's greedy text; the last chunk has the finish reason and usage", async () => {
    const { text, ids, last } = await collect(engine.generate(request({ maxTokens: 60 })));
    expect(text).toBe(GREEDY_60);
    expect(ids).toHaveLength(60);
    expect(last).toMatchObject({ finishReason: "length", usage: { promptTokens: 5, completionTokens: 60 } });
  });

  it("requests queued together each get the text they get alone", async () => {
    const prompts = ["Once upon a time", "The dog", "Lily saw a bird", "One day"];
    const alone: string[] = [];
    for (const text of prompts) alone.push((await collect(engine.generate(request({ prompt: { kind: "text", text }, maxTokens: 12 })))).text);
    // A long request holds the one seat, so the four visibly queue behind it.
    const ctl = new AbortController();
    const holder = collect(engine.generate(request({ maxTokens: 400 }), ctl.signal));
    expect(await waitFor(async () => (await engine.stats()).running === 1)).toBe(true);
    const together = prompts.map((text) => collect(engine.generate(request({ prompt: { kind: "text", text }, maxTokens: 12 }))));
    expect(await waitFor(async () => (await engine.stats()).waiting === 4)).toBe(true);
    ctl.abort();
    expect((await holder).last.finishReason).toBe("abort");
    expect((await Promise.all(together)).map((r) => r.text)).toEqual(alone);
    expect(new Set(alone).size).toBe(prompts.length);
  });

  it("abort(reqId) ends a waiting and a running request with finishReason abort", async () => {
    const running = request({ maxTokens: 400 });
    const waiting = request({ maxTokens: 400 });
    const a = collect(engine.generate(running));
    const b = collect(engine.generate(waiting));
    expect(await waitFor(async () => (await engine.stats()).waiting === 1)).toBe(true);
    await engine.abort(waiting.reqId);
    const rb = await b;
    expect(rb.ids).toEqual([]);
    expect(rb.last).toMatchObject({ finishReason: "abort", usage: { completionTokens: 0 } });
    await engine.abort(running.reqId);
    const ra = await a;
    expect(ra.last.finishReason).toBe("abort");
    expect(ra.ids.length).toBeLessThan(400);
    expect(await engine.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it("an aborted signal or leaving the loop early stops the request", async () => {
    const ctl = new AbortController();
    let n = 0;
    let last: GenerateChunk | undefined;
    for await (const c of engine.generate(request({ maxTokens: 400 }), ctl.signal)) {
      last = c;
      if (++n === 3) ctl.abort();
    }
    expect(last?.finishReason).toBe("abort");
    expect(n).toBeLessThan(10);
    for await (const c of engine.generate(request({ maxTokens: 400 }))) if (c.tokenIds.length) break;
    expect(await waitFor(async () => (await engine.stats()).running === 0)).toBe(true);
    expect((await collect(engine.generate(request({ maxTokens: 3 })))).text).toBe(", there was");
  });

  it("logitBias bans a token; stop strings cut the text", async () => {
    const plain = await collect(engine.generate(request({ maxTokens: 3 })));
    const comma = plain.ids[0]!;
    const banned = await collect(engine.generate(request({ sampling: { temperature: 0, logitBias: { [comma]: -Infinity } }, maxTokens: 3 })));
    expect(plain.text.startsWith(",")).toBe(true);
    expect(banned.ids).not.toContain(comma);
    expect(banned.text.startsWith(",")).toBe(false);
    const stopped = await collect(engine.generate(request({ maxTokens: 60, stop: ["girl"] })));
    expect(stopped.text).toBe(", there was a little ");
    expect(stopped.last.finishReason).toBe("stop");
  });

  it("a stop token ends the request without adding text; ignoreEos generates through it", async () => {
    const eos = { 2: 100 }; // stories260K's EOS id is 2; the bias makes the model pick it
    const stopped = await collect(engine.generate(request({ sampling: { temperature: 0, logitBias: eos }, maxTokens: 4 })));
    expect(stopped.ids).toEqual([]);
    expect(stopped.last).toMatchObject({ textDelta: "", finishReason: "stop", usage: { completionTokens: 0 } });
    const through = await collect(engine.generate(request({ sampling: { temperature: 0, logitBias: eos }, maxTokens: 4, ignoreEos: true })));
    expect(through.ids).toEqual([2, 2, 2, 2]);
    expect(through.last.finishReason).toBe("length");
  });

  it("refuses bad requests with the code and field the HTTP layer maps", async () => {
    expect(await refusal(request({ model: "nope" }))).toMatchObject({ code: "model_not_found", param: "model" });
    expect(await refusal(request({ prompt: { kind: "text", text: "" } }))).toMatchObject({ code: "invalid_request", param: "prompt" });
    expect(await refusal(request({ prompt: { kind: "tokens", tokenIds: [1, 512] } }))).toMatchObject({ code: "invalid_request", param: "prompt" });
    expect(await refusal(request({ prompt: { kind: "chat", messages: [] } }))).toMatchObject({ code: "invalid_request", param: "messages" });
    expect(await refusal(request({ maxTokens: 600 }))).toMatchObject({ code: "context_length_exceeded", param: "maxTokens" });
    expect(await refusal(request({ sampling: { topP: 2 } }))).toMatchObject({ code: "invalid_request", param: "sampling.topP" });
    expect(await refusal(request({ sampling: { logitBias: { 9999: 1 } } }))).toMatchObject({ code: "invalid_request", param: "sampling.logitBias" });
    expect(await refusal(request({ stop: [""] }))).toMatchObject({ code: "invalid_request", param: "stop" });
    const held = request({ maxTokens: 400 });
    const it = engine.generate(held)[Symbol.asyncIterator]();
    await it.next();
    expect(await refusal(request({ reqId: held.reqId }))).toMatchObject({ code: "invalid_request", param: "reqId" });
    await it.return?.();
  });

  it("errors cross a boundary as plain data", () => {
    const e = new EngineError({ code: "queue_full", message: "full", retryAfterS: 2 });
    const data = structuredClone(e.toData());
    expect(data).toEqual({ code: "queue_full", message: "full", retryAfterS: 2 });
    expect(new EngineError(data)).toMatchObject({ code: "queue_full", retryAfterS: 2, param: undefined });
  });
});
