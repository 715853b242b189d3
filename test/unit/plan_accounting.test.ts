// plan_accounting.test.ts: the planner's model accounting against hand-computed cases: Llama-2 7B's
// and GPT-2's parameter counts, FLOPs per token, grouped-query KV bytes (Llama-3 70B), mixture-of-
// experts active vs total parameters, and reading shapes from config.json and presets.

import { describe, expect, it } from "vitest";
import type { PlanModel } from "../../src/plan/index.js";
import {
  PlanInputError, backwardFlopsPerToken, countParams, findPreset, forwardFlopsPerToken, kvBytesPerToken, matmulParams, paramsRead,
  planModelFromHf, prefillFlops, resolveModel, trainingFlopsPerToken,
} from "../../src/plan/index.js";

describe("plan accounting", () => {
  it("counts Llama-2 7B's 6,738,415,616 parameters by component", () => {
    const c = countParams(findPreset("llama2-7b")!);
    expect(c.embeddings).toBe(32000 * 4096);
    expect(c.head).toBe(32000 * 4096);
    expect(c.attention).toBe(32 * 4 * 4096 * 4096);
    expect(c.mlp).toBe(32 * 3 * 4096 * 11008);
    expect(c.norms).toBe(32 * 2 * 4096 + 4096);
    expect(c.total).toBe(6_738_415_616);
    expect(c.active).toBe(c.total);
  });

  it("counts GPT-2 small's 124,439,808 parameters (biases, LayerNorms, learned positions, tied head)", () => {
    const c = countParams(findPreset("gpt2")!);
    expect(c.total).toBe(124_439_808);
    expect(c.head).toBe(0);
  });

  it("matches the published sizes of Llama 3.1 8B / 70B / 405B", () => {
    expect(countParams(findPreset("llama-8b")!).total).toBe(8_030_261_248);
    expect(countParams(findPreset("llama-70b")!).total).toBe(70_553_706_496);
    expect(countParams(findPreset("llama-405b")!).total).toBe(405_853_388_800);
  });

  it("counts FLOPs per token: 2 per matmul weight plus 4 x layers x context x d_attn, backward twice forward", () => {
    const m = findPreset("llama2-7b")!;
    const matmul = 6_738_415_616 - 32000 * 4096 - (32 * 2 * 4096 + 4096); // less the lookup and the norms
    expect(matmulParams(m)).toBe(matmul);
    expect(forwardFlopsPerToken(m, 0)).toBe(2 * matmul);
    expect(forwardFlopsPerToken(m, 4096)).toBe(2 * matmul + 4 * 32 * 4096 * 4096);
    expect(backwardFlopsPerToken(m, 4096)).toBe(2 * forwardFlopsPerToken(m, 4096));
    expect(trainingFlopsPerToken(m, 4096)).toBe(6 * matmul + 12 * 32 * 4096 * 4096);
    // a tied head still multiplies: GPT-2's matmul weights include the 50257 x 768 head
    expect(matmulParams(findPreset("gpt2")!)).toBe(124_439_808 - 1024 * 768 - (12 * 4 * 768 + 2 * 768));
  });

  it("counts causal prefill attention as 2 x layers x T(T+1) x d_attn", () => {
    const m = findPreset("llama2-7b")!;
    expect(prefillFlops(m, 10)).toBe(2 * matmulParams(m) * 10 + 2 * 32 * 10 * 11 * 4096);
  });

  it("counts KV bytes per token with grouped-query attention (Llama-3 70B: 8 KV heads, not 64)", () => {
    const m = findPreset("llama3-70b")!;
    expect(kvBytesPerToken(m, 2)).toBe(80 * 8 * 128 * 2 * 2); // 327,680 B = 0.31 MiB
    expect(kvBytesPerToken({ ...m, nKvHeads: 64 }, 2)).toBe(2_621_440);
    expect(kvBytesPerToken(findPreset("llama2-7b")!, 2)).toBe(512 * 1024);
    expect(kvBytesPerToken(findPreset("llama3-405b")!, 1)).toBe(126 * 8 * 128 * 2);
  });

  it("counts a mixture of experts' total and active parameters by hand", () => {
    const m: PlanModel = {
      name: "tiny-moe", family: "llama", dim: 8, nLayers: 2, nHeads: 2, nKvHeads: 2, headDim: 4, hiddenDim: 32, vocabSize: 10, maxSeqLen: 16,
      tiedEmbeddings: false, moe: { experts: 4, topK: 2, sharedExperts: 0, expertHiddenDim: 16, denseLayers: 0 },
    };
    const c = countParams(m);
    expect(c.attention).toBe(2 * 4 * 8 * 8);
    expect(c.router).toBe(2 * 8 * 4);
    expect(c.experts).toBe(2 * 4 * 3 * 8 * 16);
    expect(c.mlp).toBe(0);
    expect(c.total).toBe(80 + 512 + 64 + 3072 + 40 + 80);
    expect(c.active).toBe(c.total - 3072 + 3072 / 2);
    // decode at batch 1 reads the active weights; a long prompt reads (almost) all
    expect(paramsRead(m, 1)).toBeCloseTo(c.active, 6);
    expect(paramsRead(m, 1000)).toBeCloseTo(c.total, 6);
  });

  it("the 1T-class MoE preset is ~1.03T parameters, ~35B active", () => {
    const c = countParams(findPreset("moe-1t")!);
    expect(c.total / 1e12).toBeCloseTo(1.03, 2);
    expect(c.active / 1e9).toBeGreaterThan(30);
    expect(c.active / 1e9).toBeLessThan(40);
  });

  it("reads MoE routing from a Mixtral config.json and Llama configs through kiln's reader", () => {
    const mixtral = planModelFromHf({
      architectures: ["MixtralForCausalLM"], hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
      num_key_value_heads: 8, vocab_size: 32000, max_position_embeddings: 32768, num_local_experts: 8, num_experts_per_tok: 2,
    }, "config.json", "mixtral");
    expect(mixtral.moe).toEqual({ experts: 8, topK: 2, sharedExperts: 0, expertHiddenDim: 14336, denseLayers: 0 });
    const c = countParams(mixtral);
    expect(c.total / 1e9).toBeCloseTo(46.70, 1); // Mixtral 8x7B: 46.7B total
    expect(c.active / 1e9).toBeCloseTo(12.88, 1); // 12.9B active
    const llama = planModelFromHf({ architectures: ["LlamaForCausalLM"], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4 }, "c.json", "x");
    expect(llama.nKvHeads).toBe(4);
    expect(() => planModelFromHf({ architectures: ["MixtralForCausalLM"], hidden_size: 8 }, "bad.json", "x")).toThrow(/bad.json: num_attention_heads: missing/);
  });

  it("unknown model names list the presets", () => {
    expect(() => resolveModel("llama-9000b")).toThrow(PlanInputError);
    expect(() => resolveModel("llama-9000b")).toThrow(/llama2-7b.*moe-1t/);
  });
});
