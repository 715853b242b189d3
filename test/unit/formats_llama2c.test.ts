// llama2.c checkpoints: the bundled stories260K (shapes from its header), a synthetic checkpoint with
// a separate classifier, and the errors for truncated and malformed files.

import { copyFileSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readLlama2c, readLlama2cHeader } from "../../src/models/formats/llama2c.js";
import { scratch, STORIES260K_BIN, values } from "./formats_helpers.js";

const STORIES = STORIES260K_BIN;

describe("llama2.c: stories260K", () => {
  it("maps the header to the config and every weight to a GGUF name and shape", () => {
    const m = readLlama2c(STORIES);
    expect(m.config).toEqual({
      arch: "llama", dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, vocabSize: 512,
      maxSeqLen: 512, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true,
    });
    expect(m.tensors.size).toBe(1 + 5 * 9 + 1);
    expect(m.tensors.get("token_embd.weight")!.shape).toEqual([512, 64]);
    expect(m.tensors.get("blk.4.attn_k.weight")!.shape).toEqual([32, 64]);
    expect(m.tensors.get("blk.0.ffn_gate.weight")!.shape).toEqual([172, 64]);
    expect(m.tensors.get("blk.0.ffn_down.weight")!.shape).toEqual([64, 172]);
    expect(m.tensors.has("output.weight")).toBe(false);
  });

  it("reads each tensor at its file offset", () => {
    const m = readLlama2c(STORIES);
    const file = new Float32Array(new Uint8Array(readFileSync(STORIES)).buffer.slice(28));
    expect(m.tensors.get("token_embd.weight")!.read().data[0]).toBe(file[0]);
    // rms_att of layer 1 starts after the embedding and layer 0's rms_att.
    expect(m.tensors.get("blk.1.attn_norm.weight")!.read().data[0]).toBe(file[512 * 64 + 64]);
    // rms_final is just before the 2 x 512 x 4 freq_cis floats at the end.
    const final = m.tensors.get("output_norm.weight")!.read().data;
    expect(final[63]).toBe(file[file.length - 4096 - 1]);
  });

  it("names the file and the header when the file is truncated", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "cut.bin");
      copyFileSync(STORIES, p);
      truncateSync(p, 1000);
      expect(() => readLlama2c(p)).toThrow(/cut\.bin: file length: 1000 bytes, but the header \(dim 64, .*\) implies 1056540 \(truncated\?\)/);
      truncateSync(p, 10);
      expect(() => readLlama2c(p)).toThrow(/cut\.bin: header: file is 10 bytes/);
    } finally {
      s.done();
    }
  });
});

/** A llama2.c file for dim 8, hidden 16, 2 layers, 2 heads (head size 4), 1 kv head, vocab 10, seq 4: freq_cis is 2 x 4 x 2 floats. */
function tinyCheckpoint(shared: boolean): { bytes: Uint8Array; floats: Float32Array } {
  const [dim, hidden, L, kv, vocab, seq] = [8, 16, 2, 4, 10, 4];
  const n = vocab * dim + L * (dim + dim * dim + 2 * kv * dim + dim * dim + dim + 3 * hidden * dim) + dim + seq * 4 + (shared ? 0 : vocab * dim);
  const header = new Int32Array([dim, hidden, L, 2, 1, shared ? vocab : -vocab, seq]);
  const floats = values(n, 7);
  const bytes = new Uint8Array(28 + 4 * n);
  bytes.set(new Uint8Array(header.buffer));
  bytes.set(new Uint8Array(floats.buffer), 28);
  return { bytes, floats };
}

describe("llama2.c: synthetic checkpoints", () => {
  it("reads a separate classifier (negative vocab_size) from the end of the file", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "sep.bin");
      const { bytes, floats } = tinyCheckpoint(false);
      writeFileSync(p, bytes);
      const m = readLlama2c(p);
      expect(m.config).toMatchObject({ vocabSize: 10, nKvHeads: 1, headDim: 4, tiedEmbeddings: false });
      const out = m.tensors.get("output.weight")!;
      expect(out.shape).toEqual([10, 8]);
      expect(Array.from(out.read().data)).toEqual(Array.from(floats.subarray(floats.length - 80)));
      expect(m.tensors.get("blk.1.attn_k.weight")!.shape).toEqual([4, 8]);
    } finally {
      s.done();
    }
  });

  it("rejects a wrong size, an implausible header and the ak42 export", () => {
    const s = scratch();
    try {
      const p = join(s.dir, "x.bin");
      const { bytes } = tinyCheckpoint(true);
      writeFileSync(p, bytes.subarray(0, bytes.length - 4));
      expect(() => readLlama2cHeader(p)).toThrow(/x\.bin: file length: .* shared classifier/);
      const bad = bytes.slice();
      new Int32Array(bad.buffer, 0, 7)[3] = 3; // n_heads 3 does not divide dim 8
      writeFileSync(p, bad);
      expect(() => readLlama2cHeader(p)).toThrow(/x\.bin: header n_heads: dim 8 is not divisible by n_heads 3/);
      new Int32Array(bad.buffer, 0, 7)[0] = -5;
      writeFileSync(p, bad);
      expect(() => readLlama2cHeader(p)).toThrow(/x\.bin: header dim: -5 is not a plausible size/);
      new Int32Array(bad.buffer, 0, 7)[0] = 0x616b3432;
      writeFileSync(p, bad);
      expect(() => readLlama2cHeader(p)).toThrow(/x\.bin: magic: llama2\.c export version 1\/2/);
    } finally {
      s.done();
    }
  });
});
