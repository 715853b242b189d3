// Gradients of a whole tiny GPT-2 and a tiny Llama (a batch of B=2 sequences of T=5 tokens, causal
// attention, tied and untied heads) against float64 central finite differences on cpu. For every
// parameter tensor: a random direction over all its entries (d/de L(w + e u) = <dL/dw, u>), and a few
// single entries, each compared with the backward pass's gradient.

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { getBackend, noGrad, tensor } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { Llama } from "../../src/models/llama.js";
import type { Gpt2Config, LlamaConfig } from "../../src/models/types.js";
import { initParameters } from "../../src/train/init.js";
import type { TrainableModel } from "../../src/train/loss.js";
import { lmLoss } from "../../src/train/loss.js";
import { rng } from "../conformance/harness.js";

const cpu = await getBackend("cpu");
const [B, T, V] = [2, 5, 11];
const GPT2: Gpt2Config = { arch: "gpt2", dim: 8, nLayers: 2, nHeads: 2, vocabSize: V, maxSeqLen: 8, normEps: 1e-5 };
const LLAMA: LlamaConfig = {
  arch: "llama", dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, headDim: 4, vocabSize: V,
  maxSeqLen: 8, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
};
const H = 1e-5;

async function check(model: TrainableModel): Promise<void> {
  // NOTE: std 0.3 rather than 0.02, so the loss depends on every weight strongly enough to measure.
  await initParameters(model, { seed: 7, std: 0.3 });
  const r = rng(3);
  const ids = (n: number) => tensor(Int32Array.from({ length: n }, () => Math.floor(r() * V)), { backend: cpu, dtype: "i32", shape: [B, T] });
  const [x, y] = [ids(B * T), ids(B * T)];
  const params = model.parameters();
  // Norm weights and biases start at 1 and 0; perturb them so their gradients are generic.
  const base = new Map<string, Float64Array>();
  for (const [name, p] of params) base.set(name, Float64Array.from(await p.data(), (v) => v + 0.2 * (r() - 0.5)));
  const upload = (name: string, values: Float64Array) => tensor(values, { backend: cpu, dtype: "f64", shape: params.get(name)!.shape });
  const state = new Map<string, Tensor>([...base].map(([n, v]) => [n, upload(n, v)]));
  state.forEach((t) => (t.requiresGrad = true));
  model.loadStateDict(state);
  const loss = lmLoss(model, x, y);
  loss.backward();
  const grads = new Map<string, Float64Array>();
  for (const [name, t] of state) grads.set(name, (await t.grad!.data()) as Float64Array);

  const lossWith = async (name: string, values: Float64Array) => {
    model.loadStateDict(new Map(state).set(name, upload(name, values)));
    return noGrad(() => lmLoss(model, x, y)).item();
  };
  let checked = 0;
  for (const [name, w] of base) {
    const g = grads.get(name)!;
    // A random direction over every entry.
    const u = Float64Array.from(w, () => r() - 0.5);
    const shifted = (s: number) => Float64Array.from(w, (v, i) => v + s * u[i]!);
    const fd = ((await lossWith(name, shifted(H))) - (await lossWith(name, shifted(-H)))) / (2 * H);
    const analytic = g.reduce((s, gi, i) => s + gi * u[i]!, 0);
    expect(Math.abs(fd - analytic), `${name}: direction`).toBeLessThan(1e-6 + 1e-5 * Math.abs(analytic));
    // A few single entries.
    for (let k = 0; k < 3; k++) {
      const i = Math.floor(r() * w.length);
      const at = (s: number) => { const c = Float64Array.from(w); c[i]! += s; return c; };
      const fdi = ((await lossWith(name, at(H))) - (await lossWith(name, at(-H)))) / (2 * H);
      expect(Math.abs(fdi - g[i]!), `${name}[${i}]`).toBeLessThan(1e-6 + 1e-5 * Math.abs(g[i]!));
    }
    checked++;
  }
  expect(checked).toBe(params.size);
  // The loss depends on the weights (a check that could pass with all-zero gradients would prove nothing).
  expect(Math.max(...[...grads.values()].map((g) => Math.max(...g.map(Math.abs))))).toBeGreaterThan(1e-3);
}

describe("training gradients match float64 finite differences (cpu)", () => {
  it("tiny GPT-2 (tied head)", async () => {
    await check(new Gpt2(GPT2, cpu, { dtype: "f64" }));
  }, 120_000);

  it("tiny Llama (grouped-query attention, separate head)", async () => {
    await check(new Llama(LLAMA, cpu, { dtype: "f64", foldNorms: false, fuseQkv: false }));
  }, 120_000);
});
