// The Mixtral-style model (Llama blocks whose MLP is a mixture of SwiGLU experts, model.moe in a training
// config): float64 finite differences of the training objective (cross-entropy + coef * load-balancing
// loss) for every parameter; the jit-captured training step against the step built and realized each
// time; and bad configs named. (`kiln train` with a MoE config: moe_train_cli.test.ts.)

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { getBackend, noGrad, tensor } from "../../src/index.js";
import { Llama } from "../../src/models/llama.js";
import type { LlamaConfig } from "../../src/models/types.js";
import { RandomWindows } from "../../src/train/batches.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { initParameters } from "../../src/train/init.js";
import { lmLoss, trainingLoss } from "../../src/train/loss.js";
import { applyActivationCheckpointing } from "../../src/train/memory/checkpointing.js";
import { Trainer } from "../../src/train/trainer.js";
import { rng } from "../conformance/harness.js";

const cpu = await getBackend("cpu");
const V = 11;
const MIXTRAL: LlamaConfig = {
  arch: "llama", dim: 8, hiddenDim: 6, nLayers: 2, nHeads: 2, nKvHeads: 1, headDim: 4, vocabSize: V,
  maxSeqLen: 8, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true,
  moe: { numExperts: 4, topK: 2, capacityFactor: 1, routerAuxLossCoef: 0.1 },
};

describe("Mixtral-style model", () => {
  it("has the gradients of float64 finite differences of CE + coef * aux loss, every parameter", async () => {
    const model = new Llama(MIXTRAL, cpu, { foldNorms: false, fuseQkv: false, dtype: "f64" });
    const r = rng(21);
    const params = model.parameters();
    expect([...params.keys()].filter((n) => n.startsWith("blk.0.ffn"))).toEqual([
      "blk.0.ffn_norm.weight", "blk.0.ffn_gate_inp.weight", "blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight",
    ]);
    const base = new Map<string, Float64Array>();
    // NOTE: std 0.5 (router 1.5): routing is decisive and every weight moves the loss measurably.
    for (const [name, p] of params) base.set(name, Float64Array.from({ length: p.numel }, () => (r() - 0.5) * (name.includes("gate_inp") ? 3 : 1) + (name.endsWith("norm.weight") ? 1 : 0)));
    const upload = (name: string, v: Float64Array) => tensor(v, { backend: cpu, dtype: "f64", shape: params.get(name)!.shape });
    const state = new Map<string, Tensor>([...base].map(([n, v]) => [n, upload(n, v)]));
    state.forEach((t) => (t.requiresGrad = true));
    model.loadStateDict(state);
    const ids = () => tensor(Int32Array.from({ length: 10 }, () => Math.floor(r() * V)), { backend: cpu, dtype: "i32", shape: [2, 5] });
    const [x, y] = [ids(), ids()];
    const { dropped, auxLoss } = noGrad(() => model.forwardWithAux(x));
    expect(await dropped!.item()).toBeGreaterThan(0); // capacity 1 drops some assignments here
    // The objective is CE + 0.1 * aux, and evaluation's lmLoss is CE alone.
    const [total, ce] = [await noGrad(() => trainingLoss(model, x, y)).item(), await noGrad(() => lmLoss(model, x, y)).item()];
    expect(total - ce).toBeCloseTo(0.1 * (await auxLoss!.item()), 12);
    trainingLoss(model, x, y).backward();
    const eps = 1e-6;
    for (const [name, w] of base) {
      const g = (await state.get(name)!.grad!.data()) as Float64Array;
      const u = Float64Array.from(w, () => r() - 0.5);
      const at = (s: number) => {
        model.loadStateDict(new Map(state).set(name, upload(name, Float64Array.from(w, (v, i) => v + s * u[i]!))));
        return noGrad(() => trainingLoss(model, x, y)).item();
      };
      const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
      const analytic = g.reduce((s, gi, i) => s + gi * u[i]!, 0);
      expect(Math.abs(analytic), name).toBeGreaterThan(1e-6);
      expect(Math.abs(fd - analytic), name).toBeLessThan(1e-8 + 1e-6 * Math.abs(analytic));
    }
  });

  it("trains with the jit-captured step exactly as with the step built each time", async () => {
    const ids = Int32Array.from({ length: 400 }, (_, i) => (i * 7 + (i >> 3)) % V);
    const run = async (jit: boolean) => {
      const model = new Llama({ ...MIXTRAL, dim: 16, hiddenDim: 12, headDim: 8 }, cpu, { foldNorms: false, fuseQkv: false });
      await initParameters(model, { seed: 3 });
      const t = new Trainer(model, new RandomWindows(ids, 2, 8, 5), { schedule: { kind: "constant", lr: 1e-2 }, adamw: {}, maxGradNorm: 1, jit });
      const out: number[] = [];
      for (let i = 0; i < 4; i++) out.push((await t.trainStep()).loss);
      return out;
    };
    const [captured, built] = [await run(true), await run(false)];
    for (let i = 0; i < captured.length; i++) expect(captured[i]).toBeCloseTo(built[i]!, 5);
  });

  it("names a bad MoE config", () => {
    const base = {
      model: { arch: "llama", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16, moe: { numExperts: 4, topK: 2 } },
      data: { path: "x.txt" }, train: { batchSize: 2, iters: 2 }, optimizer: { kind: "adamw", lr: 1e-3 }, schedule: { kind: "constant" },
    };
    expect(parseTrainConfig(base, "c.json").model.moe).toEqual({ numExperts: 4, topK: 2, routerAuxLossCoef: 0.01 });
    expect(() => parseTrainConfig({ ...base, model: { ...base.model, arch: "gpt2" } }, "c.json")).toThrow(/model\.moe: a mixture of experts goes with arch llama/);
    expect(() => parseTrainConfig({ ...base, model: { ...base.model, moe: { numExperts: 2, topK: 3 } } }, "c.json")).toThrow(/model\.moe\.topK \(3\) must be at most model\.moe\.numExperts \(2\)/);
    expect(() => parseTrainConfig({ ...base, model: { ...base.model, moe: { numExperts: 2, capacityFactor: 0 } } }, "c.json")).toThrow(/model\.moe\.capacityFactor/);
    expect(() => new Llama(MIXTRAL, cpu)).toThrow(/a MoE config needs foldNorms: false/);
    const m = new Llama(MIXTRAL, cpu, { foldNorms: false, fuseQkv: false });
    expect(() => applyActivationCheckpointing(m, "layer")).toThrow(/mixture-of-experts model checkpoints 'attention' only/);
    expect(applyActivationCheckpointing(m, "attention")).toBe(2);
  });
});
