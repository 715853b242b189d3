// The Llama model with random weights, on every backend present: the cached path (prefill, then
// jit-replayed decode steps) gives the logits of a full non-cached forward; replayed steps compile
// nothing; folding the norms changes nothing; generate() honours its limits; bad input is an error.

import { describe, expect, it } from "vitest";
import { getBackend, withRoutines } from "../../src/index.js";
import { generate } from "../../src/models/generate.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { Llama } from "../../src/models/llama.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import { ropeFrequencies } from "../../src/models/rope.js";
import type { LlamaConfig } from "../../src/models/types.js";
import { backendsUnderTest } from "../conformance/harness.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { argmax, countingBackend, fullLogits, relError, row } from "./llama_helpers.js";

const backends = await backendsUnderTest();
const cpu = await getBackend("cpu");

const CONFIG: LlamaConfig = {
  arch: "llama", dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, vocabSize: 40,
  maxSeqLen: 16, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
};
const IDS = [1, 5, 7, 9, 3, 11, 2, 30];
const TOL = 1e-4;

for (const { name, backend: b, missing } of backends) describe.skipIf(!b)(`llama on ${name}${skipLabel(noBackend(name, missing))}`, () => {
  it("prefill + jit decode steps equal a full forward; steps after the first compile nothing", async () => {
    const { backend, builds } = countingBackend(b!);
    const lm = fromLoaded(randomLoadedModel(CONFIG, 3), backend);
    const full = await fullLogits(lm.model, IDS);
    const V = CONFIG.vocabSize;
    expect(relError(await lm.forwardPrefill(IDS.slice(0, 3)), row(full, 2, V))).toBeLessThan(TOL);
    expect(relError(await lm.decodeStep(IDS[3]!), row(full, 3, V))).toBeLessThan(TOL);
    const afterFirst = builds();
    for (let t = 4; t < IDS.length; t++) expect(relError(await lm.decodeStep(IDS[t]!), row(full, t, V))).toBeLessThan(TOL);
    expect(builds()).toBe(afterFirst);
    expect(lm.position).toBe(IDS.length);
    expect(lm.launchesPerStep).toBeGreaterThan(0);
    // After a reset the same captured step serves the new sequence.
    lm.reset();
    expect(relError(await lm.forwardPrefill(IDS.slice(0, 3)), row(full, 2, V))).toBeLessThan(TOL);
    const afterPrefill = builds();
    expect(relError(await lm.decodeStep(IDS[3]!), row(full, 3, V))).toBeLessThan(TOL);
    expect(builds()).toBe(afterPrefill);
  });

  it("matches the float64 reference (the file's layout, no routines)", async () => {
    // NOTE: on webgpu every new shape costs pipeline compiles (slow on SwiftShader): the variants run on cpu below.
    const loaded = randomLoadedModel(CONFIG, 5);
    const ref = withRoutines(false, () => Llama.fromLoaded(loaded, cpu, { dtype: "f64", foldNorms: false, fuseQkv: false }));
    const want = await withRoutines(false, () => fullLogits(ref, IDS));
    expect(relError(await fullLogits(Llama.fromLoaded(loaded, b!), IDS), want)).toBeLessThan(TOL);
  });
});

describe("llama cached decoding (cpu)", () => {
  it("grouped-query variants and tied heads match the float64 reference, cached or not", async () => {
    for (const cfg of [{ ...CONFIG, nKvHeads: 1, tiedEmbeddings: true }, { ...CONFIG, nKvHeads: 4 }]) {
      const loaded = randomLoadedModel(cfg, 5);
      const ref = withRoutines(false, () => Llama.fromLoaded(loaded, cpu, { dtype: "f64", foldNorms: false, fuseQkv: false }));
      const want = await withRoutines(false, () => fullLogits(ref, IDS));
      // Each layout option alone gives the same function.
      for (const opts of [{ foldNorms: false }, { fuseQkv: false }]) expect(relError(await fullLogits(Llama.fromLoaded(loaded, cpu, opts), IDS), want)).toBeLessThan(TOL);
      const lm = fromLoaded(loaded, cpu);
      expect(relError(await fullLogits(lm.model, IDS), want)).toBeLessThan(TOL);
      expect(relError(await lm.forwardPrefill(IDS.slice(0, 4)), row(want, 3, cfg.vocabSize))).toBeLessThan(TOL);
      expect(relError(await lm.decodeStep(IDS[4]!), row(want, 4, cfg.vocabSize))).toBeLessThan(TOL);
    }
  });

  it("a second prompt continues the cache (a chat turn)", async () => {
    const lm = fromLoaded(randomLoadedModel(CONFIG, 3), cpu);
    const full = await fullLogits(lm.model, IDS);
    const V = CONFIG.vocabSize;
    await lm.forwardPrefill(IDS.slice(0, 2));
    expect(relError(await lm.forwardPrefill(IDS.slice(2, 6)), row(full, 5, V))).toBeLessThan(TOL);
    expect(relError(await lm.decodeStep(IDS[6]!), row(full, 6, V))).toBeLessThan(TOL);
    expect(relError(await lm.forwardPrefill(IDS.slice(7, 8)), row(full, 7, V))).toBeLessThan(TOL);
  });

  it("generate stops at maxTokens, at a stop token and when the context is full", async () => {
    const lm = fromLoaded(randomLoadedModel(CONFIG, 7), cpu);
    const run = async (prompt: number[], opts: Partial<Parameters<typeof generate>[2]>) => {
      const out: number[] = [];
      for await (const id of generate(lm, prompt, { maxTokens: 5, sample: argmax, ...opts })) out.push(id);
      return out;
    };
    const five = await run([1, 2], {});
    expect(five).toHaveLength(5);
    expect(lm.position).toBe(2 + 4); // the last token is not fed back
    expect(await run([1, 2], { isStop: (id) => id === five[2] })).toEqual(five.slice(0, 2));
    expect(await run([1, 2], { maxTokens: 0 })).toEqual([]);
    // 14 prompt tokens in a context of 16: the prompt's logits give one token, one decode step another, then it is full.
    expect(await run(new Array(14).fill(3), { maxTokens: 10 })).toHaveLength(3);
    // Greedy decoding is deterministic: the same prompt gives the same tokens after a reset.
    expect(await run([1, 2], {})).toEqual(five);
  });

  it("rejects a prompt longer than the context, an empty prompt and ids outside the vocabulary", async () => {
    const lm = fromLoaded(randomLoadedModel(CONFIG, 7), cpu);
    await expect(lm.forwardPrefill(new Array(17).fill(1))).rejects.toThrow(/prompt of 17 tokens does not fit the context of 16 tokens/);
    await expect(lm.forwardPrefill([])).rejects.toThrow(/prompt is empty/);
    await expect(lm.forwardPrefill([1, 40])).rejects.toThrow(/token id 40 is not in the vocabulary of 40 tokens/);
    await expect(lm.decodeStep(1)).rejects.toThrow(/call forwardPrefill first/);
    await lm.forwardPrefill(new Array(10).fill(1));
    await expect(lm.forwardPrefill(new Array(7).fill(1))).rejects.toThrow(/7 tokens does not fit the context of 16 tokens after the 10 tokens already in it/);
    const gen = generate(lm, new Array(20).fill(1), { maxTokens: 3, sample: argmax });
    await expect(gen.next()).rejects.toThrow(/prompt of 20 tokens/);
    // The cache is state written in place: without the kv_write routine it would silently stay empty.
    lm.reset();
    await expect(withRoutines(false, () => lm.forwardPrefill([1, 2]))).rejects.toThrow(/cpu has no in-place kv_write routine/);
  });

  it("a smaller context length caps the cache, the prompt and generation", async () => {
    const lm = fromLoaded(randomLoadedModel(CONFIG, 7), cpu, { contextLength: 6 });
    expect(lm.contextLength).toBe(6);
    await expect(lm.forwardPrefill(new Array(7).fill(1))).rejects.toThrow(/7 tokens does not fit the context of 6 tokens/);
    const out: number[] = [];
    for await (const id of generate(lm, [1, 2, 3, 4], { maxTokens: 10, sample: argmax })) out.push(id);
    expect(out).toHaveLength(3);
    expect(lm.position).toBe(6);
    expect(() => fromLoaded(randomLoadedModel(CONFIG, 7), cpu, { contextLength: 0 })).toThrow(/contextLength must be a positive integer/);
  });

  it("names the file and tensor when weights do not fit the config", () => {
    const loaded = randomLoadedModel(CONFIG, 1);
    const tensors = new Map(loaded.tensors);
    tensors.set("blk.1.attn_k.weight", { ...tensors.get("blk.1.attn_k.weight")!, shape: [8, 32] });
    expect(() => fromLoaded({ ...loaded, tensors }, cpu)).toThrow(/random llama \(seed 1\): tensor 'blk.1.attn_k.weight' has shape \(8, 32\), the config says \(16, 32\)/);
    tensors.delete("blk.1.attn_k.weight");
    expect(() => fromLoaded({ ...loaded, tensors }, cpu)).toThrow(/tensor 'blk.1.attn_k.weight' is missing/);
    expect(() => Llama.fromLoaded({ ...loaded, tensors }, cpu, { fuseQkv: false })).toThrow(/missing 'blk.1.attn_k.weight'/);
    tensors.set("blk.1.attn_k.weight", loaded.tensors.get("blk.1.attn_k.weight")!);
    tensors.set("blk.9.ffn_up.weight", loaded.tensors.get("blk.1.ffn_up.weight")!);
    expect(() => fromLoaded({ ...loaded, tensors }, cpu)).toThrow(/does not use: blk.9.ffn_up.weight/);
  });
});

describe("rope frequencies", () => {
  it("are theta^(-2i/D), divided by the factor for linear scaling", () => {
    const f = ropeFrequencies(8, 10000);
    expect(Array.from(f)).toEqual([1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75]);
    expect(Array.from(ropeFrequencies(8, 10000, { type: "linear", factor: 4 }))).toEqual(Array.from(f, (x) => x / 4));
  });

  it("follow Llama 3.1's scaling: short wavelengths kept, long divided, the band between interpolated", () => {
    const scaling = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } as const;
    const base = ropeFrequencies(128, 500000);
    const scaled = ropeFrequencies(128, 500000, scaling);
    base.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) expect(scaled[i]).toBe(f);
      else if (wavelen > 8192) expect(scaled[i]).toBeCloseTo(f / 8, 15);
      else {
        const smooth = (8192 / wavelen - 1) / 3;
        expect(scaled[i]).toBeCloseTo((1 - smooth) * (f / 8) + smooth * f, 15);
      }
    });
    expect(scaled.filter((f, i) => f === base[i]).length).toBeGreaterThan(0);
    expect(scaled.filter((f, i) => Math.abs(f - base[i]! / 8) < 1e-18).length).toBeGreaterThan(0);
  });
});
