// Q4_K (GGUF type 12) end to end: a block built by hand from the layout spec (ggml-common.h block_q4_K),
// decoded by the in-place matmul_q kernel on cpu (GEMM and GEMV paths) against values worked out from the
// spec; kiln's writer (quantize_row_q4_K_ref) checked by what its blocks decode to; a Q4_K GGUF model kept
// quantized at load (resident bytes near the file's tensor bytes, greedy tokens equal to the same file
// dequantized to f32); and bad input. The bytes-equal-llama.cpp check is bench/peers/q4k_interop.ts.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Backend } from "../../src/index.js";
import { argmax, getBackend, tensor } from "../../src/index.js";
import { memoryAccountant, trackMemory } from "../../src/core/memory.js";
import { fromLoaded } from "../../src/models/index.js";
import { loadModel, writeGguf } from "../../src/models/formats/index.js";
import { dequantize, encodeQ4_0 } from "../../src/models/formats/dequant.js";
import { encodeQ4K } from "../../src/models/formats/encode_q4k.js";
import { GGML_TYPES } from "../../src/models/formats/ggml_types.js";
import type { GgmlTypeName } from "../../src/models/formats/ggml_types.js";
import { randomLoadedModel } from "../../src/models/random_weights.js";
import type { LlamaConfig, LoadedModel } from "../../src/models/types.js";
import { matmulQuantized, quantizedTensor } from "../../src/tensor/quant.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-q4k-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cpu = await getBackend("cpu");

// One block: d = 0.5, dmin = 0.25, sub-block scales SC and mins MN (6-bit), nibble of element e Q(e).
const SC = [1, 2, 63, 17, 33, 48, 5, 60];
const MN = [0, 3, 7, 63, 40, 16, 1, 31];
const Q = (e: number): number => (e * 7 + 3) % 16;
// NOTE: the 12 scale bytes worked out by hand from the layout (not by an encoder): bytes 0-3 hold SC[0..3]
// in their low 6 bits and the top 2 bits of SC[4..7]; bytes 4-7 the same for the mins; bytes 8-11 the low
// nibbles of SC[4..7] (low) and MN[4..7] (high).
const SCALE_BYTES = [0x81, 0xc2, 0x3f, 0xd1, 0x80, 0x43, 0x07, 0x7f, 0x81, 0x00, 0x15, 0xfc];

function handBlock(): Uint8Array {
  const b = new Uint8Array(144);
  b.set([0x00, 0x38, 0x00, 0x34], 0); // f16 0.5, f16 0.25
  b.set(SCALE_BYTES, 4);
  // Element e = 64c + r: the low nibble of qs[32c + r] when r < 32, else the high nibble of qs[32c + r - 32].
  for (let e = 0; e < 256; e++) {
    const c = e >> 6, r = e & 63;
    b[16 + 32 * c + (r & 31)]! |= Q(e) << (r < 32 ? 0 : 4);
  }
  return b;
}
const handValue = (e: number): number => 0.5 * SC[e >> 5]! * Q(e) - 0.25 * MN[e >> 5]!;

const rmse = (a: Float32Array, b: Float32Array): number => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0) / a.length);

function lcg(seed: number): () => number {
  let x = seed;
  return () => ((x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff);
}

describe("Q4_K", () => {
  it("a hand-built block: the cpu matmul_q kernel (GEMM and GEMV) gives the values the layout spec says", async () => {
    const w = quantizedTensor(handBlock(), [1, 256], "q4_k", cpu);
    const want = Array.from({ length: 256 }, (_, e) => handValue(e));
    expect(Array.from(dequantize("q4_k", handBlock(), 256))).toEqual(want);
    // GEMM: x = the 256 x 256 identity, so out[i] = w[i].
    const eye = new Float32Array(256 * 256);
    for (let i = 0; i < 256; i++) eye[i * 256 + i] = 1;
    const gemm = await matmulQuantized(tensor(eye, { backend: cpu, shape: [256, 256] }), w).data() as Float32Array;
    expect(Array.from(gemm)).toEqual(want);
    // GEMV: one-hot rows of x, one per sub-block, and a row of ones (the sum of the block).
    for (const e of [0, 31, 32, 100, 130, 191, 200, 255]) {
      const x = new Float32Array(256);
      x[e] = 1;
      expect((await matmulQuantized(tensor(x, { backend: cpu, shape: [1, 256] }), w).data() as Float32Array)[0], `element ${e}`).toBe(want[e]);
    }
    const ones = await matmulQuantized(tensor(new Float32Array(256).fill(1), { backend: cpu, shape: [1, 256] }), w).data() as Float32Array;
    expect(ones[0]).toBeCloseTo(want.reduce((a, v) => a + v, 0), 3);
  });

  it("the writer: blocks decode close to the input, and beat Q4_0 on weights with an offset (what the mins are for)", () => {
    const r = lcg(5);
    const sym = Float32Array.from({ length: 256 * 16 }, () => r() * 2 - 1);
    const off = Float32Array.from({ length: 256 * 16 }, () => 0.5 + r());
    for (const x of [sym, off]) {
      const y = dequantize("q4_k", encodeQ4K(x), x.length);
      // 16 levels over a sub-block's range of about 1: a step near 1/15, so an rmse near step / sqrt(12).
      expect(rmse(x, y)).toBeLessThan(0.045);
      expect(rmse(x, y)).toBeGreaterThan(0.005);
    }
    const k = rmse(off, dequantize("q4_k", encodeQ4K(off), off.length));
    const z = rmse(off, dequantize("q4_0", encodeQ4_0(off), off.length));
    expect(k).toBeLessThan(0.6 * z);
    // A block of zeros stays zeros; d and dmin are f16 zeros.
    const zeros = encodeQ4K(new Float32Array(256));
    expect(Array.from(dequantize("q4_k", zeros, 256)).every((v) => v === 0)).toBe(true);
  });

  it("the writer reproduces a block that is exactly on its grid", () => {
    // Each sub-block: 16 levels of 1/8 from -1 (min 1, scale 1/8): d = (1/8)/63 and dmin = 1/63 round in
    // f16, so the decoded values are within an f16 rounding of the input, and every level is used.
    const x = Float32Array.from({ length: 256 }, (_, e) => -1 + Q(e) / 8);
    const b = encodeQ4K(x);
    const y = dequantize("q4_k", b, 256);
    for (let e = 0; e < 256; e++) expect(Math.abs(y[e]! - x[e]!), `element ${e}`).toBeLessThan(2e-3);
    for (let e = 0; e < 256; e++) expect((b[16 + 32 * (e >> 6) + (e & 31)]! >> ((e & 63) < 32 ? 0 : 4)) & 15).toBe(Q(e));
  });

  it("bad input: a row that is not whole 256-element super-blocks, and an encoder input of the wrong length", () => {
    expect(() => quantizedTensor(new Uint8Array(144), [2, 128], "q4_k", cpu, "blk.0.attn_q.weight"))
      .toThrow(/blk\.0\.attn_q\.weight: a row of 128 elements is not a whole number of q4_k blocks \(256 elements each\)/);
    expect(() => quantizedTensor(new Uint8Array(143), [1, 256], "q4_k", cpu, "w")).toThrow(/w: 143 bytes of q4_k blocks for shape \(1, 256\); that shape needs 144/);
    expect(() => encodeQ4K(new Float32Array(100))).toThrow(/100 elements is not a whole number of 256-element Q4_K blocks/);
  });
});

/** Greedy continuation of `prompt` for `steps` tokens. */
async function greedy(loaded: LoadedModel, backend: Backend, prompt: number[], steps: number, keepQuantized: boolean): Promise<number[]> {
  const m = fromLoaded(loaded, backend, { keepQuantized, contextLength: prompt.length + steps });
  const pick = async (logits: Float32Array) => (await argmax(tensor(logits, { backend })).item());
  const out: number[] = [];
  let next = await pick(await m.forwardPrefill(prompt));
  for (let i = 0; i < steps; i++) {
    out.push(next);
    if (i + 1 < steps) next = await pick(await m.decodeStep(next));
  }
  m.dispose();
  return out;
}

describe("a Q4_K GGUF model", () => {
  // NOTE: every matrix dimension a multiple of 256, so every 2-D tensor is stored as Q4_K.
  const config: LlamaConfig = {
    arch: "llama", dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 64, vocabSize: 256,
    maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false,
  };
  const path = join(dir, "r_q4_k.gguf");
  writeGguf(path, randomLoadedModel(config, 4), { types: "q4_k" });

  it("is written as Q4_K, kept quantized at load: resident bytes within 10% of the file's tensor bytes", () => {
    const loaded = loadModel(path);
    expect(loaded.tensors.get("blk.0.ffn_down.weight")!.stored).toBe("q4_k");
    expect(loaded.tensors.get("token_embd.weight")!.stored).toBe("q4_k");
    let fileBytes = 0;
    for (const e of loaded.tensors.values()) {
      const t = GGML_TYPES[e.stored as GgmlTypeName];
      fileBytes += (e.shape.reduce((a, b) => a * b, 1) / t.blockElems) * t.blockBytes;
    }
    const resident = (keepQuantized: boolean): number => {
      const backend = trackMemory(cpu);
      fromLoaded(loaded, backend, { keepQuantized, contextLength: 8 });
      return memoryAccountant(backend)!.snapshot().liveTotal;
    };
    const q = resident(true), f = resident(false);
    expect(Math.abs(q - fileBytes) / fileBytes).toBeLessThan(0.1);
    expect(f / fileBytes).toBeGreaterThan(6);
    console.log(`q4_k: file tensors ${fileBytes} B, resident quantized ${q} B (${(q / fileBytes).toFixed(3)}x), dequantized f32 ${f} B (${(f / fileBytes).toFixed(2)}x)`);
  }, 30_000);

  it("greedy tokens kept quantized equal the same file dequantized to f32", async () => {
    const loaded = loadModel(path);
    const prompt = [1, 17, 99, 3, 250];
    expect(await greedy(loaded, cpu, prompt, 16, true)).toEqual(await greedy(loaded, cpu, prompt, 16, false));
  }, 60_000);

  it("a matrix whose rows are whole 32s but not 256s is written as Q8_0 (llama.cpp falls back too)", () => {
    const small: LlamaConfig = { ...config, dim: 64, hiddenDim: 96, nHeads: 2, nKvHeads: 2, headDim: 32, vocabSize: 64 };
    const p = join(dir, "small_q4_k.gguf");
    writeGguf(p, randomLoadedModel(small, 1), { types: "q4_k" });
    const loaded = loadModel(p);
    expect(loaded.tensors.get("blk.0.attn_q.weight")!.stored).toBe("q8_0");
    expect(loaded.tensors.get("blk.0.ffn_down.weight")!.stored).toBe("q8_0");
  });
});
