// serve_peer.ts: `npm run bench:serve:peer`: `kiln serve` beside llama.cpp's own llama-server on the same
// GGUF file (written by kiln: the 85.7M Llama of issue 14, or stories260K), the same thread count, the
// same number of requests decoded at once (--parallel 32 slots with continuous batching; kiln --max-batch
// 32) and the same KV capacity (32 x 256 tokens), under the same load from src/bench_serve (the engine of
// `kiln bench serve --peer-url`): streamed completions of 64 tokens (ignore_eos, greedy, the same prompt)
// at concurrency 1, 8 and 32, each level on its own, passes alternating which server goes first. Before
// timing, both continue the prompt greedily and the texts are compared (printed under the table).
// llama-server is found in $KILN_LLAMA_CPP_BIN, else ~/.cache/kiln-peers/llama.cpp/build/bin
// (bench/peers/build_llama_cpp.sh builds it); --peer-server PATH names another binary, and --peer
// node-llama-cpp runs the older stand-in (bench/peers/llama_cpp_server.mjs, not llama-server).
// Results: bench/results/serve-peer-<peer>-<model>-<tag>-t<N>.json/.md.
//
//   KILN_THREADS=2 npx tsx bench/serve_peer.ts [--model llama-85.7M|stories260K] [--levels 1:16,8:64,32:128]
//       [--passes 3] [--peer llama-server|node-llama-cpp] [--peer-server PATH] [--prefill-first] [--quick] [--out DIR] [--tag NAME]
//   (--prefill-first: kiln serve --prefill-first, src/serve/prefill_first.ts)
//   KILN_SERVE_CPU_PROF=DIR ... also writes kiln serve's V8 CPU profile (node --cpu-prof) into DIR when it stops.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { BenchServeOptions } from "../src/bench_serve/index.js";
import { runServeComparison, serveTable } from "../src/bench_serve/index.js";
import { machineInfo } from "./lib/machine.js";
import { findLlamaCppTool, llamaCppCommit, notBuilt } from "./peers/llama_cpp_bin.js";
import { peerThreads } from "./peers/llama_cpp_generate.js";
import { NOT_INSTALLED, peerEntry } from "./peers/llama_cpp_location.js";
import { DEFAULT_SETUP, kilnServeArgs, llamaServerArgs, parseLevels } from "./peers/llama_server.js";
import type { PeerModel } from "./peers/peer_models.js";
import { randomLlamaGguf, stories260KGguf } from "./peers/peer_models.js";
import type { Server } from "./peers/server_process.js";
import { freePort, greedyText, startServer, stopServer } from "./peers/server_process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const USAGE = "usage: tsx bench/serve_peer.ts [--model llama-85.7M|stories260K] [--levels C:R,...] [--passes N] [--peer llama-server|node-llama-cpp] [--peer-server PATH] [--prefill-first] [--quick] [--out DIR] [--tag NAME]";
const PROMPT = "Once upon a time";
const MODELS: Record<string, { file: () => PeerModel; levels: string }> = {
  "llama-85.7M": { file: () => randomLlamaGguf(), levels: "1:16,8:64,32:128" },
  stories260K: { file: () => stories260KGguf(), levels: "1:32,8:64,32:128" },
};

/** What `kiln bench serve --peer-url` sends: 64-token streamed completions, greedy, through EOS; 4 warm-up requests to each server. */
const load = (url: string, concurrencies: readonly number[]): BenchServeOptions => ({
  url, endpoint: "completions", stream: true, includeUsage: true, maxTokens: 64, ignoreEos: true, temperature: 0, timeoutMs: 300_000,
  prompts: [PROMPT], levels: concurrencies.map((concurrency) => ({ mode: "concurrency", concurrency })), seed: 0, warmup: 4,
});

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: {
      model: { type: "string" }, levels: { type: "string" }, passes: { type: "string" }, peer: { type: "string", default: "llama-server" },
      "peer-server": { type: "string" }, "prefill-first": { type: "boolean", default: false }, quick: { type: "boolean", default: false }, out: { type: "string", default: "bench/results" }, tag: { type: "string" },
    },
  });
  const modelName = v.model ?? (v.quick ? "stories260K" : "llama-85.7M");
  const spec = MODELS[modelName];
  if (!spec) throw new Error(`--model must be one of ${Object.keys(MODELS).join(", ")}, got '${modelName}'\n${USAGE}`);
  if (v.peer !== "llama-server" && v.peer !== "node-llama-cpp") throw new Error(`--peer must be llama-server or node-llama-cpp, got '${v.peer}'\n${USAGE}`);
  const passes = Number(v.passes ?? (v.quick ? 1 : 3));
  if (!Number.isInteger(passes) || passes < 1) throw new Error(`--passes must be an integer >= 1, got '${v.passes}'\n${USAGE}`);
  const levels = parseLevels(v.levels ?? (v.quick ? "1:8,8:16,32:32" : spec.levels));
  let peerBin: string | undefined;
  if (v.peer === "llama-server") {
    peerBin = v["peer-server"] ?? findLlamaCppTool("llama-server");
    if (!peerBin) {
      console.log(notBuilt("llama-server"));
      return 0;
    }
  } else if (!peerEntry()) {
    console.log(NOT_INSTALLED);
    return 0;
  }
  const threads = peerThreads();
  const model = spec.file();
  const machine = machineInfo(v.tag);
  const setup = { model: model.path, threads, ...DEFAULT_SETUP };
  const env = { ...process.env, KILN_CPU_THREADS: String(threads), KILN_THREADS: String(threads) };
  const prof = process.env.KILN_SERVE_CPU_PROF;
  const nodeArgs = prof ? ["--cpu-prof", "--cpu-prof-dir", prof] : [];
  const kiln = await startServer("kiln serve", process.execPath, [...nodeArgs, join(ROOT, "bin", "kiln.mjs"), ...kilnServeArgs({ ...setup, prefillFirst: v["prefill-first"]! })], env, /at (http:\/\/\S+\/v1)/);
  let peer: Server | undefined;
  try {
    let peerName: string;
    if (peerBin) {
      const port = await freePort();
      peerName = `llama-server ${llamaCppCommit(peerBin)}`;
      peer = await startServer("llama-server", peerBin, llamaServerArgs({ ...setup, port }), env, { pollUrl: `http://127.0.0.1:${port}/v1` });
    } else {
      peerName = "node-llama-cpp server (bench/peers/llama_cpp_server.mjs, not llama-server)";
      peer = await startServer("llama_cpp_server", process.execPath, [join(ROOT, "bench", "peers", "llama_cpp_server.mjs"), "--model", model.path, "--port", "0", "--parallel", String(setup.parallel), "--threads", String(threads), "--ctx", String(setup.ctxPerSlot)], env, /listening on (http:\/\/\S+\/v1)/);
    }
    console.log(`kiln serve at ${kiln.url}, ${peerName} at ${peer.url}; ${model.name}; ${threads} threads each; ${passes} alternating passes`);
    const sanity = { kiln: await greedyText(kiln.url, PROMPT, 32), peer: await greedyText(peer.url, PROMPT, 32) };
    const same = sanity.kiln === sanity.peer;
    console.log(`sanity: greedy 32 tokens after ${JSON.stringify(PROMPT)}: ${same ? "the same text" : "DIFFERENT texts"}: kiln ${JSON.stringify(sanity.kiln)}${same ? "" : `, peer ${JSON.stringify(sanity.peer)}`}`);
    const requests = new Map(levels.map((l) => [l.concurrency, l.requests]));
    const rows = await runServeComparison(load(kiln.url, levels.map((l) => l.concurrency)), peer.url, passes, {
      requestsFor: (shape) => requests.get(shape.mode === "concurrency" ? shape.concurrency : -1)!,
      onLevel: (p, who, l) => console.log(`  pass ${p + 1} ${who} ${l.label}: ${l.outputTokensPerS.toFixed(0)} output tok/s, TTFT p50 ${(l.ttftMs.p50 ?? NaN).toFixed(0)} p99 ${(l.ttftMs.p99 ?? NaN).toFixed(0)} ms, ${l.errors} errors`),
    });
    const date = new Date().toISOString();
    const label = peerBin ? "llama-server" : "llama.cpp";
    const md = [
      `### serve side by side: kiln serve vs ${peerName}, ${model.name}, ${threads} thread${threads === 1 ? "" : "s"} (${machine.tag})`, "",
      `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}. Run ${date.slice(0, 16).replace("T", " ")} UTC` +
        `${v.quick ? ", quick (a smoke test, not a measurement)" : ""}. ${model.name} (the same GGUF file), ${setup.parallel} sequences at once ` +
        `(llama-server --parallel ${setup.parallel} --cont-batching, kiln --max-batch ${setup.parallel}${v["prefill-first"] ? " --prefill-first" : ""}), KV ${setup.parallel} x ${setup.ctxPerSlot} tokens each; ` +
        `streamed completions of 64 tokens (ignore_eos, greedy, prompt ${JSON.stringify(PROMPT)}), closed loop; ${passes} passes alternating which server goes first; ` +
        "ratios of the medians over passes. Both servers and the load generator share the machine.", "",
      ...serveTable(rows, label), "",
      `- sanity: greedy 32 tokens after ${JSON.stringify(PROMPT)}: ${same ? `the same text from both (${JSON.stringify(sanity.kiln)})` : `kiln ${JSON.stringify(sanity.kiln)}, ${label} ${JSON.stringify(sanity.peer)}`}`, "",
    ].join("\n");
    console.log(`\n${md}`);
    mkdirSync(v.out!, { recursive: true });
    const base = join(v.out!, `serve-peer-${peerBin ? "llama-server" : "llama-cpp"}-${model.name}${v["prefill-first"] ? "-prefill-first" : ""}-${machine.tag}-t${threads}`);
    writeFileSync(`${base}.json`, JSON.stringify({ suite: "serve-peer", version: 2, date, machine, threads, model: model.name, peer: peerName, setup, prefillFirst: v["prefill-first"], passes, quick: v.quick, sanity, rows }, null, 2) + "\n");
    writeFileSync(`${base}.md`, md);
    console.log(`wrote ${base}.json and ${base}.md`);
    return 0;
  } finally {
    if (peer) await stopServer(peer);
    await stopServer(kiln, 40_000);
  }
}

try {
  process.exit(await main());
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
