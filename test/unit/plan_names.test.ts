// plan_names.test.ts: issue 15 "accept the names people type": Hugging Face repository ids and
// spelled-out names resolve to the presets of the same shape; a near miss is still an error that
// lists the presets; a file of that name wins over the reading.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PlanInputError, resolveModel } from "../../src/plan/index.js";

describe("model names people type", () => {
  it("maps hub ids and spelled-out names to presets", () => {
    const cases: [string, string][] = [
      ["meta-llama/Llama-2-7b-hf", "llama2-7b"], ["llama-2-7b", "llama2-7b"], ["Llama-2-13b-chat-hf", "llama2-13b"], ["meta-llama/Llama-2-70b-hf", "llama2-70b"],
      ["Llama-3.1-8B", "llama3-8b"], ["meta-llama/Meta-Llama-3-70B-Instruct", "llama3-70b"], ["meta-llama/Llama-3.1-405B", "llama3-405b"],
      ["openai-community/gpt2-xl", "gpt2-xl"], ["GPT-2", "gpt2"],
    ];
    for (const [typed, preset] of cases) expect(resolveModel(typed).name, typed).toBe(preset);
    // the shape, not just the name: Llama-2-7B has 32 heads of 128 and no grouped-query attention
    const m = resolveModel("meta-llama/Llama-2-7b-hf");
    expect([m.dim, m.nLayers, m.nKvHeads, m.vocabSize]).toEqual([4096, 32, 32, 32000]);
  });

  it("a size that does not exist is an error listing the presets", () => {
    expect(() => resolveModel("llama-2-8b")).toThrow(PlanInputError);
    expect(() => resolveModel("meta-llama/Llama-2-8b-hf")).toThrow(/unknown model .*presets: llama2-7b/);
  });

  it("a folder of that name on disk is read as the model it holds", () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-plan-names-"));
    const cwd = process.cwd();
    try {
      const folder = join(dir, "meta-llama", "Llama-2-7b-hf");
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, "config.json"), JSON.stringify({
        architectures: ["LlamaForCausalLM"], hidden_size: 256, intermediate_size: 688, num_attention_heads: 4, num_hidden_layers: 2,
        num_key_value_heads: 4, vocab_size: 1000, max_position_embeddings: 512, rms_norm_eps: 1e-5,
      }));
      process.chdir(dir);
      expect(resolveModel("meta-llama/Llama-2-7b-hf").dim).toBe(256);
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
