// Hugging Face folders: write -> read round trips (bit-exact f32), the q/k row permutation and GPT-2's
// Conv1D transposes as stored on disk, sharded checkpoints, config.json mapping, and named errors.

import { existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bf16BitsToF32, f32ToBf16Bits } from "../../src/core/dtype.js";
import { memoryTensor } from "../../src/models/formats/file_tensor.js";
import { configFromHf } from "../../src/models/formats/hf_config.js";
import { readHfFolder, writeHfFolder } from "../../src/models/formats/hf_folder.js";
import { readLlama2c } from "../../src/models/formats/llama2c.js";
import { readSafetensorsHeader, writeSafetensors } from "../../src/models/formats/safetensors.js";
import type { Gpt2Config, LlamaConfig, LoadedModel } from "../../src/models/types.js";
import { sameTensors, scratch, STORIES260K_BIN, syntheticModel } from "./formats_helpers.js";

const LLAMA: LlamaConfig = {
  arch: "llama", dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 4, vocabSize: 20,
  maxSeqLen: 64, normEps: 1e-6, ropeTheta: 10000, tiedEmbeddings: false,
};
const GPT2: Gpt2Config = { arch: "gpt2", dim: 8, nLayers: 2, nHeads: 2, vocabSize: 12, maxSeqLen: 16, normEps: 1e-5 };

/** A tensor's raw f32 values as stored in a safetensors file. */
function stored(file: string, name: string): { shape: readonly number[]; data: Float32Array } {
  const t = readSafetensorsHeader(file).tensors.find((x) => x.name === name)!;
  const bytes = readFileSync(file).subarray(t.offset, t.offset + t.nbytes);
  return { shape: t.shape, data: new Float32Array(Uint8Array.from(bytes).buffer) };
}

function withDir(fn: (dir: string) => void): void {
  const s = scratch();
  try {
    fn(s.dir);
  } finally {
    s.done();
  }
}

describe("HF folder: write -> read", () => {
  it("round-trips a Llama bit-exactly (tied and untied) with its config", () => {
    withDir((dir) => {
      for (const tied of [false, true]) {
        const a = syntheticModel({ ...LLAMA, tiedEmbeddings: tied });
        writeHfFolder(join(dir, String(tied)), a);
        const b = readHfFolder(join(dir, String(tied)));
        expect(sameTensors(a, b)).toEqual([]);
        expect(b.config).toEqual(a.config);
      }
    });
  });

  it("round-trips stories260K bit-exactly", () => {
    withDir((dir) => {
      const a = readLlama2c(STORIES260K_BIN);
      writeHfFolder(dir, a);
      expect(sameTensors(a, readHfFolder(dir))).toEqual([]);
    });
  });

  it("stores q/k rows in rotate_half order: per head, even rows first, then odd rows", () => {
    withDir((dir) => {
      const a = syntheticModel(LLAMA);
      writeHfFolder(dir, a);
      const file = join(dir, "model.safetensors");
      for (const [gguf, hf, heads] of [["blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", 4], ["blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight", 2]] as const) {
        const src = a.tensors.get(gguf)!.read().data;
        const { shape, data } = stored(file, hf);
        expect(shape).toEqual(a.tensors.get(gguf)!.shape);
        const row = (x: ArrayLike<number>, r: number) => Array.from(x).slice(r * 16, r * 16 + 16);
        // head size 4: GGUF rows (0, 1, 2, 3) are pairs (0,1), (2,3); HF stores (0, 2, 1, 3).
        for (let h = 0; h < heads; h++) {
          [0, 2, 1, 3].forEach((g, hfRow) => expect(row(data, 4 * h + hfRow)).toEqual(row(src, 4 * h + g)));
        }
      }
      // v_proj is not permuted.
      expect(Array.from(stored(file, "model.layers.0.self_attn.v_proj.weight").data)).toEqual(Array.from(a.tensors.get("blk.0.attn_v.weight")!.read().data));
    });
  });

  it("round-trips GPT-2, storing Conv1D weights as (in, out)", () => {
    withDir((dir) => {
      const a = syntheticModel(GPT2);
      writeHfFolder(dir, a);
      const b = readHfFolder(dir);
      expect(sameTensors(a, b)).toEqual([]);
      expect(b.config).toEqual(GPT2);
      const { shape, data } = stored(join(dir, "model.safetensors"), "transformer.h.0.attn.c_attn.weight");
      expect(shape).toEqual([8, 24]);
      const w = a.tensors.get("blk.0.attn_qkv.weight")!.read().data; // (24, 8)
      expect(data[1 * 24 + 5]).toBe(w[5 * 8 + 1]);
      expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8"))).toMatchObject({ architectures: ["GPT2LMHeadModel"], n_embd: 8, n_layer: 2 });
    });
  });

  it("writes F16/BF16 weights and reads them back widened", () => {
    withDir((dir) => {
      const a = syntheticModel(LLAMA);
      writeHfFolder(dir, a, { dtype: "BF16", tokenizerJson: { model: { type: "BPE" } }, tokenizerConfig: { bos_token: "<s>" } });
      const b = readHfFolder(dir);
      expect(b.tensors.get("output.weight")!.stored).toBe("bf16");
      const x = a.tensors.get("blk.0.attn_q.weight")!.read().data;
      const y = b.tensors.get("blk.0.attn_q.weight")!.read().data;
      x.forEach((v, i) => expect(y[i]).toBe(bf16BitsToF32(f32ToBf16Bits(v))));
      expect(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"))).toEqual({ model: { type: "BPE" } });
      expect(existsSync(join(dir, "tokenizer_config.json"))).toBe(true);
      expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).torch_dtype).toBe("bfloat16");
    });
  });

  it("reads a sharded checkpoint through model.safetensors.index.json", () => {
    withDir((dir) => {
      const a = syntheticModel(LLAMA);
      writeHfFolder(join(dir, "one"), a);
      const header = readSafetensorsHeader(join(dir, "one/model.safetensors"));
      const raw = readFileSync(join(dir, "one/model.safetensors"));
      const shards = [header.tensors.slice(0, 7), header.tensors.slice(7)];
      const weightMap: Record<string, string> = {};
      mkdirSync(join(dir, "sharded"));
      shards.forEach((ts, i) => {
        const file = `model-0000${i + 1}-of-00002.safetensors`;
        writeSafetensors(join(dir, "sharded", file), ts.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: () => raw.subarray(t.offset, t.offset + t.nbytes) })));
        for (const t of ts) weightMap[t.name] = file;
      });
      writeFileSync(join(dir, "sharded/model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
      writeFileSync(join(dir, "sharded/config.json"), readFileSync(join(dir, "one/config.json")));
      expect(sameTensors(a, readHfFolder(join(dir, "sharded")))).toEqual([]);
    });
  });
});

describe("HF config.json", () => {
  it("maps Llama keys with transformers' defaults and llama3 rope scaling", () => {
    const c = configFromHf({
      architectures: ["LlamaForCausalLM"], hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
      num_key_value_heads: 1, vocab_size: 100, rope_theta: 500000, max_position_embeddings: 256,
      rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    }, "config.json");
    expect(c).toEqual({
      arch: "llama", dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 1, headDim: 8, vocabSize: 100, maxSeqLen: 256,
      normEps: 1e-6, ropeTheta: 500000, tiedEmbeddings: false,
      ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
  });

  it("maps GPT-2's n_* keys", () => {
    expect(configFromHf({ architectures: ["GPT2LMHeadModel"], n_embd: 64, n_layer: 3, n_head: 4 }, "c.json")).toEqual({
      arch: "gpt2", dim: 64, nLayers: 3, nHeads: 4, vocabSize: 50257, maxSeqLen: 1024, normEps: 1e-5,
    });
  });

  it("names the file and the key for bad configs", () => {
    expect(() => configFromHf({ architectures: ["MambaForCausalLM"] }, "/m/config.json")).toThrow(/\/m\/config\.json: architectures: \["MambaForCausalLM"\] is not supported \(known: LlamaForCausalLM, GPT2LMHeadModel\)/);
    expect(() => configFromHf({ model_type: "llama", hidden_size: 8, num_attention_heads: 2 }, "c.json")).toThrow(/c\.json: intermediate_size: missing/);
    expect(() => configFromHf({ model_type: "llama", hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, rope_scaling: { rope_type: "yarn", factor: 2 } }, "c.json")).toThrow(/c\.json: rope_scaling\.rope_type: "yarn" is not supported/);
  });
});

describe("HF folder: bad input", () => {
  const folder = (dir: string, m: LoadedModel): string => (writeHfFolder(dir, m), dir);

  it("a shape contradicting config.json", () => {
    withDir((dir) => {
      folder(dir, syntheticModel(LLAMA));
      const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 30 }));
      expect(() => readHfFolder(dir)).toThrow(/: tensor 'blk\.0\.ffn_gate\.weight' shape: \[24, 16\] contradicts the config, which implies \[30, 16\]/);
    });
  });

  it("a truncated safetensors file, an unknown tensor, an unsupported dtype", () => {
    withDir((dir) => {
      folder(dir, syntheticModel(LLAMA));
      const file = join(dir, "model.safetensors");
      truncateSync(file, 5000);
      expect(() => readHfFolder(dir)).toThrow(/model\.safetensors: tensor '.*' data: bytes \d+\.\.\d+ run past the end of the file \(5000 bytes; truncated\?\)/);
      truncateSync(file, 4);
      expect(() => readHfFolder(dir)).toThrow(/model\.safetensors: header length: file is 4 bytes/);
      const one = memoryTensor([2], Float32Array.from([1, 2]));
      writeSafetensors(file, [{ name: "model.layers.0.self_attn.rotary_emb.foo", dtype: "F32", shape: [2], bytes: () => new Uint8Array(one.read().data.buffer) }]);
      expect(() => readHfFolder(dir)).toThrow(/model\.safetensors: tensor 'model\.layers\.0\.self_attn\.rotary_emb\.foo': not a known llama tensor name/);
      const json = JSON.stringify({ x: { dtype: "I64", shape: [1], data_offsets: [0, 8] } });
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      writeFileSync(file, Buffer.concat([len, Buffer.from(json), Buffer.alloc(8)]));
      expect(() => readHfFolder(dir)).toThrow(/model\.safetensors: tensor 'x' dtype: "I64" is not supported \(kiln reads F32, F16, BF16\)/);
    });
  });
});
