// GGML block formats: hand-built blocks with known values (packed from the format's description, not
// from the decoder), blocks of pseudo-random bytes checked against values computed by llama.cpp's
// gguf-py (gguf 0.19.0, gguf.quants.dequantize), and the Q8_0 / F16 encoders the writer uses.

import { describe, expect, it } from "vitest";
import { f32ToBf16Bits, f32ToF16Bits } from "../../src/core/dtype.js";
import { dequantize, encodeF16, encodeQ8_0 } from "../../src/models/formats/dequant.js";

const ONE = 0x3c00, HALF = 0x3800, QUARTER = 0x3400; // f16 bits of 1, 0.5, 0.25

function putF16(b: Uint8Array, at: number, bits: number): void {
  b[at] = bits & 0xff;
  b[at + 1] = bits >> 8;
}

describe("dequantize: hand-built blocks", () => {
  it("Q8_0: y = q * d", () => {
    const b = new Uint8Array(34);
    putF16(b, 0, HALF);
    for (let j = 0; j < 32; j++) b[2 + j] = (j * 9 - 128) & 0xff; // -128 .. 151 -> wraps to signed
    const y = dequantize("q8_0", b, 32);
    for (let j = 0; j < 32; j++) expect(y[j]).toBe((((j * 9 - 128) << 24) >> 24) * 0.5);
  });

  it("Q4_0: low nibbles are elements 0..15, high nibbles 16..31, y = (q - 8) * d", () => {
    const b = new Uint8Array(18);
    putF16(b, 0, QUARTER);
    for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
    const y = dequantize("q4_0", b, 32);
    for (let j = 0; j < 16; j++) {
      expect(y[j]).toBe((j - 8) * 0.25);
      expect(y[j + 16]).toBe((15 - j - 8) * 0.25);
    }
  });

  it("Q4_K: eight sub-blocks of 32 with 6-bit scales and mins, y = d * sc * q - dmin * m", () => {
    const sc = [1, 2, 3, 63, 10, 33, 47, 17];
    const mn = [0, 5, 63, 1, 20, 40, 2, 31];
    const q = (e: number): number => (e * 5 + (e >> 5)) % 16;
    const b = new Uint8Array(144);
    putF16(b, 0, ONE);
    putF16(b, 2, HALF);
    // 12 scale bytes: sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks
    // 4..7 split: low 4 bits in bytes 8..11 (scale low nibble, min high nibble), high 2 bits in the top of bytes 0..7.
    for (let j = 0; j < 4; j++) {
      b[4 + j] = sc[j]! | ((sc[j + 4]! >> 4) << 6);
      b[4 + j + 4] = mn[j]! | ((mn[j + 4]! >> 4) << 6);
      b[4 + j + 8] = (sc[j + 4]! & 0xf) | ((mn[j + 4]! & 0xf) << 4);
    }
    // qs: each 32 bytes hold two sub-blocks: elements 64g + l in the low nibbles, 64g + 32 + l in the high ones.
    for (let g = 0; g < 4; g++) for (let l = 0; l < 32; l++) b[16 + 32 * g + l] = q(64 * g + l) | (q(64 * g + 32 + l) << 4);
    const y = dequantize("q4_k", b, 256);
    for (let e = 0; e < 256; e++) expect(y[e], `element ${e}`).toBe(sc[e >> 5]! * q(e) - 0.5 * mn[e >> 5]!);
  });

  it("Q6_K: sixteen sub-blocks of 16 with signed 8-bit scales, y = d * sc * (q - 32)", () => {
    const sc = Array.from({ length: 16 }, (_, k) => (k % 2 ? -1 : 1) * (k * 7 + 1)); // signed, up to 106
    const q = (e: number): number => (e * 7 + 3) % 64;
    const b = new Uint8Array(210);
    // ql (128 bytes), qh (64), scales (16), d: per half n of 128 elements, element 128n + 32k + l has its
    // low 4 bits in ql[64n + l + 32(k & 1)] (low nibble for k < 2, high for k >= 2) and its top 2 bits
    // in qh[32n + l] at bit 2k.
    for (let n = 0; n < 2; n++) {
      for (let k = 0; k < 4; k++) {
        for (let l = 0; l < 32; l++) {
          const v = q(128 * n + 32 * k + l);
          b[64 * n + l + 32 * (k & 1)]! |= (v & 0xf) << (k >= 2 ? 4 : 0);
          b[128 + 32 * n + l]! |= (v >> 4) << (2 * k);
        }
      }
    }
    for (let k = 0; k < 16; k++) b[192 + k] = sc[k]! & 0xff;
    putF16(b, 208, HALF);
    const y = dequantize("q6_k", b, 256);
    for (let e = 0; e < 256; e++) expect(y[e], `element ${e}`).toBe(0.5 * sc[e >> 4]! * (q(e) - 32));
  });

  it("F16 and BF16 widen exactly", () => {
    const xs = [0, -0, 1.5, -2.25, 65504, 2 ** -24, Infinity];
    const f16 = new Uint16Array(xs.map(f32ToF16Bits));
    const bf16 = new Uint16Array(xs.map(f32ToBf16Bits));
    expect(Array.from(dequantize("f16", new Uint8Array(f16.buffer), xs.length))).toEqual(xs);
    expect(Array.from(dequantize("bf16", new Uint8Array(bf16.buffer), 5))).toEqual([0, -0, 1.5, -2.25, 65536]);
  });
});

/** Bytes from the LCG x = (x * 1103515245 + 12345) mod 2^31, byte = (x >> 16) & 0xff (same in the Python that made the references). */
function lcgBytes(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    out[i] = (x >> 16) & 0xff;
  }
  return out;
}

// References from gguf-py's numpy dequantizers: the f64 sum of all values, and values at IDX.
const IDX = [0, 1, 15, 16, 31, 32, 63, 64, 100, 127, 128, 200, 255];
const REFS = [
  { type: "q8_0", blockBytes: 34, blocks: 8, scaleAt: [0], seed: 1, sum: -4.38201904296875,
    vals: [-12.4798583984375, 10.5145263671875, -6.3873291015625, 4.8150634765625, 8.450927734375, -4.5230712890625, 7.57122802734375, -6.49365234375, -6.1038818359375, -1.08294677734375, 2.2657470703125, 11.046875, -5.3294677734375] },
  { type: "q4_0", blockBytes: 18, blocks: 8, scaleAt: [0], seed: 2, sum: -17.52569580078125,
    vals: [0.6878662109375, -0.589599609375, -0.196533203125, 0.6878662109375, -0.7861328125, 0.393310546875, 0.29498291015625, -0.59033203125, 0.68914794921875, -0.78759765625, 0.6895751953125, -0.197265625, -0.69085693359375] },
  { type: "q4_k", blockBytes: 144, blocks: 1, scaleAt: [0, 2], seed: 3, sum: 6173.02685546875,
    vals: [5.1240234375, 16.1298828125, 6.499755859375, 2.37255859375, 17.505615234375, 7.99365234375, 33.54296875, 17.0306396484375, 26.7391357421875, 5.1204833984375, 25.632080078125, 2.706298828125, 30.35595703125] },
  { type: "q6_k", blockBytes: 210, blocks: 1, scaleAt: [208], seed: 4, sum: 997.799072265625,
    vals: [235.0537109375, -61.318359375, -51.0986328125, 61.6131591796875, -106.4227294921875, -283.597412109375, -103.966064453125, 124.8968505859375, -90.4052734375, -27.4163818359375, 163.6138916015625, -36.55517578125, -169.8046875] },
] as const;

describe("dequantize: pseudo-random blocks against gguf-py", () => {
  for (const r of REFS) {
    it(`${r.type.toUpperCase()} matches gguf.quants.dequantize`, () => {
      const b = lcgBytes(r.seed, r.blockBytes * r.blocks);
      // Scales (f16) are set to sane values: 0x2E4A (+block index) for d, 0x2A10 (+block) for Q4_K's dmin.
      for (let blk = 0; blk < r.blocks; blk++) r.scaleAt.forEach((at, k) => putF16(b, blk * r.blockBytes + at, [0x2e4a, 0x2a10][k]! + blk));
      const y = dequantize(r.type, b, r.blocks * (r.type.endsWith("k") ? 256 : 32));
      expect(IDX.map((i) => y[i])).toEqual(r.vals);
      expect(y.reduce((a, v) => a + v, 0)).toBe(r.sum);
    });
  }
});

describe("encoders", () => {
  it("Q8_0 uses d = max|x| / 127 and rounds halves away from zero", () => {
    const x = new Float32Array(32);
    x[0] = 127; // d = 1
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = -127;
    x[4] = 0.49;
    const b = encodeQ8_0(x);
    expect(b.length).toBe(34);
    expect(b[0]! | (b[1]! << 8)).toBe(ONE);
    expect(Array.from(new Int8Array(b.buffer, 2, 5))).toEqual([127, 3, -3, -127, 0]);
    expect(Array.from(dequantize("q8_0", b, 32).subarray(0, 5))).toEqual([127, 3, -3, -127, 0]);
  });

  it("Q8_0 of an all-zero block is zeros", () => {
    expect(Array.from(dequantize("q8_0", encodeQ8_0(new Float32Array(64)), 64)).every((v) => v === 0)).toBe(true);
  });

  it("F16 round-trips values that f16 holds", () => {
    const x = Float32Array.from([0.5, -3, 1024, 6.103515625e-5]);
    expect(Array.from(dequantize("f16", encodeF16(x), 4))).toEqual(Array.from(x));
  });
});
