// GGUF: the real files in test/fixtures (tiny random Llama, vocab-only GPT-2), write -> read round trips
// (bit-exact for f32, metadata of all 13 value types, v2 headers), and the named errors for bad files.

import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToF16Bits } from "../../src/core/dtype.js";
import { readGguf, readGgufTensor } from "../../src/models/formats/gguf.js";
import { loadGguf } from "../../src/models/formats/gguf_model.js";
import { writeGguf } from "../../src/models/formats/gguf_writer.js";
import { llama3FromRopeFactors, llama3RopeFactors } from "../../src/models/formats/rope_freqs.js";
import type { Gpt2Config, LlamaConfig, MetaValue } from "../../src/models/types.js";
import { sameTensors, scratch, syntheticModel, TINY_GGUF, VOCAB_GGUF } from "./formats_helpers.js";

const LLAMA: LlamaConfig = {
  arch: "llama", dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 40,
  maxSeqLen: 128, normEps: 1e-5, ropeTheta: 500000, tiedEmbeddings: false,
};

describe("GGUF: llama-2-tiny-random.gguf", () => {
  it("maps the metadata to a config and every tensor dequantizes to finite values", () => {
    const m = loadGguf(TINY_GGUF);
    expect(m.config).toEqual({
      arch: "llama", dim: 8, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, headDim: 4, vocabSize: 32000,
      maxSeqLen: 4096, normEps: Math.fround(1e-5), ropeTheta: 10000, tiedEmbeddings: false,
    });
    expect(m.tensors.size).toBe(12);
    expect(m.tensors.get("output.weight")!.shape).toEqual([32000, 8]);
    expect(m.tensors.get("blk.0.ffn_down.weight")!.shape).toEqual([8, 32]);
    expect(m.tensors.get("token_embd.weight")!.stored).toBe("f16");
    for (const [name, t] of m.tensors) {
      const h = t.read();
      expect(h.data.length, name).toBe(t.shape.reduce((a, b) => a * b, 1));
      expect(h.data.every(Number.isFinite), name).toBe(true);
    }
    expect((m.metadata.get("tokenizer.ggml.tokens") as string[]).length).toBe(32000);
    expect(m.metadata.get("tokenizer.ggml.scores")).toBeInstanceOf(Float32Array);
  });

  it("header: alignment 32 by default, data at 724416", () => {
    const g = readGguf(TINY_GGUF);
    expect([g.version, g.alignment, g.dataOffset]).toEqual([3, 32, 724416]);
    expect(g.metadataTypes.get("tokenizer.ggml.token_type")).toBe("i32[]");
    expect(g.metadataTypes.get("llama.attention.layer_norm_rms_epsilon")).toBe("f32");
  });

  it("converts to GGUF again without changing a bit (f16 stays exact through f32)", () => {
    const s = scratch();
    try {
      const a = loadGguf(TINY_GGUF);
      writeGguf(join(s.dir, "re.gguf"), a, { types: "f16" });
      const b = loadGguf(join(s.dir, "re.gguf"));
      expect(sameTensors(a, b)).toEqual([]);
      expect(b.config).toEqual(a.config);
      expect(b.metadata.get("tokenizer.ggml.tokens")).toEqual(a.metadata.get("tokenizer.ggml.tokens"));
    } finally {
      s.done();
    }
  });
});

describe("GGUF: vocab-only file", () => {
  it("parses a file that ends before the aligned data start (n_tensors 0)", () => {
    const g = readGguf(VOCAB_GGUF);
    expect(g.tensors.length).toBe(0);
    expect((g.metadata.get("tokenizer.ggml.merges") as string[])[0]).toBe("Ġ t");
    expect(() => loadGguf(VOCAB_GGUF)).toThrow(/ggml-vocab-gpt-2\.gguf: tensor 'token_embd\.weight': missing/);
  });
});

describe("GGUF: write -> read", () => {
  it("round-trips f32 bit-exactly, with the config", () => {
    const s = scratch();
    try {
      const a = syntheticModel(LLAMA);
      writeGguf(join(s.dir, "m.gguf"), a);
      const b = loadGguf(join(s.dir, "m.gguf"));
      expect(sameTensors(a, b)).toEqual([]);
      expect(b.config).toEqual({ ...LLAMA, normEps: Math.fround(1e-5) });
      expect(readGguf(join(s.dir, "m.gguf")).metadata.get("general.file_type")).toBe(0);
    } finally {
      s.done();
    }
  });

  it("round-trips a GPT-2 (gpt2.* keys, biases, fused qkv) bit-exactly", () => {
    const s = scratch();
    try {
      const gpt2: Gpt2Config = { arch: "gpt2", dim: 32, nLayers: 2, nHeads: 4, vocabSize: 50, maxSeqLen: 16, normEps: 1e-5 };
      const a = syntheticModel(gpt2);
      writeGguf(join(s.dir, "g.gguf"), a);
      const b = loadGguf(join(s.dir, "g.gguf"));
      expect(sameTensors(a, b)).toEqual([]);
      expect(b.config).toEqual({ ...gpt2, normEps: Math.fround(1e-5) });
      expect(readGguf(join(s.dir, "g.gguf")).metadata.get("gpt2.feed_forward_length")).toBe(128);
    } finally {
      s.done();
    }
  });

  it("f16 rounds 2-D tensors to f16 and keeps 1-D tensors f32; q8_0 stays within half a step", () => {
    const s = scratch();
    try {
      const a = syntheticModel({ ...LLAMA, tiedEmbeddings: true });
      writeGguf(join(s.dir, "h.gguf"), a, { types: "f16" });
      writeGguf(join(s.dir, "q.gguf"), a, { types: "q8_0" });
      const h = loadGguf(join(s.dir, "h.gguf"));
      const q = loadGguf(join(s.dir, "q.gguf"));
      expect(h.config.arch === "llama" && h.config.tiedEmbeddings).toBe(true);
      expect(h.tensors.get("blk.0.attn_norm.weight")!.stored).toBe("f32");
      expect(q.tensors.get("blk.0.attn_q.weight")!.stored).toBe("q8_0");
      // hidden 96 is a multiple of 32: ffn_down rows (96 long) quantize too.
      expect(q.tensors.get("blk.0.ffn_down.weight")!.stored).toBe("q8_0");
      const x = a.tensors.get("blk.1.attn_q.weight")!.read().data;
      const xh = h.tensors.get("blk.1.attn_q.weight")!.read().data;
      const xq = q.tensors.get("blk.1.attn_q.weight")!.read().data;
      for (let i = 0; i < x.length; i++) {
        expect(xh[i]).toBe(f16BitsToF32(f32ToF16Bits(x[i]!)));
        expect(Math.abs(xq[i]! - x[i]!)).toBeLessThanOrEqual(0.5 * (1 / 127) * 1.01 + 1e-3);
      }
    } finally {
      s.done();
    }
  });

  it("keeps metadata of all 13 value types, and reads the same file as GGUF v2", () => {
    const s = scratch();
    try {
      const meta = new Map<string, MetaValue>([
        ["t.u8", 200], ["t.i8", -100], ["t.u16", 60000], ["t.i16", -30000], ["t.u32", 4000000000], ["t.i32", -2000000000],
        ["t.f32", 0.5], ["t.bool", true], ["t.string", "héllo ▁ wörld"], ["t.u64", 2n ** 60n], ["t.i64", -(2n ** 62n)],
        ["t.f64", 0.1], ["t.small_u64", 7], ["t.strings", ["a", "", "ü"]], ["t.f32s", Float32Array.from([1.5, -2])],
        ["t.i32s", Int32Array.from([-1, 2])], ["t.nested", [["x", "y"], ["z"]]], ["t.bools", [true, false]],
      ]);
      const types = new Map([["t.u8", "u8"], ["t.i8", "i8"], ["t.u16", "u16"], ["t.i16", "i16"], ["t.f64", "f64"], ["t.small_u64", "u64"]] as const);
      const p = join(s.dir, "meta.gguf");
      writeGguf(p, syntheticModel(LLAMA), { tokenizerMetadata: meta, metadataTypes: new Map(types) });
      const check = (path: string, version: number): void => {
        const g = readGguf(path);
        expect(g.version).toBe(version);
        for (const [k, v] of meta) expect(g.metadata.get(k), k).toEqual(v);
        expect(Object.fromEntries([...g.metadataTypes].filter(([k]) => k.startsWith("t.")))).toEqual({
          "t.u8": "u8", "t.i8": "i8", "t.u16": "u16", "t.i16": "i16", "t.u32": "u32", "t.i32": "i32", "t.f32": "f32",
          "t.bool": "bool", "t.string": "string", "t.u64": "u64", "t.i64": "i64", "t.f64": "f64", "t.small_u64": "u64",
          "t.strings": "string[]", "t.f32s": "f32[]", "t.i32s": "i32[]", "t.nested": "array[]", "t.bools": "bool[]",
        });
      };
      check(p, 3);
      const bytes = new Uint8Array(readFileSync(p));
      bytes[4] = 2; // v2 differs from v3 only in allowing big-endian files
      writeFileSync(join(s.dir, "v2.gguf"), bytes);
      check(join(s.dir, "v2.gguf"), 2);
    } finally {
      s.done();
    }
  });
});

describe("GGUF: Llama 3.1 RoPE scaling as rope_freqs.weight", () => {
  const scaled: LlamaConfig = {
    ...LLAMA, ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
  };

  it("writes llama.cpp's per-frequency factors and reads the parameters back", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "l3.gguf");
      writeGguf(p, syntheticModel(scaled));
      const g = readGguf(p);
      const info = g.tensors.find((t) => t.name === "rope_freqs.weight")!;
      expect(info.shape).toEqual([8]);
      // head size 16, theta 500000: wavelengths 2 pi theta^(2i/16); below 2048 -> 1, above 8192 -> 8, between: smoothed.
      const f = readGgufTensor(p, info);
      expect(f[0]).toBe(1);
      expect(f[7]).toBe(8);
      const m = loadGguf(p);
      expect(m.config).toEqual({ ...scaled, normEps: Math.fround(1e-5) });
      expect(m.tensors.has("rope_freqs.weight")).toBe(false);
      expect(g.metadata.has("llama.rope.scaling.type")).toBe(false);
    } finally {
      s.done();
    }
  });

  it("recovers the parameters from the factors alone, and refuses factors that do not follow the rule", () => {
    const f = llama3RopeFactors({ type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }, 64, 500000);
    expect(llama3FromRopeFactors(f, 64, 500000, "x.gguf")).toEqual({ type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    const bad = f.map((v, i) => (i === 16 ? v * 1.5 : v));
    expect(() => llama3FromRopeFactors(bad, 64, 500000, "x.gguf")).toThrow(/x\.gguf: tensor 'rope_freqs\.weight': the factors do not follow Llama 3's scaling rule/);
  });
});

/** A minimal GGUF by hand: the given metadata strings and one tensor info (8 floats of data follow). */
function handmade(opts: { arch?: string; tensorType?: number; dims?: number[]; magic?: string }): Uint8Array {
  const parts: number[] = [];
  const u32 = (v: number) => parts.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24);
  const u64 = (v: number) => (u32(v), u32(0));
  const str = (s: string) => (u64(s.length), parts.push(...Buffer.from(s)));
  parts.push(...Buffer.from(opts.magic ?? "GGUF"));
  u32(3);
  u64(1); // tensors
  u64(1); // metadata
  str("general.architecture");
  u32(8);
  str(opts.arch ?? "llama");
  str("w");
  const dims = opts.dims ?? [8];
  u32(dims.length);
  dims.forEach(u64);
  u32(opts.tensorType ?? 0);
  u64(0);
  while (parts.length % 32) parts.push(0);
  for (let i = 0; i < 32; i++) parts.push(0);
  return Uint8Array.from(parts);
}

describe("GGUF: bad files give errors that name the file and the field", () => {
  const at = (name: string, bytes: Uint8Array, fn: (p: string) => unknown): (() => unknown) => () => {
    const s = scratch();
    try {
      writeFileSync(join(s.dir, name), bytes);
      return fn(join(s.dir, name));
    } finally {
      s.done();
    }
  };

  it("wrong magic", () => {
    expect(at("m.gguf", handmade({ magic: "GGML" }), readGguf)).toThrow(/m\.gguf: magic: expected "GGUF", found "GGML"/);
  });

  it("unknown and unsupported tensor types name the tensor and the type id", () => {
    expect(at("t.gguf", handmade({ tensorType: 3 }), readGguf)).toThrow(/t\.gguf: tensor 'w' type: tensor type Q4_1 \(id 3\) is not supported/);
    expect(at("t.gguf", handmade({ tensorType: 99 }), readGguf)).toThrow(/t\.gguf: tensor 'w' type: unknown tensor type id 99/);
  });

  it("unknown architecture lists the known ones", () => {
    expect(at("a.gguf", handmade({ arch: "mamba" }), loadGguf)).toThrow(/a\.gguf: metadata 'general\.architecture': unknown architecture 'mamba' \(known: llama, gpt2\)/);
    expect(at("a.gguf", handmade({}), loadGguf)).toThrow(/a\.gguf: metadata 'llama\.embedding_length': missing/);
  });

  it("tensor data past the end of the file", () => {
    expect(at("d.gguf", handmade({ dims: [8, 4] }), readGguf)).toThrow(/d\.gguf: tensor 'w' data: bytes \d+\.\.\d+ run past the end of the file/);
  });

  it("truncated anywhere: in the header, in the metadata, in the tensor data", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "cut.gguf");
      writeGguf(p, syntheticModel(LLAMA));
      const full = readGguf(p);
      for (const size of [2, 20, 60, full.dataOffset - 10, full.dataOffset + 100]) {
        writeGguf(p, syntheticModel(LLAMA));
        truncateSync(p, size);
        expect(() => readGguf(p), `cut at ${size}`).toThrow(/cut\.gguf: .*(truncated|too short|past the end)/);
      }
    } finally {
      s.done();
    }
  });

  it("a shape that contradicts the config", () => {
    const s = scratch();
    try {
      const m = syntheticModel(LLAMA);
      const tensors = new Map(m.tensors);
      tensors.set("blk.1.attn_k.weight", m.tensors.get("blk.1.attn_q.weight")!);
      writeGguf(join(s.dir, "s.gguf"), { ...m, tensors });
      expect(() => loadGguf(join(s.dir, "s.gguf"))).toThrow(/s\.gguf: tensor 'blk\.1\.attn_k\.weight' shape: \[64, 64\] contradicts the config, which implies \[32, 64\]/);
    } finally {
      s.done();
    }
  });
});
