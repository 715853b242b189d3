// e4m3.ts: the FP8 E4M3 code table, shared by the fp8 block writer/reader (src/models/formats/fp8_blocks.ts)
// and the cpu fp8 matmul (src/backends/cpu/matmul_fp8.ts), which may import only core.

/** The 256 E4M3 codes as f32 (bias 7, subnormals below 2^-6; 0x7f / 0xff are NaN). */
export const E4M3_VALUES: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let c = 0; c < 256; c++) {
    const e = (c >> 3) & 15, m = c & 7;
    const mag = e === 0 ? m * 2 ** -9 : (8 + m) * 2 ** (e - 10);
    t[c] = (c & 0x7f) === 0x7f ? NaN : c & 0x80 ? -mag : mag;
  }
  return t;
})();
