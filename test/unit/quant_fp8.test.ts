// kiln's FP8 weight blocks (fp8e4m3_b128: f32 scale + 128 OCP E4M3 codes): the encoder's codes for values
// worked out by hand from the E4M3 format (bias 7, 3 mantissa bits, max 448, ties to even, saturation),
// the block layout, and a hand-built block through the cpu matmul_q kernel (GEMV and GEMM).

import { describe, expect, it } from "vitest";
import { getBackend, tensor } from "../../src/index.js";
import { e4m3Code, encodeFp8Blocks } from "../../src/models/formats/fp8_blocks.js";
import { matmulQuantized, quantizedTensor } from "../../src/tensor/quant.js";

const cpu = await getBackend("cpu");

describe("fp8e4m3_b128", () => {
  it("E4M3 codes: normals, subnormals, ties to even, saturation, sign", () => {
    expect(e4m3Code(1)).toBe(0x38); // e = 7, m = 0
    expect(e4m3Code(448)).toBe(0x7e); // e = 15, m = 6: the largest finite
    expect(e4m3Code(1000)).toBe(0x7e); // saturates
    expect(e4m3Code(2 ** -9)).toBe(0x01); // smallest subnormal
    expect(e4m3Code(-2)).toBe(0xc0);
    expect(e4m3Code(1.0625)).toBe(0x38); // halfway between 1 (0x38) and 1.125 (0x39): the even code
    expect(e4m3Code(1.1875)).toBe(0x3a); // halfway between 1.125 (0x39) and 1.25 (0x3a)
    expect(e4m3Code(0)).toBe(0x00);
  });

  it("a row is blocks of an f32 scale (amax / 448) and 128 codes", () => {
    const x = Float32Array.from({ length: 256 }, (_, j) => (j === 5 ? -896 : j === 200 ? 2 : 0));
    const b = encodeFp8Blocks(x, 1, 256);
    expect(b.length).toBe(2 * 132);
    const dv = new DataView(b.buffer);
    expect(dv.getFloat32(0, true)).toBe(2); // 896 / 448
    expect(dv.getFloat32(132, true)).toBe(2); // the row's scale, repeated per block
    expect(b[4 + 5]).toBe(0xfe); // -448
    expect(b[132 + 4 + 72]).toBe(0x38); // 2 / 2 = 1
    expect(() => encodeFp8Blocks(new Float32Array(100), 1, 100)).toThrow(/rows must be whole 128-element fp8e4m3_b128 blocks/);
  });

  it("a hand-built block through the cpu kernel: w = scale * e4m3(code)", async () => {
    // Codes c = j (0..127): e = j >> 3, m = j & 7; value (8 + m) 2^(e - 10), or m 2^-9 when e = 0. Code 0x7f is NaN: use 0x7e.
    const codes = Array.from({ length: 128 }, (_, j) => (j === 127 ? 0x7e : j) | (j % 3 === 0 && j > 0 ? 0x80 : 0)); // NOTE: not -0 (a sum gives +0)
    const value = (c: number): number => {
      const e = (c >> 3) & 15, m = c & 7;
      const mag = e === 0 ? m * 2 ** -9 : (8 + m) * 2 ** (e - 10);
      return c & 0x80 ? -mag : mag;
    };
    const b = new Uint8Array(132);
    new DataView(b.buffer).setFloat32(0, 0.25, true);
    b.set(codes, 4);
    const w = quantizedTensor(b, [1, 128], "fp8e4m3_b128", cpu);
    const want = codes.map((c) => 0.25 * value(c));
    const eye = new Float32Array(128 * 128);
    for (let i = 0; i < 128; i++) eye[i * 128 + i] = 1;
    expect(Array.from(await matmulQuantized(tensor(eye, { backend: cpu, shape: [128, 128] }), w).data() as Float32Array)).toEqual(want);
    for (const j of [0, 1, 8, 64, 126, 127]) {
      const x = new Float32Array(128);
      x[j] = 1;
      expect((await matmulQuantized(tensor(x, { backend: cpu, shape: [1, 128] }), w).data() as Float32Array)[0], `code ${j}`).toBe(want[j]);
    }
  });
});
