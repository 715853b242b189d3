// http_engine_client.test.ts: the browser's HttpEngineClient (apps/web/src/http_client.ts), run in Node
// against a real kiln server (stories260K, continuous-batching Engine, cpu, 127.0.0.1): it streams the
// engine's greedy text, claims no token ids (the wire has none) and ends with the server's usage;
// abort(reqId), the request's signal and leaving the loop early each close the connection, and the
// server then has nothing running and every KV block free (read from its /metrics and its block pool);
// stats() are the server's own gauges; refusals keep their codes. statsFromMetrics reads vLLM's names too.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpEngineClient } from "../../apps/web/src/http_client.js";
import { statsFromMetrics } from "../../apps/web/src/server_stats.js";
import type { GenerateRequest, StreamedChunk } from "../../src/web.js";
import { EngineError } from "../../src/web.js";
import { poolState } from "./engine_helpers.js";
import type { Served } from "./openai_helpers.js";
import { GREEDY_60, MODEL, serve, waitFor } from "./openai_helpers.js";

let served: Served;
let client: HttpEngineClient;
let seq = 0;

beforeAll(async () => {
  // NOTE: one request runs at a time (maxNumSeqs 1), so a second one waits: stats() can see both.
  served = await serve({ maxNumSeqs: 1 });
  client = new HttpEngineClient(`${served.url}/v1`);
});

afterAll(async () => {
  await served?.close();
});

const request = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({
  reqId: `t-${++seq}`, model: MODEL, prompt: { kind: "text", text: "Once upon a time" }, sampling: { temperature: 0 }, maxTokens: 60, ...over,
});

/** A long request: 400 tokens past EOS take the engine seconds, so an abort lands mid-way. */
const long = () => request({ maxTokens: 400, ignoreEos: true });

/** The server's gauges as its /metrics text says (read here with a regex, not with the client's parser). */
async function scrape(): Promise<{ running: number; waiting: number; kv: number }> {
  const text = await (await fetch(`${served.url}/metrics`)).text();
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return { running: gauge("kiln_num_requests_running"), waiting: gauge("kiln_num_requests_waiting"), kv: gauge("kiln_kv_cache_usage_ratio") };
}

/** After an abort: the server lets go of the request within a few seconds, and frees every block. */
async function expectServerIdle(): Promise<void> {
  expect(await waitFor(async () => (await scrape()).running === 0)).toBe(true);
  expect(await scrape()).toEqual({ running: 0, waiting: 0, kv: 0 });
  const { free, total } = await poolState(served.engine);
  expect(free).toBe(total);
}

async function collect(it: AsyncIterable<StreamedChunk>): Promise<StreamedChunk[]> {
  const out: StreamedChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe("HttpEngineClient against kiln serve", () => {
  it("streams the engine's greedy text; claims no token ids; the last chunk has the server's usage", async () => {
    const chunks = await collect(client.generate(request()));
    expect(chunks.map((c) => c.textDelta).join("")).toBe(GREEDY_60);
    expect(chunks.every((c) => c.tokenIds === undefined)).toBe(true);
    const last = chunks.at(-1)!;
    expect(last.finishReason).toBe("length");
    // "Once upon a time" is BOS + 4 tokens in llama2.c's tokenizer.
    expect(last.usage).toEqual({ promptTokens: 5, completionTokens: 60 });
    expect(chunks.slice(0, -1).every((c) => c.finishReason === undefined && c.usage === undefined)).toBe(true);
  });

  it("abort(reqId) closes the connection: the stream ends with 'abort' and the server frees the request's KV blocks", async () => {
    const core = served.engine.core(MODEL)!;
    const generated = core.numGeneratedTokens;
    const req = long();
    const chunks: StreamedChunk[] = [];
    for await (const c of client.generate(req)) {
      chunks.push(c);
      if (chunks.length === 3) {
        // Mid-generation, the server holds the request and some KV blocks.
        const during = await scrape();
        expect(during.running).toBe(1);
        expect(during.kv).toBeGreaterThan(0);
        await client.abort(req.reqId);
      }
    }
    expect(chunks.length).toBe(4);
    expect(chunks.at(-1)).toEqual({ textDelta: "", finishReason: "abort" });
    await expectServerIdle();
    expect(core.numGeneratedTokens - generated).toBeLessThan(200);
    // Aborting a request that has ended (or never existed) does nothing.
    await client.abort(req.reqId);
    await client.abort("no-such-request");
  });

  it("the request's signal aborts it too, and so does leaving the loop early", async () => {
    const ctl = new AbortController();
    const chunks: StreamedChunk[] = [];
    for await (const c of client.generate(long(), ctl.signal)) if (chunks.push(c) === 2) ctl.abort();
    expect(chunks.at(-1)?.finishReason).toBe("abort");
    await expectServerIdle();

    let n = 0;
    for await (const _ of client.generate(long())) if (++n === 2) break;
    await expectServerIdle();

    // A signal aborted before the start sends nothing that runs.
    const before = new AbortController();
    before.abort();
    expect(await collect(client.generate(long(), before.signal))).toEqual([{ textDelta: "", finishReason: "abort" }]);
    await expectServerIdle();
  });

  it("stats() are the server's gauges: one request running, one waiting, then none", async () => {
    const a = long();
    const b = long();
    const ia = client.generate(a)[Symbol.asyncIterator]();
    const ib = client.generate(b)[Symbol.asyncIterator]();
    await ia.next();
    const pendingB = ib.next();
    expect(await waitFor(async () => (await client.stats()).waiting === 1)).toBe(true);
    const s = await client.stats();
    expect(s).toMatchObject({ running: 1, waiting: 1, preempted: 0 });
    expect(s.kvCacheUsage).toBeGreaterThan(0);
    expect(s.kvCacheUsage).toBeLessThanOrEqual(1);
    await client.abort(b.reqId);
    await client.abort(a.reqId);
    expect((await pendingB).value).toEqual({ textDelta: "", finishReason: "abort" });
    await ia.return?.();
    await expectServerIdle();
    expect(await client.stats()).toMatchObject({ running: 0, waiting: 0, kvCacheUsage: 0 });
  });

  it("keeps the server's refusals' codes and names an unreachable server", async () => {
    const refused = async (req: GenerateRequest, c = client) => {
      try {
        await collect(c.generate(req));
      } catch (err) {
        return err;
      }
      throw new Error("no error");
    };
    expect(await refused(request({ model: "nope" }))).toMatchObject({ code: "model_not_found" });
    expect(await refused(request({ prompt: { kind: "tokens", tokenIds: new Array(600).fill(1) }, maxTokens: 1 }))).toMatchObject({ code: "context_length_exceeded", param: "prompt" });
    expect(await refused(request({ logprobs: true }))).toMatchObject({ code: "invalid_request", param: "logprobs" });
    const gone = new HttpEngineClient("http://127.0.0.1:9/v1");
    const err = await refused(request(), gone);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: "unavailable", message: expect.stringMatching(/^cannot reach http:\/\/127\.0\.0\.1:9\/v1/) });
  });
});

describe("stats from a server's /metrics", () => {
  it("a server without request gauges offers no stats: stats() says so", async () => {
    const bare = createServer((req, res) => res.writeHead(req.url === "/metrics" ? 200 : 404).end("# nothing here\nprocess_cpu_seconds_total 3\n"));
    await new Promise<void>((r) => bare.listen(0, "127.0.0.1", r));
    const { port } = bare.address() as AddressInfo;
    try {
      await expect(new HttpEngineClient(`http://127.0.0.1:${port}/v1`).stats()).rejects.toMatchObject({ code: "unavailable", message: expect.stringMatching(/offers no stats/) });
    } finally {
      await new Promise((r) => bare.close(r));
    }
  });

  it("reads vLLM's names: counts of several models add up, the cache usage is the largest", () => {
    const text = [
      "# HELP vllm:num_requests_running Number of requests in model execution batches.",
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{engine="0",model_name="a"} 2.0',
      'vllm:num_requests_running{engine="0",model_name="b"} 1.0',
      'vllm:num_requests_waiting{engine="0",model_name="a"} 4.0 1700000000000',
      'vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.25',
      'vllm:kv_cache_usage_perc{engine="0",model_name="b"} 0.5',
    ].join("\n");
    expect(statsFromMetrics(text)).toEqual({ running: 3, waiting: 4, kvCacheUsage: 0.5 });
    expect(statsFromMetrics("kiln_num_requests_running 1\n")).toBeUndefined();
  });
});
