// kiln quantize and kiln perplexity through the real CLI (child processes): Q8_0 / Q4_0 files of
// stories260K, their perplexity on held-out TinyStories text against the f32 file, and bad input.
// llama.cpp reading the files (node-llama-cpp) runs only where that package is installed.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/models/formats/index.js";
import { peerEntry } from "../../bench/peers/llama_cpp_location.js";
import { missingReason } from "../helpers/skip_reasons.js";

const bin = fileURLToPath(new URL("../../bin/kiln.mjs", import.meta.url));
const kiln = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
const dir = mkdtempSync(join(tmpdir(), "kiln-quant-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const corpus = readFileSync(fileURLToPath(new URL("../../data/tinystories-sample/tiny_stories.txt", import.meta.url)), "utf8");
// NOTE: the tail of the sample: a held-out-ish slice, a few chunks' worth to keep the test short.
writeFileSync(join(dir, "text.txt"), corpus.slice(-6000));

const ppl = (model: string): number => {
  const out = kiln("perplexity", model, join(dir, "text.txt"), "--ctx", "64", "--max-chunks", "8");
  const m = /perplexity (\d+\.\d+) .* over (\d+) scored tokens in (\d+) chunks of 64/.exec(out);
  if (!m) throw new Error(`unexpected perplexity output: ${out}`);
  expect(Number(m[2])).toBe(Number(m[3]) * (64 - 1 - 32)); // llama.cpp's count: the second half of each chunk
  return Number(m[1]);
};

describe("kiln quantize and kiln perplexity", () => {
  it("writes Q8_0 and Q4_0 GGUF; perplexity of Q8_0 within 0.5% of f32, Q4_0 within 25%", () => {
    kiln("convert", "--model", "stories260K", "--to", "gguf", "--out", join(dir, "f32.gguf"));
    for (const t of ["q8_0", "q4_0"]) {
      kiln("quantize", "stories260K", join(dir, `${t}.gguf`), "--type", t);
      const stored = loadModel(join(dir, `${t}.gguf`)).tensors.get("blk.0.attn_q.weight")!.stored;
      expect(stored).toBe(t);
    }
    const [f, q8, q4] = [ppl(join(dir, "f32.gguf")), ppl(join(dir, "q8_0.gguf")), ppl(join(dir, "q4_0.gguf"))];
    expect(f).toBeGreaterThan(1);
    expect(Math.abs(q8 / f - 1)).toBeLessThan(0.005);
    expect(q4 / f).toBeGreaterThan(1.0);
    expect(q4 / f).toBeLessThan(1.25);
  }, 120_000);

  it("bad input: an unsupported --type names the supported ones (exit 2)", () => {
    const r = spawnSync(process.execPath, [bin, "quantize", "stories260K", join(dir, "x.gguf"), "--type", "q5_1"], { encoding: "utf8", timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--type must be one of q8_0, q4_0, q4_k, got 'q5_1'/);
  }, 30_000);

  it("llama.cpp (node-llama-cpp) reads the Q8_0 and Q4_0 files", async (ctx) => {
    let llamaCpp: { getLlama(o: object): Promise<{ loadModel(o: { modelPath: string }): Promise<{ dispose(): Promise<void> }>; dispose(): Promise<void> }> };
    try {
      // NOTE: a peer, never a dependency of kiln: found where KILN_NODE_LLAMA_CPP points, else where npm run peer:install put it.
      const where = process.env.KILN_NODE_LLAMA_CPP;
      llamaCpp = await import(/* @vite-ignore */ where ? join(where, "dist", "index.js") : (peerEntry() ?? "node-llama-cpp"));
    } catch (err) {
      return ctx.skip(missingReason("llamacpp", (err as Error).message.split("\n")[0]!.slice(0, 120)));
    }
    const llama = await llamaCpp.getLlama({ gpu: false, build: "never" });
    try {
      for (const t of ["q8_0", "q4_0"]) {
        const path = join(dir, `${t}.gguf`);
        kiln("quantize", "stories260K", path, "--type", t);
        const m = await llama.loadModel({ modelPath: path });
        await m.dispose();
      }
    } finally {
      await llama.dispose();
    }
  }, 60_000);
});
