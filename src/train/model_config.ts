// model_config.ts: the ModelConfig a training config's model section describes (with the vocabulary
// size its data brings). One place, so the model a run trains and the model an export writes
// (export/) have the same hyperparameters.

import type { ModelConfig } from "../models/types.js";
import type { TrainConfig } from "./config.js";

export function trainModelConfig(m: TrainConfig["model"], vocabSize: number): ModelConfig {
  if (m.arch === "gpt2") return { arch: "gpt2", dim: m.dim, nLayers: m.nLayers, nHeads: m.nHeads, vocabSize, maxSeqLen: m.blockSize, normEps: m.normEps };
  const hiddenDim = m.hiddenDim ?? Math.ceil((8 * m.dim) / 3 / 8) * 8;
  return {
    arch: "llama", dim: m.dim, hiddenDim, nLayers: m.nLayers, nHeads: m.nHeads, nKvHeads: m.nKvHeads ?? m.nHeads, headDim: m.dim / m.nHeads,
    vocabSize, maxSeqLen: m.blockSize, normEps: m.normEps, ropeTheta: 10000, tiedEmbeddings: true,
    ...(m.moe ? { moe: m.moe } : {}),
  };
}
