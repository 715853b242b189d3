// serve_peer.ts: `npm run bench:serve:peer`: `kiln serve` beside a llama.cpp server on the same GGUF
// file (stories260K, written by kiln), the same thread count, the same load from src/bench_serve (the
// engine of `kiln bench serve`): streamed completions of 64 tokens (ignore_eos, greedy) at concurrency 1
// and 32, passes alternating which server goes first. The peer is bench/peers/llama_cpp_server.mjs on
// node-llama-cpp (NOT llama-server: node-llama-cpp ships none), or, with --peer-server PATH, a
// llama-server binary built from llama.cpp. Results: bench/results/serve-peer-llama-cpp-<tag>-t<N>.json/.md.
//
//   KILN_THREADS=2 npx tsx bench/serve_peer.ts [--passes 3] [--requests 128] [--requests-c1 32] [--peer-server PATH] [--quick] [--out DIR] [--tag NAME]

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { BenchServeOptions } from "../src/bench_serve/index.js";
import { runServeComparison, serveTable } from "../src/bench_serve/index.js";
import { machineInfo } from "./lib/machine.js";
import { peerThreads } from "./peers/llama_cpp_generate.js";
import { peerEntry, NOT_INSTALLED } from "./peers/llama_cpp_location.js";
import { stories260KGguf } from "./peers/peer_models.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const USAGE = "usage: tsx bench/serve_peer.ts [--passes N] [--requests N] [--requests-c1 N] [--peer-server PATH] [--quick] [--out DIR] [--tag NAME]";

interface Server {
  readonly url: string;
  readonly proc: ChildProcess;
}

const started = new Set<ChildProcess>();
process.on("exit", () => started.forEach((p) => p.kill("SIGKILL")));

/** Starts a server and resolves with its base URL: from a stdout line (`ready`), or by polling GET /v1/models at `pollUrl`. */
function startServer(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp | { pollUrl: string }, timeoutMs = 120_000): Promise<Server> {
  const proc = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  started.add(proc);
  let log = "";
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      clearInterval(poll);
      proc.kill("SIGKILL");
      reject(new Error(`${name}: ${why}\n${log.slice(-2000)}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs / 1000} s`), timeoutMs);
    const ok = (url: string) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ url, proc });
    };
    const onData = (d: Buffer) => {
      log += d.toString();
      if (ready instanceof RegExp) {
        const m = ready.exec(log);
        if (m) ok(m[1]!);
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    proc.on("exit", (code, sig) => fail(`exited (${code ?? sig}) before it was ready`));
    const poll = ready instanceof RegExp ? undefined : setInterval(() => {
      fetch(`${ready.pollUrl}/models`).then((r) => r.ok && ok(ready.pollUrl), () => {});
    }, 500);
  });
}

async function stop(s: Server): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => s.proc.once("exit", () => r()));
  s.proc.kill("SIGTERM");
  const t = setTimeout(() => s.proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
  started.delete(s.proc);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    }).on("error", reject);
  });
}

/** What `kiln bench serve --peer-url` sends: 64-token streamed completions, greedy, through EOS; 4 warm-up requests to each server. */
const load = (url: string, concurrencies: readonly number[]): BenchServeOptions => ({
  url, endpoint: "completions", stream: true, includeUsage: true, maxTokens: 64, ignoreEos: true, temperature: 0, timeoutMs: 120_000,
  prompts: ["Once upon a time"], levels: concurrencies.map((concurrency) => ({ mode: "concurrency", concurrency })), seed: 0, warmup: 4,
});

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: {
      passes: { type: "string" }, requests: { type: "string" }, "requests-c1": { type: "string" }, "peer-server": { type: "string" },
      quick: { type: "boolean", default: false }, out: { type: "string", default: "bench/results" }, tag: { type: "string" },
    },
  });
  const count = (flag: string, text: string | undefined, dflt: number) => {
    if (text === undefined) return dflt;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be an integer >= 1, got '${text}'\n${USAGE}`);
    return n;
  };
  const passes = count("passes", v.passes, v.quick ? 1 : 3);
  const levels: [number, number][] = [[1, count("requests-c1", v["requests-c1"], v.quick ? 8 : 32)], [32, count("requests", v.requests, v.quick ? 32 : 128)]];
  const peerServer = v["peer-server"];
  if (!peerServer && !peerEntry()) {
    console.log(NOT_INSTALLED);
    return 0;
  }
  const threads = peerThreads();
  const model = stories260KGguf();
  const machine = machineInfo(v.tag);
  const env = { ...process.env, KILN_CPU_THREADS: String(threads), KILN_THREADS: String(threads) };
  const kiln = await startServer("kiln serve", process.execPath, [join(ROOT, "bin", "kiln.mjs"), "serve", "--model", model.path, "--port", "0", "--backend", "cpu"], env, /at (http:\/\/\S+\/v1)/);
  let peer: Server | undefined;
  try {
    let peerName: string;
    if (peerServer) {
      const port = await freePort();
      peerName = `llama-server (${peerServer})`;
      peer = await startServer("llama-server", peerServer, ["-m", model.path, "--host", "127.0.0.1", "--port", String(port), "--parallel", "32", "-t", String(threads), "-c", String(256 * 32)], env, { pollUrl: `http://127.0.0.1:${port}/v1` });
    } else {
      peerName = "node-llama-cpp server (bench/peers/llama_cpp_server.mjs, not llama-server)";
      peer = await startServer("llama_cpp_server", process.execPath, [join(ROOT, "bench", "peers", "llama_cpp_server.mjs"), "--model", model.path, "--port", "0", "--parallel", "32", "--threads", String(threads), "--ctx", "256"], env, /listening on (http:\/\/\S+\/v1)/);
    }
    console.log(`kiln serve at ${kiln.url}, ${peerName} at ${peer.url}; ${threads} threads each; ${passes} alternating passes`);
    const requests = new Map(levels);
    const rows = await runServeComparison(load(kiln.url, levels.map(([c]) => c)), peer.url, passes, {
      requestsFor: (shape) => requests.get(shape.mode === "concurrency" ? shape.concurrency : -1)!,
      onLevel: (p, who, l) => console.log(`  pass ${p + 1} ${who} ${l.label}: ${l.outputTokensPerS.toFixed(0)} output tok/s, TTFT p99 ${(l.ttftMs.p99 ?? NaN).toFixed(0)} ms, ${l.errors} errors`),
    });
    const date = new Date().toISOString();
    const md = [
      `### serve side by side: kiln serve vs ${peerName}, ${threads} thread${threads === 1 ? "" : "s"} (${machine.tag})`, "",
      `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}. Run ${date.slice(0, 16).replace("T", " ")} UTC` +
        `${v.quick ? ", quick (a smoke test, not a measurement)" : ""}. stories260K (the same GGUF file), streamed completions of 64 tokens ` +
        `(ignore_eos, greedy, prompt "Once upon a time"), closed loop; ${passes} passes alternating which server goes first; ratios of the medians over passes. ` +
        "Both servers and the load generator share the machine.", "",
      ...serveTable(rows, "llama.cpp"), "",
    ].join("\n");
    console.log(`\n${md}`);
    mkdirSync(v.out!, { recursive: true });
    const base = join(v.out!, `serve-peer-llama-cpp-${machine.tag}-t${threads}`);
    writeFileSync(`${base}.json`, JSON.stringify({ suite: "serve-peer", version: 1, date, machine, threads, peer: peerName, passes, quick: v.quick, rows }, null, 2) + "\n");
    writeFileSync(`${base}.md`, md);
    console.log(`wrote ${base}.json and ${base}.md`);
    return 0;
  } finally {
    if (peer) await stop(peer);
    await stop(kiln);
  }
}

try {
  process.exit(await main());
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
