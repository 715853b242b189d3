// The serving side by side (bench/serve_peer.ts): its table arithmetic without any server, and, where
// node-llama-cpp is installed (npm run peer:install; CI has no peer), the peer server
// (bench/peers/llama_cpp_server.mjs, a real child process on a real port) under src/bench_serve's load:
// every streamed request must come back with max_tokens tokens, and the greedy text must be llama2.c's.

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runBenchServe } from "../../src/bench_serve/index.js";
import { peerEntry } from "../../bench/peers/llama_cpp_location.js";
import { stories260KGguf } from "../../bench/peers/peer_models.js";
import { compareServe, serveTable } from "../../src/bench_serve/index.js";
import { benchServeCommand, parseBenchServeArgs } from "../../src/cli/bench_serve_command.js";
import { kiln } from "../helpers/kiln_cli.js";
import { missingReason } from "../helpers/skip_reasons.js";

const SERVER = fileURLToPath(new URL("../../bench/peers/llama_cpp_server.mjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "kiln-serve-peer-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("serve side by side arithmetic (no server needed)", () => {
  it("compares the medians over passes and lists every pass", () => {
    const kiln = [{ outputTokensPerS: 3000, ttftP50Ms: 40, ttftP99Ms: 100, errors: 0 }, { outputTokensPerS: 4000, ttftP50Ms: 30, ttftP99Ms: 80, errors: 1 }, { outputTokensPerS: 3500, ttftP50Ms: 50, ttftP99Ms: 90, errors: 0 }];
    const peer = [{ outputTokensPerS: 2000, ttftP50Ms: 70, ttftP99Ms: 200, errors: 0 }, { outputTokensPerS: 1000, ttftP50Ms: 90, ttftP99Ms: 150, errors: 0 }, { outputTokensPerS: 2500, ttftP50Ms: 60, ttftP99Ms: 190, errors: 2 }];
    const c = compareServe("c=32", 128, kiln, peer);
    expect(c.throughputRatio).toBeCloseTo(3500 / 2000, 12);
    expect(c.ttftP99Ratio).toBeCloseTo(90 / 190, 12);
    expect(c.ttftP50Ms).toEqual({ kiln: 40, peer: 70 });
    expect(serveTable([c], "llama.cpp").at(-1)).toBe("| c=32 | 128 | 3000 / 4000 / 3500 | 2000 / 1000 / 2500 | 1.75 | 40 / 70 | 100 / 80 / 90 | 200 / 150 / 190 | 0.47 | 1 / 2 |");
    expect(() => compareServe("c=1", 8, kiln, peer.slice(1))).toThrow("serve side by side (c=1): need the same number (>= 1) of passes, got 3 and 2");
  });
});

describe("kiln bench serve --peer-url flags", () => {
  const parse = (...argv: string[]) => parseBenchServeArgs(benchServeCommand, argv, {});
  it("reads the peer's URL, model and passes, and refuses them where they do not apply, naming the flag", () => {
    expect(parse("--peer-url", "http://127.0.0.1:9/v1/")!.peer).toEqual({ url: "http://127.0.0.1:9/v1", passes: 3 });
    expect(parse("--peer-url", "http://h/v1", "--peer-model", "m", "--passes", "5")!.peer).toEqual({ url: "http://h/v1", model: "m", passes: 5 });
    expect(parse()!.peer).toBeUndefined();
    expect(() => parse("--passes", "2")).toThrow("bench serve: --passes only applies with --peer-url");
    expect(() => parse("--peer-url", "ftp://h")).toThrow(/--peer-url must be http or https/);
    expect(() => parse("--peer-url", "http://h/v1", "--passes", "0")).toThrow(/--passes must be an integer >= 1 and <= 100, got '0'/);
  });
});

describe("llama.cpp peer server", () => {
  it("streams max_tokens tokens per request under concurrent load, and llama2.c's greedy text", async (ctx) => {
    if (!peerEntry()) return ctx.skip(missingReason("llamacpp", "not installed"));
    const m = stories260KGguf(join(dir, "models"));
    const proc = spawn(process.execPath, [SERVER, "--model", m.path, "--port", "0", "--parallel", "2", "--threads", "1", "--ctx", "64"], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(proc);
    let log = "";
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`peer server not ready in 40 s: ${log}`)), 40_000);
      proc.stdout!.on("data", (d: Buffer) => {
        log += d.toString();
        const hit = /listening on (http:\/\/\S+\/v1)/.exec(log);
        if (hit) {
          clearTimeout(t);
          resolve(hit[1]!);
        }
      });
      proc.stderr!.on("data", (d: Buffer) => (log += d.toString()));
      proc.on("exit", (code) => reject(new Error(`peer server exited (${code}): ${log}`)));
    });
    const report = await runBenchServe({
      url, endpoint: "completions", stream: true, includeUsage: true, maxTokens: 12, ignoreEos: true, temperature: 0, timeoutMs: 30_000,
      prompts: ["Once upon a time"], levels: [{ mode: "concurrency", concurrency: 3 }], requests: 5, seed: 0, warmup: 0,
    });
    const level = report.levels[0]!;
    expect(level.errors).toBe(0);
    expect(level.tokensFrom).toBe("usage");
    expect(level.outputTokens).toBe(5 * 12);
    // Greedy from "Once upon a time" on stories260K (DESIGN.md, llama2.c's output, which kiln's cpu backend reproduces).
    const res = await fetch(`${url}/completions`, { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 12, temperature: 0 }) });
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    const reference = ", there was a little girl named Lily. She loved to play outside in the park.";
    expect(body.choices[0]!.text.length).toBeGreaterThan(20);
    expect(reference.startsWith(body.choices[0]!.text), body.choices[0]!.text).toBe(true);
    expect(body.usage.completion_tokens).toBe(12);
    const bad = await fetch(`${url}/completions`, { method: "POST", body: JSON.stringify({ prompt: "x", max_tokens: 0 }) });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("max_tokens must be an integer >= 1, got 0");
    // kiln bench serve --peer-url through the real CLI (both sides this one server: the plumbing, not a ratio).
    const cli = await kiln("bench", "serve", "--url", url, "--peer-url", url, "--passes", "2", "--concurrency", "2", "--requests", "3", "--max-tokens", "4", "--ignore-eos", "--quiet");
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^\| concurrency 2 \| 3 \| \d+ \/ \d+ \| \d+ \/ \d+ \| \d+\.\d\d \| \d+ \/ \d+ \| \d+ \/ \d+ \| \d+ \/ \d+ \| \d+\.\d\d \| 0 \/ 0 \|$/m);
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
  }, 60_000);
});
