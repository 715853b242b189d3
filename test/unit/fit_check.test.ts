// fit_check.test.ts: a model with a weight larger than the backend's largest buffer is refused before
// any upload, naming the tensor, its bytes and the adapter limit; one that fits loads.
import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { memoryTensor } from "../../src/models/formats/file_tensor.js";
import { fromLoaded } from "../../src/models/language_model.js";
import { checkModelFits } from "../../src/models/fit_check.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import type { LoadedModel } from "../../src/models/types.js";

describe("checkModelFits", () => {
  const model: LoadedModel = {
    config: { arch: "llama", dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, nKvHeads: 2, headDim: 4, vocabSize: 1000, maxSeqLen: 16, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true },
    tensors: new Map([["token_embd.weight", memoryTensor([1000, 8], new Float32Array(8000))], ["output_norm.weight", memoryTensor([8], new Float32Array(8))]]),
    source: "big.gguf",
    metadata: new Map(),
  };

  it("names the tensor, its size and the webgpu adapter's limit", () => {
    const webgpu = { name: "webgpu" as const, caps: { dtypes: [], maxBufferBytes: 16_000, f16Math: false, subgroups: false } };
    expect(() => checkModelFits(model, webgpu)).toThrow(
      "big.gguf: the model is too large for webgpu here: tensor 'token_embd.weight' [1000, 8] needs 32000 bytes as f32, over this adapter's limit (maxStorageBufferBindingSize / maxBufferSize) of 16000 bytes",
    );
    expect(() => checkModelFits(model, { ...webgpu, caps: { ...webgpu.caps, maxBufferBytes: 32_000 } })).not.toThrow();
  });

  it("runs before fromLoaded uploads anything", async () => {
    const cpu = await getBackend("cpu");
    const small = randomLoadedModel({ ...model.config, vocabSize: 32 });
    expect(() => fromLoaded(small, cpu)).not.toThrow();
    // NOTE: the cpu backend with a smaller buffer limit: its methods stay bound to the real one.
    const tight = Object.assign(Object.create(cpu) as typeof cpu, { caps: { ...cpu.caps, maxBufferBytes: 100 } });
    expect(() => fromLoaded(small, tight)).toThrow(/too large for cpu here: tensor '.*' .* over cpu's largest buffer of 100 bytes/);
  });
});
