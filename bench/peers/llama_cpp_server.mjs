// llama_cpp_server.mjs: a small OpenAI-compatible completions server on node-llama-cpp, the llama.cpp
// peer of `kiln serve` in bench/serve_peer.ts. It is NOT llama-server (node-llama-cpp ships no
// llama-server binary): one model, one llama.cpp context with --parallel sequences, and node-llama-cpp's
// own batching, which evaluates the pending tokens of all running sequences in one llama_decode per
// cycle (continuous batching as node-llama-cpp allows it; a request waits for a free sequence). Only
// what `kiln bench serve` sends is served: GET /v1/models, POST /v1/completions (stream or not,
// stream_options.include_usage, max_tokens, temperature, ignore_eos). Plain JS so it runs with `node`.
//
//   node bench/peers/llama_cpp_server.mjs --model FILE.gguf [--port 0] [--parallel 32] [--threads N] [--ctx 256]
//
// It prints "listening on http://127.0.0.1:PORT/v1" when ready. The peer is found where
// npm run peer:install put it ($KILN_PEER_DIR, else ~/.cache/kiln-peers/node-llama-cpp).

import { createServer } from "node:http";
import { existsSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { model: { type: "string" }, port: { type: "string", default: "0" }, parallel: { type: "string", default: "32" }, threads: { type: "string" }, ctx: { type: "string", default: "256" } },
});
const count = (flag, text, min) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`llama_cpp_server: --${flag} must be an integer >= ${min}, got '${text}'`);
  return n;
};
if (!values.model) throw new Error("llama_cpp_server: --model FILE.gguf is required");
const port = count("port", values.port, 0);
const parallel = count("parallel", values.parallel, 1);
const threads = count("threads", values.threads ?? String(availableParallelism()), 1);
const ctxSize = count("ctx", values.ctx, 16);

const dir = process.env.KILN_PEER_DIR || join(homedir(), ".cache", "kiln-peers", "node-llama-cpp");
const entry = join(dir, "node_modules", "node-llama-cpp", "dist", "index.js");
if (!existsSync(entry)) {
  console.error("peer: not installed (run npm run peer:install)");
  process.exit(3);
}
const { getLlama } = await import(pathToFileURL(entry).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error", maxThreads: threads });
const model = await llama.loadModel({ modelPath: values.model });
const context = await model.createContext({ contextSize: ctxSize, sequences: parallel, batchSize: Math.max(ctxSize, parallel), threads: { ideal: threads, min: threads } });
const modelId = basename(values.model).replace(/\.gguf$/, "");

// NOTE: sequences are handed out in request order; a request beyond --parallel waits for one to free.
const waiting = [];
const acquire = () => (context.sequencesLeft > 0 ? Promise.resolve(context.getSequence()) : new Promise((resolve) => waiting.push(resolve)));
const release = (seq) => {
  const next = waiting.shift();
  if (next) {
    seq.clearHistory().then(() => next(seq), () => next(seq));
  } else {
    seq.dispose();
  }
};

const json = (res, status, body) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

async function completion(req, res, body) {
  if (typeof body.prompt !== "string" || body.prompt === "") return json(res, 400, { error: { message: "prompt must be a non-empty string (arrays are not served here)" } });
  const maxTokens = body.max_tokens ?? 16;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) return json(res, 400, { error: { message: `max_tokens must be an integer >= 1, got ${JSON.stringify(body.max_tokens)}` } });
  const temperature = typeof body.temperature === "number" ? body.temperature : 1;
  const ids = [...(model.tokens.bos === null ? [] : [model.tokens.bos]), ...model.tokenize(body.prompt, false)];
  if (ids.length + maxTokens > ctxSize) return json(res, 400, { error: { message: `prompt (${ids.length} tokens) + max_tokens (${maxTokens}) exceed the context of ${ctxSize}` } });
  const id = `cmpl-${Math.random().toString(36).slice(2)}`;
  const created = Math.floor(Date.now() / 1000);
  const stream = body.stream === true;
  const usage = body.stream_options?.include_usage === true;
  let aborted = false;
  res.on("close", () => (aborted = !res.writableFinished));
  if (stream) res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const chunk = (text, finish) => ({ id, object: "text_completion", created, model: modelId, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] });
  const seq = await acquire();
  const out = [];
  let finish = "length";
  try {
    await seq.clearHistory();
    for await (const t of seq.evaluate(ids, { temperature })) {
      if (aborted) break;
      if (!body.ignore_eos && model.isEogToken?.(t)) {
        finish = "stop";
        break;
      }
      out.push(t);
      // NOTE: the tokens before give the piece its leading space (SentencePiece drops it at the start of a text).
      if (stream) res.write(`data: ${JSON.stringify(chunk(model.detokenize([t], false, [...ids, ...out].slice(-4, -1)), null))}\n\n`);
      if (out.length >= maxTokens) break;
    }
  } finally {
    release(seq);
  }
  if (aborted) return;
  const u = { prompt_tokens: ids.length, completion_tokens: out.length, total_tokens: ids.length + out.length };
  if (!stream) return json(res, 200, { ...chunk(model.detokenize(out), finish), usage: u });
  res.write(`data: ${JSON.stringify(chunk("", finish))}\n\n`);
  if (usage) res.write(`data: ${JSON.stringify({ id, object: "text_completion", created, model: modelId, choices: [], usage: u })}\n\n`);
  res.end("data: [DONE]\n\n");
}

const server = createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  if (req.method === "GET" && path === "/v1/models") return json(res, 200, { object: "list", data: [{ id: modelId, object: "model", owned_by: "node-llama-cpp" }] });
  if (req.method !== "POST" || path !== "/v1/completions") return json(res, 404, { error: { message: `not served here: ${req.method} ${path}` } });
  let text = "";
  req.setEncoding("utf8").on("data", (d) => (text += d)).on("end", () => {
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      return json(res, 400, { error: { message: "the body is not JSON" } });
    }
    completion(req, res, body).catch((err) => {
      if (!res.headersSent) json(res, 500, { error: { message: err.message } });
      else res.end();
    });
  });
});

const shutdown = async () => {
  server.close();
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
server.listen(port, "127.0.0.1", () => {
  console.log(`node-llama-cpp (llama.cpp) serving ${modelId}, ${parallel} sequences, ${threads} threads, listening on http://127.0.0.1:${server.address().port}/v1`);
});
