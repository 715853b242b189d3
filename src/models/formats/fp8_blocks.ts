// fp8_blocks.ts: kiln's FP8 weight blocks (format fp8e4m3_b128 in core/dtype.ts): 128 OCP E4M3 ("fn")
// values after one f32 scale, 132 bytes; w = scale * e4m3(q). GGUF has no FP8 type and llama.cpp reads
// none, so this is kiln's own layout. NOTE why blocks and not one scale per row: a block is what every
// matmul_q kernel walks, so FP8 needs no second operand, and a per-tensor or per-row scale (safetensors
// FP8 checkpoints' weight_scale) is this layout with the scale repeated: 4 bytes per 128 weights (3%).
// 132 bytes is 33 words, so blocks stay word-aligned for the WGSL kernel.
// It owns the encoder (f32 -> blocks, one scale per row) and the host decoder (the reference).

import { E4M3_VALUES } from "../../core/e4m3.js";

const fr = Math.fround;
export const FP8_BLOCK_ELEMS = 128;
export const FP8_BLOCK_BYTES = 132;
export const E4M3_MAX = 448;


/** The E4M3 code nearest to v (ties to the even code), magnitudes above 448 saturated to it. */
export function e4m3Code(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(v), E4M3_MAX);
  // Positive codes 0..126 are increasing: find the last one <= a, then pick the nearer of it and the next.
  let lo = 0, hi = 126;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (E4M3_VALUES[mid]! <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo < 126) {
    const down = a - E4M3_VALUES[lo]!, up = E4M3_VALUES[lo + 1]! - a;
    if (up < down || (up === down && lo & 1)) lo++;
  }
  return sign | lo;
}

/**
 * x (rows, cols) as FP8 blocks with one scale per row, amax / 448 (the per-channel recipe; a per-tensor
 * scale is the same blocks with one value). cols must be a multiple of 128. `scales` overrides the scales.
 */
export function encodeFp8Blocks(x: Float32Array, rows: number, cols: number, scales?: ArrayLike<number>): Uint8Array {
  if (cols % FP8_BLOCK_ELEMS !== 0 || x.length !== rows * cols) {
    throw new Error(`encodeFp8Blocks: ${x.length} values as (${rows}, ${cols}): rows must be whole ${FP8_BLOCK_ELEMS}-element fp8e4m3_b128 blocks`);
  }
  const nb = cols / FP8_BLOCK_ELEMS;
  const out = new Uint8Array(rows * nb * FP8_BLOCK_BYTES);
  const dv = new DataView(out.buffer);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let j = 0; j < cols; j++) amax = Math.max(amax, Math.abs(x[r * cols + j]!));
    const scale = fr(scales ? scales[r]! : amax / E4M3_MAX);
    const inv = scale ? 1 / scale : 0;
    for (let b = 0; b < nb; b++) {
      const o = (r * nb + b) * FP8_BLOCK_BYTES;
      dv.setFloat32(o, scale, true);
      for (let j = 0; j < FP8_BLOCK_ELEMS; j++) out[o + 4 + j] = e4m3Code(x[r * cols + b * FP8_BLOCK_ELEMS + j]! * inv);
    }
  }
  return out;
}

/** The f32 values of `n` weights in FP8 blocks: fround(scale * e4m3(q)). */
export function dequantFp8Blocks(bytes: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0, o = 0; b * FP8_BLOCK_ELEMS < n; b++, o += FP8_BLOCK_BYTES) {
    const s = dv.getFloat32(o, true);
    for (let j = 0; j < FP8_BLOCK_ELEMS; j++) y[b * FP8_BLOCK_ELEMS + j] = fr(s * E4M3_VALUES[bytes[o + 4 + j]!]!);
  }
  return y;
}
