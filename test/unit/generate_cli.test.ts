// generate_cli.test.ts: `kiln generate` end to end through bin/kiln.mjs, as a user runs it: the
// built-in stories260K model reproduces llama2.c's greedy text exactly on cpu and on webgpu (skipped
// when no WebGPU adapter starts here), a seed gives the same text on both, seeds replay, stop strings cut the text, chat mode runs, and
// bad input gives a clear message with exit code 2 (usage) or 1 (the model or prompt).

import { describe, expect, it } from "vitest";
import { TINY_GGUF } from "../helpers/fixtures.js";
import { kiln } from "../helpers/kiln_cli.js";
import { webgpuMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";


/** llama2.c `run stories260K.bin -z tok512.bin -t 0 -n 64 -i "Once upon a time"` (models/stories260K/PROVENANCE.md). */
const REFERENCE =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, " +
  "red ball. She wanted to play with it, but it was too high.\nLily";

const noWebgpuHere = await webgpuMissing();
const greedy = ["generate", "--model", "stories260K", "--prompt", "Once upon a time", "--max-tokens", "60", "--temperature", "0"];

describe("kiln generate", () => {
  it("prints llama2.c's greedy text for stories260K on cpu, with prefill and decode speed on stderr", async () => {
    const r = await kiln(...greedy, "--backend", "cpu");
    expect(r.stderr).not.toContain("Error");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${REFERENCE}\n`);
    expect(r.stderr).toMatch(/prompt: 5 tokens, \d+ ms, [\d.]+ tokens\/s/);
    expect(r.stderr).toMatch(/decode: 59 tokens, \d+ ms, [\d.]+ tokens\/s/);
    expect(r.stderr).toContain("generated 60 tokens, finish: length");
  });

  // NOTE: SwiftShader runs the WGSL on the CPU and compiles an attention kernel per key count (routines.ts names
  // them by tk): about a minute for all 64 positions on 2 shared cores, so the webgpu run stops at 24 tokens,
  // compared with the cpu run of the same 24 (itself llama2.c's text above). Positions 1-64 all take the same
  // single key block (stories260K's head dim 8: 64-key blocks, routines.ts attentionTiles), so no path is lost.
  it.skipIf(!!noWebgpuHere)(`prints the same text on webgpu${skipLabel(noWebgpuHere)}`, { timeout: 300_000 }, async () => {
    const first24 = greedy.map((a, i) => (greedy[i - 1] === "--max-tokens" ? "24" : a));
    const [r, cpu24] = await Promise.all([kiln(...first24, "--backend", "webgpu"), kiln(...first24, "--backend", "cpu")]);
    // The banner is printed once the backend has started.
    expect(r.stderr).toContain(" on webgpu (");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("generated 24 tokens, finish: length");
    expect(cpu24.code).toBe(0);
    expect(r.stdout).toBe(cpu24.stdout);
    expect(REFERENCE.startsWith(r.stdout.trimEnd())).toBe(true);
    expect(r.stdout.length).toBeGreaterThan("Once upon a time".length + 40);
    // Sampling runs on the host from the same logits, so a seed gives the same text as on cpu.
    const seeded = ["generate", "--prompt", "Once upon a time", "--max-tokens", "12", "--temperature", "1", "--seed", "11"];
    const [gpu, cpu] = await Promise.all([kiln(...seeded, "--backend", "webgpu"), kiln(...seeded, "--backend", "cpu")]);
    expect(gpu.code).toBe(0);
    expect(gpu.stdout).toBe(cpu.stdout);
  });

  it("replays a seed exactly and stops at a stop string without printing it", async () => {
    const sampled = ["generate", "--prompt", "Once upon a time", "--max-tokens", "30", "--temperature", "0.9", "--top-p", "0.95", "--backend", "cpu"];
    const [a, b, c] = await Promise.all([kiln(...sampled, "--seed", "7"), kiln(...sampled, "--seed", "7"), kiln(...sampled, "--seed", "8")]);
    expect(a.code).toBe(0);
    expect(a.stderr).toContain("seed 7");
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).not.toBe(a.stdout);

    const stopped = await kiln(...greedy, "--backend", "cpu", "--stop", "Lily");
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toBe("Once upon a time, there was a little girl named \n");
    expect(stopped.stderr).toContain("finish: stop");
  });

  it("--chat renders the prompt with the (default) chat template and prints only the reply", async () => {
    const r = await kiln("generate", "--chat", "--system", "Be brief.", "--prompt", "Hi", "--max-tokens", "8", "--temperature", "0", "--backend", "cpu");
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("Hi");
    expect(r.stdout).not.toContain("<|im_");
    expect(r.stderr).toMatch(/prompt: \d+ tokens/);
  });

  it("runs a GGUF model with its embedded tokenizer, in chat mode, the same for the same seed", async () => {
    const args = ["generate", "--model", TINY_GGUF, "--chat", "--prompt", "Hello", "--max-tokens", "12", "--seed", "3", "--backend", "cpu"];
    const [a, b] = await Promise.all([kiln(...args), kiln(...args)]);
    expect(a.stderr).toContain("llama-2-tiny-random.gguf (llama) on cpu");
    expect(a.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(a.stdout).not.toContain("<|im_");
  });

  it.each<[string, string[], string]>([
    ["an unknown flag", ["--prompt", "x", "--bogus"], "Unknown option '--bogus'"],
    ["a missing --prompt", [], "--prompt is required"],
    ["a bad number", ["--prompt", "x", "--temperature", "hot"], "--temperature must be a number, got 'hot'"],
    ["a value out of range", ["--prompt", "x", "--top-p", "2"], "--top-p must be in (0, 1], got 2"],
    ["a fractional count", ["--prompt", "x", "--max-tokens", "2.5"], "--max-tokens must be an integer, got '2.5'"],
    ["--system without --chat", ["--prompt", "x", "--system", "s"], "--system needs --chat"],
    ["an unknown backend", ["--prompt", "x", "--backend", "tpu"], "--backend must be one of cuda, webgpu, cpu, auto, got 'tpu'"],
  ])("%s exits 2 with the message and the usage", async (_, args, message) => {
    const r = await kiln("generate", ...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("Usage: kiln generate");
  });

  it("a model that does not exist, or a prompt longer than the context, exits 1 with a clear message", async () => {
    const [missing, long] = await Promise.all([
      kiln("generate", "--model", "no/such/model.gguf", "--prompt", "x"),
      kiln("generate", "--prompt", "once upon a time ".repeat(200), "--backend", "cpu"),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no/such/model.gguf");
    expect(missing.stderr).toContain("does not exist");
    expect(missing.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/the prompt is \d+ tokens, longer than the model's context of 512 tokens/);
    expect(long.stdout).toBe("");
  });
});
