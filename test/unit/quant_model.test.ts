// Models whose GGUF weights are Q8_0 / Q4_0 keep them quantized on load (matmul_q computes on the file's
// blocks): greedy tokens equal the same file dequantized to f32 (Q8_0, stories260K), and resident weight
// memory, counted by the memory accountant, stays within 10% of the file's tensor bytes.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Backend } from "../../src/index.js";
import { argmax, getBackend, tensor } from "../../src/index.js";
import { memoryAccountant, trackMemory } from "../../src/core/memory.js";
import { fromLoaded, openModel } from "../../src/models/index.js";
import { loadModel, writeGguf } from "../../src/models/formats/index.js";
import { GGML_TYPES } from "../../src/models/formats/ggml_types.js";
import type { GgmlTypeName } from "../../src/models/formats/ggml_types.js";
import type { LlamaConfig, LoadedModel } from "../../src/models/types.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import { noWebgpu } from "../helpers/skip_reasons.js";
import { Llama } from "../../src/models/llama.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-quant-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cpu = await getBackend("cpu");

/** Greedy continuation of `prompt` for `steps` tokens. */
async function greedy(loaded: LoadedModel, backend: Backend, prompt: number[], steps: number, keepQuantized: boolean): Promise<number[]> {
  const m = fromLoaded(loaded, backend, { keepQuantized, contextLength: prompt.length + steps });
  const pick = async (logits: Float32Array) => (await argmax(tensor(logits, { backend })).item());
  const out: number[] = [];
  let next = await pick(await m.forwardPrefill(prompt));
  for (let i = 0; i < steps; i++) {
    out.push(next);
    if (i + 1 < steps) next = await pick(await m.decodeStep(next));
  }
  m.dispose();
  return out;
}

/** Bytes of the file's tensor data (what llama.cpp maps), from each tensor's stored type. */
function fileTensorBytes(loaded: LoadedModel): number {
  let total = 0;
  for (const e of loaded.tensors.values()) {
    const t = GGML_TYPES[e.stored as GgmlTypeName];
    total += (e.shape.reduce((a, b) => a * b, 1) / t.blockElems) * t.blockBytes;
  }
  return total;
}

describe("quantized GGUF models keep their weights quantized", () => {
  it("stories260K Q8_0: greedy tokens equal the same file dequantized to f32", async () => {
    const path = join(dir, "s_q8_0.gguf");
    writeGguf(path, loadModel("stories260K"), { types: "q8_0" });
    const loaded = loadModel(path);
    const model = Llama.fromLoaded(loaded, cpu);
    // The linears read the file's blocks (ffn_down's 172-wide rows are not whole blocks: the writer stored them f16).
    const mlp = model.blocks.at(0).mlp;
    expect("router" in mlp ? "moe" : mlp.gate.weightQuantized?.format).toBe("q8_0");
    expect(model.tokenEmbd.weight.dtype).toBe("u8");
    const prompt = openModel("stories260K").tokenizer.encode("Once upon a time"); // BOS first
    expect(prompt.length).toBe(5);
    const quant = await greedy(loaded, cpu, prompt, 40, true);
    const f32 = await greedy(loaded, cpu, prompt, 40, false);
    expect(quant).toEqual(f32);
  }, 60_000);

  it("stories260K Q8_0 on webgpu, kept quantized: greedy tokens equal cpu's dequantized f32", async (ctx) => {
    let gpu: Backend;
    try {
      gpu = await getBackend("webgpu");
    } catch (err) {
      return ctx.skip(noWebgpu(err));
    }
    const path = join(dir, "s_q8_0_gpu.gguf");
    writeGguf(path, loadModel("stories260K"), { types: "q8_0" });
    const loaded = loadModel(path);
    const prompt = openModel("stories260K").tokenizer.encode("Once upon a time");
    expect(await greedy(loaded, gpu, prompt, 12, true)).toEqual(await greedy(loaded, cpu, prompt, 12, false));
  }, 60_000);

  for (const type of ["q8_0", "q4_0"] as const) {
    it(`${type}: resident weight memory is within 10% of the file's tensor bytes (dequantized: several times it)`, async () => {
      // NOTE: every matrix dimension a multiple of 32, so every 2-D tensor is stored as ${type}.
      const config: LlamaConfig = {
        arch: "llama", dim: 128, hiddenDim: 256, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 32, vocabSize: 512,
        maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
      };
      const path = join(dir, `r_${type}.gguf`);
      writeGguf(path, randomLoadedModel(config, 3), { types: type });
      const loaded = loadModel(path);
      const fileBytes = fileTensorBytes(loaded);
      const resident = (keepQuantized: boolean): number => {
        const backend = trackMemory(cpu);
        const model = fromLoaded(loaded, backend, { keepQuantized, contextLength: 8 });
        const live = memoryAccountant(backend)!.snapshot().liveTotal;
        expect(model.config.dim).toBe(128);
        return live;
      };
      const q = resident(true);
      const f = resident(false);
      expect(Math.abs(q - fileBytes) / fileBytes).toBeLessThan(0.1);
      expect(f / fileBytes).toBeGreaterThan(type === "q8_0" ? 3.4 : 6);
      console.log(`${type}: file tensors ${fileBytes} B, resident quantized ${q} B (${(q / fileBytes).toFixed(3)}x), dequantized f32 ${f} B (${(f / fileBytes).toFixed(2)}x)`);
    }, 30_000);
  }

  it("bad input: a quantized tensor whose rows are not whole blocks is refused at load, naming the tensor", () => {
    const config: LlamaConfig = {
      arch: "llama", dim: 48, hiddenDim: 64, nLayers: 1, nHeads: 3, nKvHeads: 3, headDim: 16, vocabSize: 64,
      maxSeqLen: 16, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
    };
    const base = randomLoadedModel(config, 2);
    const tensors = new Map(base.tensors);
    const good = tensors.get("blk.0.attn_q.weight")!;
    // 48 x 48 = 72 blocks of 32: a whole number in all, but each 48-wide row would split a block.
    tensors.set("blk.0.attn_q.weight", { ...good, stored: "q8_0", readRaw: () => new Uint8Array(72 * 34) });
    expect(() => fromLoaded({ ...base, tensors }, cpu, { contextLength: 8 }))
      .toThrow(/tensor 'blk\.0\.attn_q\.weight': a row of 48 elements is not a whole number of q8_0 blocks \(32 elements each\)/);
  });
});
