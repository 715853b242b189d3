// llama.cpp's own binaries as benchmark peers (bench/peers/llama_bench.ts, llama_server.ts,
// llama_cpp_bin.ts): the parse of llama-bench's JSON, the command lines both servers get, the load levels,
// and, through the real bench commands, the message they print when the binaries are absent. Nothing here
// needs llama.cpp: the JSON below has the shape llama-bench's json_printer writes (one object per test,
// the fields of test::get_fields, then samples_ns and samples_ts), with values made up for the test.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { llamaBenchArgs, parseLlamaBenchJson, testMs } from "../../bench/peers/llama_bench.js";
import { findLlamaCppTool, llamaCppBinDir, notBuilt } from "../../bench/peers/llama_cpp_bin.js";
import { kilnServeArgs, llamaServerArgs, parseLevels } from "../../bench/peers/llama_server.js";
import { runProcess } from "../helpers/kiln_cli.js";

const GENERATE = fileURLToPath(new URL("../../bench/generate.ts", import.meta.url));
const SERVE_PEER = fileURLToPath(new URL("../../bench/serve_peer.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "kiln-llama-cpp-bin-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (nPrompt: number, nGen: number, samplesNs: number[]) => ({
  build_commit: "3f545bec", build_number: 7123, cpu_info: "AMD EPYC 9R14", gpu_info: "", backends: "CPU",
  model_filename: "/m/llama-85.7M-random-seed1-f32.gguf", model_type: "llama ?B all F32", model_size: 342979232, model_n_params: 85748736,
  n_batch: 2048, n_ubatch: 512, n_threads: 2, cpu_mask: "0x0", cpu_strict: false, poll: 50, type_k: "f16", type_v: "f16",
  n_gpu_layers: 99, split_mode: "layer", main_gpu: 0, no_kv_offload: false, flash_attn: -1, devices: "auto", tensor_split: "0.00",
  use_mmap: true, embeddings: false, n_prompt: nPrompt, n_gen: nGen, n_depth: 0, test_time: "2026-12-07T15:40:00Z",
  avg_ns: samplesNs.reduce((a, b) => a + b, 0) / samplesNs.length, stddev_ns: 0, avg_ts: 1, stddev_ts: 0,
  samples_ns: samplesNs, samples_ts: samplesNs.map((ns) => (1e9 * (nPrompt + nGen)) / ns),
});

describe("llama-bench JSON", () => {
  it("reads the build, the cpu and each test's samples, and picks pp and tg tests in ms", () => {
    const text = JSON.stringify([row(64, 0, [123_000_000, 125_500_000]), row(0, 64, [1_600_000_000])], null, 2);
    const out = parseLlamaBenchJson(text);
    expect(out.buildCommit).toBe("3f545bec");
    expect(out.buildNumber).toBe(7123);
    expect(out.cpuInfo).toBe("AMD EPYC 9R14");
    expect(out.modelFilename).toBe("/m/llama-85.7M-random-seed1-f32.gguf");
    expect(out.tests.map((t) => [t.nPrompt, t.nGen, t.nThreads])).toEqual([[64, 0, 2], [0, 64, 2]]);
    expect(testMs(out, "pp", 64)).toEqual([123, 125.5]);
    expect(testMs(out, "tg", 64)).toEqual([1600]);
    expect(() => testMs(out, "tg", 32)).toThrow("llama-bench output has no tg32 test (it has pp64, tg64)");
    expect(() => testMs(out, "pp", 128)).toThrow(/no pp128 test/);
  });

  it("refuses output that is not what llama-bench writes, naming the test and the field", () => {
    expect(() => parseLlamaBenchJson("main: error: failed to load model")).toThrow(/llama-bench output is not JSON .*failed to load model/);
    expect(() => parseLlamaBenchJson("[]")).toThrow(/non-empty JSON array of tests/);
    expect(() => parseLlamaBenchJson("[1]")).toThrow("llama-bench output: test 0 is not an object");
    const noSamples = { ...row(64, 0, [1]), samples_ns: [] };
    expect(() => parseLlamaBenchJson(JSON.stringify([row(0, 8, [5]), noSamples]))).toThrow("llama-bench output: test 1: samples_ns must be a non-empty array of positive numbers, got []");
    const { n_gen: _drop, ...noGen } = row(64, 0, [1]);
    expect(() => parseLlamaBenchJson(JSON.stringify([noGen]))).toThrow("llama-bench output: test 0: n_gen must be an integer >= 0, got undefined");
    expect(() => parseLlamaBenchJson(JSON.stringify([row(16, 16, [1])]))).toThrow(/test 0: expected a pp test .* got n_prompt 16, n_gen 16/);
    expect(() => parseLlamaBenchJson(JSON.stringify([{ ...row(8, 0, [1]), build_commit: 5 }]))).toThrow("llama-bench output: test 0: build_commit must be a string, got 5");
  });

  it("tells llama-bench the same model, threads, prompt and generated tokens, JSON on stdout", () => {
    expect(llamaBenchArgs({ model: "/m/a.gguf", threads: 2, promptTokens: 64, decodeTokens: 32, reps: 1 }))
      .toEqual(["-m", "/m/a.gguf", "-t", "2", "-p", "64", "-n", "32", "-r", "1", "-o", "json"]);
    expect(() => llamaBenchArgs({ model: "/m/a.gguf", threads: 0, promptTokens: 64, decodeTokens: 32, reps: 1 })).toThrow("llama-bench: threads must be an integer >= 1, got 0");
    expect(() => llamaBenchArgs({ model: "/m/a.gguf", threads: 2, promptTokens: 64, decodeTokens: 1.5, reps: 1 })).toThrow(/decodeTokens must be an integer >= 1, got 1.5/);
    expect(() => llamaBenchArgs({ model: "", threads: 2, promptTokens: 64, decodeTokens: 32, reps: 1 })).toThrow(/model path is empty/);
  });
});

describe("the serving side by side's command lines", () => {
  const setup = { model: "/m/a.gguf", threads: 2, parallel: 32, ctxPerSlot: 256 };
  it("gives llama-server the threads for decode and prompts, 32 slots with continuous batching, and 32 x 256 tokens of context", () => {
    expect(llamaServerArgs({ ...setup, port: 8081 })).toEqual([
      "-m", "/m/a.gguf", "--host", "127.0.0.1", "--port", "8081", "-t", "2", "-tb", "2",
      "--parallel", "32", "--cont-batching", "-c", "8192", "--no-webui", "--reasoning-format", "none",
    ]);
    expect(() => llamaServerArgs({ ...setup, port: 0 })).toThrow("serve peer: port must be 1-65535, got 0");
    expect(() => llamaServerArgs({ ...setup, parallel: 0, port: 1 })).toThrow("serve peer: parallel must be an integer >= 1, got 0");
  });

  it("gives kiln serve the same threads, batch and KV tokens (in blocks, rounded up)", () => {
    expect(kilnServeArgs(setup)).toEqual([
      "serve", "--model", "/m/a.gguf", "--port", "0", "--backend", "cpu", "--threads", "2", "--max-batch", "32", "--block-size", "16", "--kv-blocks", "512",
    ]);
    expect(kilnServeArgs({ ...setup, parallel: 3, ctxPerSlot: 10, blockSize: 16 }).slice(-2)).toEqual(["--kv-blocks", "2"]);
    expect(kilnServeArgs({ ...setup, prefillFirst: true }).slice(-3)).toEqual(["--kv-blocks", "512", "--prefill-first"]);
    expect(() => kilnServeArgs({ ...setup, threads: 1.5 })).toThrow("serve peer: threads must be an integer >= 1, got 1.5");
  });

  it("reads load levels as CONCURRENCY:REQUESTS and refuses the rest by item", () => {
    expect(parseLevels("1:16, 8:64,32:128")).toEqual([{ concurrency: 1, requests: 16 }, { concurrency: 8, requests: 64 }, { concurrency: 32, requests: 128 }]);
    expect(() => parseLevels("")).toThrow(/--levels must list CONCURRENCY:REQUESTS pairs/);
    expect(() => parseLevels("1:16,32")).toThrow("--levels: '32' must be CONCURRENCY:REQUESTS, integers with 1 <= concurrency <= requests");
    expect(() => parseLevels("32:8")).toThrow(/'32:8' must be/);
    expect(() => parseLevels("0:8")).toThrow(/'0:8' must be/);
    expect(() => parseLevels("8:8,8:16")).toThrow("--levels: concurrency 8 is listed twice");
  });
});

describe("llama.cpp's binaries absent or present", () => {
  const empty = join(dir, "no-bin");

  it("finds a tool only where it is an executable file, in KILN_LLAMA_CPP_BIN or the cache folder", () => {
    expect(llamaCppBinDir({ KILN_LLAMA_CPP_BIN: "/x/bin" })).toBe("/x/bin");
    expect(llamaCppBinDir({})).toBe(join(homedir(), ".cache", "kiln-peers", "llama.cpp", "build", "bin"));
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "llama-bench"), "#!/bin/sh\n");
    expect(findLlamaCppTool("llama-bench", { KILN_LLAMA_CPP_BIN: bin })).toBeUndefined(); // not executable yet
    chmodSync(join(bin, "llama-bench"), 0o755);
    expect(findLlamaCppTool("llama-bench", { KILN_LLAMA_CPP_BIN: bin })).toBe(join(bin, "llama-bench"));
    expect(findLlamaCppTool("llama-server", { KILN_LLAMA_CPP_BIN: bin })).toBeUndefined();
  });

  it("bench:generate --peer llama-bench and bench:serve:peer say what is missing and how to build it, and exit 0", async () => {
    const env = { ...process.env, KILN_LLAMA_CPP_BIN: empty };
    const [gen, serve, bad] = await Promise.all([
      runProcess(process.execPath, ["--import", "tsx", GENERATE, "--peer", "llama-bench"], { env, timeoutMs: 50_000 }),
      runProcess(process.execPath, ["--import", "tsx", SERVE_PEER], { env, timeoutMs: 50_000 }),
      runProcess(process.execPath, ["--import", "tsx", GENERATE, "--peer", "vllm"], { env, timeoutMs: 50_000 }),
    ]);
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stdout).toContain(notBuilt("llama-bench", env));
    expect(gen.stdout).toContain(`peer: llama-bench not found in ${empty}`);
    expect(gen.stdout).toContain("bash bench/peers/build_llama_cpp.sh");
    expect(serve.code, serve.stderr).toBe(0);
    expect(serve.stdout).toContain(`peer: llama-server not found in ${empty}`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--peer must be one of llama.cpp, llama-bench, got 'vllm'");
  }, 60_000);
});
