// bench_serve_fake.test.ts: `kiln bench serve`'s request side against a scripted node:http server
// that misbehaves on purpose, one path per behaviour: usage-less streams (tokens counted as chunks,
// TTFT at the first chunk with text), the API key header, an error event mid-stream, a 500 with a
// plain-text body, a redirect (reported, never followed), a stream that is not SSE or not JSON, a
// request that never ends (timeout), and stopping a run (Ctrl-C's path): in-flight requests are
// aborted and the report says the run stopped.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BenchServeOptions } from "../../src/bench_serve/index.js";
import { runBenchServe } from "../../src/bench_serve/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const event = (res: ServerResponse, data: unknown) => res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
const sse = (res: ServerResponse) => res.writeHead(200, { "Content-Type": "text/event-stream" });

/** Bodies and headers the server saw, by path. */
const seen: { path: string; auth: string | undefined; body: Record<string, unknown> }[] = [];
const open = new Set<ServerResponse>();

const routes: Record<string, (res: ServerResponse) => Promise<void>> = {
  // three text chunks 20 ms apart after an empty one, no usage, then [DONE]
  "/plain/v1/completions": async (res) => {
    sse(res);
    event(res, { choices: [{ index: 0, text: "" }] });
    for (const t of ["a", "b", "c"]) {
      await sleep(20);
      event(res, { choices: [{ index: 0, text: t, finish_reason: null }] });
    }
    event(res, "[DONE]");
    res.end();
  },
  "/midway/v1/completions": async (res) => {
    sse(res);
    event(res, { choices: [{ index: 0, text: "a" }] });
    event(res, { error: { message: "the engine failed", type: "server_error" } });
    event(res, "[DONE]");
    res.end();
  },
  "/oops/v1/completions": async (res) => {
    res.writeHead(500, { "Content-Type": "text/plain" }).end("oops, no JSON here");
  },
  "/moved/v1/completions": async (res) => {
    res.writeHead(302, { Location: "http://192.0.2.1/v1/completions" }).end();
  },
  "/notsse/v1/completions": async (res) => {
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ choices: [{ text: "whole" }] }));
  },
  "/garbage/v1/completions": async (res) => {
    sse(res);
    event(res, "not json");
    res.end();
  },
  // headers, then nothing, until the client goes away
  "/hang/v1/completions": async (res) => {
    sse(res);
    await new Promise((r) => res.once("close", r));
  },
};

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    open.add(res);
    res.once("close", () => open.delete(res));
    let text = "";
    req.on("data", (d: Buffer) => (text += d));
    req.on("end", () => {
      seen.push({ path: req.url ?? "", auth: req.headers.authorization, body: JSON.parse(text) as Record<string, unknown> });
      const route = routes[req.url ?? ""];
      if (!route) res.writeHead(404).end();
      else route(res).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of open) res.destroy();
  const closed = new Promise((r) => server?.close(r));
  server?.closeAllConnections();
  await closed;
});

const opts = (path: string, more: Partial<BenchServeOptions> = {}): BenchServeOptions => ({
  url: `${url}/${path}/v1`, endpoint: "completions", model: "m", stream: true, includeUsage: false, maxTokens: 3, ignoreEos: false,
  temperature: 0.5, timeoutMs: 10_000, prompts: ["hi"], levels: [{ mode: "concurrency", concurrency: 1 }], requests: 1, seed: 0, warmup: 0, ...more,
});

const one = async (path: string, more: Partial<BenchServeOptions> = {}) => (await runBenchServe(opts(path, more))).levels[0]!;

describe("requests against a scripted server", () => {
  it("without usage, counts text chunks; TTFT is the first chunk with text; sends the key and the body", async () => {
    seen.length = 0;
    const l = await one("plain", { apiKey: "sk-test", ignoreEos: true });
    const r = l.results[0]!;
    expect(r).toMatchObject({ outputTokens: 3, tokensFrom: "chunks" });
    expect(r.error).toBeUndefined();
    expect(r.ttftMs!).toBeGreaterThanOrEqual(15);
    expect(r.tpotMs!).toBeGreaterThanOrEqual(15);
    expect(l.tokensFrom).toBe("chunks");
    expect(seen[0]).toEqual({
      path: "/plain/v1/completions", auth: "Bearer sk-test",
      body: { model: "m", prompt: "hi", max_tokens: 3, temperature: 0.5, ignore_eos: true, stream: true },
    });
  });

  it.each([
    ["midway", { kind: "stream", message: "the stream carried an error: the engine failed" }],
    ["oops", { kind: "http", status: 500, message: "oops, no JSON here" }],
    ["moved", { kind: "http", status: 302 }],
    ["notsse", { kind: "protocol", message: "the stream ended without any server-sent event" }],
    ["garbage", { kind: "protocol", message: "a stream event is not JSON: not json" }],
    ["nowhere", { kind: "http", status: 404 }],
  ])("%s: the request fails with %j", async (path, error) => {
    const l = await one(path);
    expect(l).toMatchObject({ requests: 1, successes: 0, errors: 1, errorRate: 1, outputTokens: 0 });
    expect(l.results[0]!.error).toMatchObject(error);
  });

  it("a request that never ends is a timeout error", async () => {
    const l = await one("hang", { timeoutMs: 150 });
    expect(l.results[0]!.error).toEqual({ kind: "timeout", message: "no complete response within the request timeout (0.15 s)" });
    expect(l.results[0]!.e2eMs).toBeGreaterThanOrEqual(140);
  });

  it("stopping the run aborts requests in flight, sends no more, and reports a stopped run", async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    const report = await runBenchServe(opts("hang", { levels: [{ mode: "concurrency", concurrency: 2 }, { mode: "rate", rate: 5 }], requests: 10 }), { signal: ctl.signal });
    expect(report.stopped).toBe(true);
    expect(report.levels).toHaveLength(1);
    expect(report.levels[0]).toMatchObject({ requests: 2, errors: 2, errorsByKind: { aborted: { count: 2 } } });
  });
});
