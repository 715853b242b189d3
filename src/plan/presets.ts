// presets.ts: the model shapes the planner knows by name: Llama 2 (7B, 13B, 70B), Llama 3.1 (8B,
// 70B, 405B), the four GPT-2 sizes and a 1T-class mixture of experts, with their published
// config.json values. It owns the names and aliases; files on disk are resolve_model.ts's.

import type { PlanModel } from "./plan_model.js";

type Shape = Omit<PlanModel, "name" | "family" | "tiedEmbeddings"> & Partial<Pick<PlanModel, "family" | "tiedEmbeddings">>;

const llama = (s: Shape): Omit<PlanModel, "name"> => ({ family: "llama", tiedEmbeddings: false, ...s });
const gpt2 = (dim: number, nLayers: number, nHeads: number): Omit<PlanModel, "name"> => ({
  family: "gpt2", dim, nLayers, nHeads, nKvHeads: nHeads, headDim: dim / nHeads, hiddenDim: 4 * dim, vocabSize: 50257, maxSeqLen: 1024, tiedEmbeddings: true,
});

const PRESETS: Readonly<Record<string, Omit<PlanModel, "name">>> = {
  // meta-llama/Llama-2-*-hf config.json
  "llama2-7b": llama({ dim: 4096, nLayers: 32, nHeads: 32, nKvHeads: 32, headDim: 128, hiddenDim: 11008, vocabSize: 32000, maxSeqLen: 4096 }),
  "llama2-13b": llama({ dim: 5120, nLayers: 40, nHeads: 40, nKvHeads: 40, headDim: 128, hiddenDim: 13824, vocabSize: 32000, maxSeqLen: 4096 }),
  "llama2-70b": llama({ dim: 8192, nLayers: 80, nHeads: 64, nKvHeads: 8, headDim: 128, hiddenDim: 28672, vocabSize: 32000, maxSeqLen: 4096 }),
  // meta-llama/Llama-3.1-* config.json
  "llama3-8b": llama({ dim: 4096, nLayers: 32, nHeads: 32, nKvHeads: 8, headDim: 128, hiddenDim: 14336, vocabSize: 128256, maxSeqLen: 131072 }),
  "llama3-70b": llama({ dim: 8192, nLayers: 80, nHeads: 64, nKvHeads: 8, headDim: 128, hiddenDim: 28672, vocabSize: 128256, maxSeqLen: 131072 }),
  "llama3-405b": llama({ dim: 16384, nLayers: 126, nHeads: 128, nKvHeads: 8, headDim: 128, hiddenDim: 53248, vocabSize: 128256, maxSeqLen: 131072 }),
  // openai-community/gpt2, gpt2-medium, gpt2-large, gpt2-xl
  gpt2: gpt2(768, 12, 12),
  "gpt2-medium": gpt2(1024, 24, 16),
  "gpt2-large": gpt2(1280, 36, 20),
  "gpt2-xl": gpt2(1600, 48, 25),
  // NOTE: Kimi K2's published shape (61 layers, dim 7168, 384 experts of 2048, top 8, 1 shared expert,
  // first layer dense) with grouped-query attention (8 KV heads) in place of its multi-head latent
  // attention, which kiln does not model: about 1.03T parameters, 33B active.
  "moe-1t": llama({
    dim: 7168, nLayers: 61, nHeads: 64, nKvHeads: 8, headDim: 128, hiddenDim: 18432, vocabSize: 163840, maxSeqLen: 131072,
    moe: { experts: 384, topK: 8, sharedExperts: 1, expertHiddenDim: 2048, denseLayers: 1 },
  }),
};

/** Short names people type, and the preset each means. */
export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  "llama-7b": "llama2-7b",
  "llama-13b": "llama2-13b",
  "llama-8b": "llama3-8b",
  "llama-70b": "llama3-70b",
  "llama-405b": "llama3-405b",
  "gpt2-small": "gpt2",
  "1t-moe": "moe-1t",
};

export const MODEL_PRESET_NAMES: readonly string[] = Object.keys(PRESETS);

/** The preset a name or alias means, or undefined. */
export function findPreset(name: string): PlanModel | undefined {
  const key = name.toLowerCase();
  const canonical = MODEL_ALIASES[key] ?? key;
  const p = PRESETS[canonical];
  return p && { name: canonical, ...p };
}

/**
 * The preset a Hugging Face repository id or a name as people type it means: `meta-llama/Llama-2-7b-hf`,
 * `llama-2-7b`, `Llama-3.1-8B`, `Meta-Llama-3-70B-Instruct`, `openai-community/gpt2-xl`. The organization,
 * the "Meta-" prefix and suffixes that do not change the shape (-hf, -chat, -instruct) are dropped;
 * Llama 3 and 3.1 share a shape (the presets carry 3.1's 128K context).
 */
export function findPresetByHubName(name: string): PlanModel | undefined {
  let n = name.toLowerCase().trim().replace(/^[\w.-]+\//, "").replace(/^meta-/, "");
  n = n.replace(/(-(hf|chat|instruct|base))+$/, "");
  const llama = /^llama-?(2|3|3\.1)-(\d+)b$/.exec(n);
  if (llama) return findPreset(`llama${llama[1] === "2" ? "2" : "3"}-${llama[2]}b`);
  if (/^gpt-?2(-(small|medium|large|xl))?$/.test(n)) return findPreset(n.replace(/^gpt-?2/, "gpt2"));
  return findPreset(n);
}

/** "llama2-7b, ..., moe-1t (aliases: llama-7b = llama2-7b, ...)" for error messages and help. */
export function knownModelsText(): string {
  const aliases = Object.entries(MODEL_ALIASES).map(([a, c]) => `${a} = ${c}`).join(", ");
  return `${MODEL_PRESET_NAMES.join(", ")} (aliases: ${aliases})`;
}
