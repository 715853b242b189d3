// The training forward of GPT-2 and Llama (a (B, T) batch, causal within each sequence) gives each
// sequence the logits the inference forward gives it alone, and training initialisation follows
// GPT-2's scheme (normal(0, 0.02), residual projections / sqrt(2 * layers), zero biases, unit norms).

import { describe, expect, it } from "vitest";
import { getBackend, noGrad, tensor } from "../../src/index.js";
import { FullContext } from "../../src/models/kv_cache.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { Llama } from "../../src/models/llama.js";
import type { Gpt2Config, LlamaConfig } from "../../src/models/types.js";
import { initParameters } from "../../src/train/init.js";

const cpu = await getBackend("cpu");
const GPT2: Gpt2Config = { arch: "gpt2", dim: 16, nLayers: 2, nHeads: 2, vocabSize: 13, maxSeqLen: 8, normEps: 1e-5 };
const LLAMA: LlamaConfig = {
  arch: "llama", dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 4, vocabSize: 13,
  maxSeqLen: 8, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true,
};
const SEQS = [[1, 5, 2, 9, 12, 0], [7, 7, 3, 11, 4, 6], [0, 1, 2, 3, 4, 5]];

describe("training forward over a (B, T) batch", () => {
  const models = {
    gpt2: () => new Gpt2(GPT2, cpu),
    llama: () => new Llama(LLAMA, cpu, { foldNorms: false, fuseQkv: false }),
  };
  for (const [name, make] of Object.entries(models)) {
    it(`${name}: each row equals that sequence's inference logits`, async () => {
      const model = make();
      await initParameters(model, { seed: 1, std: 0.5 });
      const [b, t] = [SEQS.length, SEQS[0]!.length];
      const batch = (await noGrad(() => model.forward(tensor(Int32Array.from(SEQS.flat()), { backend: cpu, dtype: "i32", shape: [b, t] }))).data()) as Float32Array;
      const v = model.config.vocabSize;
      for (let s = 0; s < b; s++) {
        const alone = await model.logits(tensor(Int32Array.from(SEQS[s]!), { backend: cpu, dtype: "i32" }), new FullContext(t)).data();
        const row = batch.subarray(s * t * v, (s + 1) * t * v);
        const err = Math.max(...Array.from(alone, (a, i) => Math.abs(a - row[i]!)));
        expect(err).toBeLessThan(1e-5);
        expect(Math.max(...Array.from(alone, Math.abs))).toBeGreaterThan(0.1);
      }
    });
  }

  it("rejects ids that are not (B, T) i32 or longer than the context", () => {
    const model = models.gpt2();
    expect(() => model.forward(tensor(Int32Array.of(1, 2), { backend: cpu, dtype: "i32" }))).toThrow(/\(B, T\) i32/);
    expect(() => model.forward(tensor(new Int32Array(9), { backend: cpu, dtype: "i32", shape: [1, 9] }))).toThrow(/exceed the context of 8/);
  });
});

describe("initParameters", () => {
  const stats = (d: ArrayLike<number>) => {
    const a = Array.from(d);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    return { mean, std: Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length) };
  };

  it("GPT-2: normal(0, 0.02), residual projections scaled, biases zero, norms one; seeded", async () => {
    const cfg = { ...GPT2, dim: 64, nLayers: 8, vocabSize: 100 };
    const model = new Gpt2(cfg, cpu);
    await initParameters(model, { seed: 3 });
    const p = model.parameters();
    const emb = stats(await p.get("token_embd.weight")!.data());
    expect(Math.abs(emb.mean)).toBeLessThan(0.002);
    expect(Math.abs(emb.std - 0.02)).toBeLessThan(0.001);
    const down = stats(await p.get("blk.3.ffn_down.weight")!.data());
    expect(Math.abs(down.std - 0.02 / Math.sqrt(16))).toBeLessThan(0.0005);
    expect(Array.from(await p.get("blk.0.attn_qkv.bias")!.data()).every((x) => x === 0)).toBe(true);
    expect(Array.from(await p.get("output_norm.weight")!.data()).every((x) => x === 1)).toBe(true);
    // Each tensor has its own stream; the same seed repeats it, another seed does not.
    const [q0, q1] = [await p.get("blk.0.attn_qkv.weight")!.data(), await p.get("blk.1.attn_qkv.weight")!.data()];
    expect(q0[0]).not.toBe(q1[0]);
    const again = new Gpt2(cfg, cpu);
    await initParameters(again, { seed: 3 });
    expect(Array.from(await again.parameters().get("blk.0.attn_qkv.weight")!.data())).toEqual(Array.from(q0));
    const other = new Gpt2(cfg, cpu);
    await initParameters(other, { seed: 4 });
    expect((await other.parameters().get("blk.0.attn_qkv.weight")!.data())[0]).not.toBe(q0[0]);
  });

  it("refuses a Llama in the inference layout (norms folded)", async () => {
    await expect(initParameters(new Llama(LLAMA, cpu), {})).rejects.toThrow(/foldNorms: false/);
  });
});
