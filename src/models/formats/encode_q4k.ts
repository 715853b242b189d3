// encode_q4k.ts: f32 -> GGUF Q4_K blocks, the way llama.cpp's quantize_row_q4_K_ref does it (ggml-quants.c:
// make_qkx2_quants per 32-element sub-block, then 6-bit scales and mins against one f16 d and dmin per
// 256-element super-block). It owns the writer side of Q4_K only; decoding is dequant.ts's dequantQ4K.
// Layout of one 144-byte block (ggml-common.h block_q4_K): f16 d; f16 dmin; u8 scales[12]; u8 qs[128].
//   scales: sub-block j < 4 has its scale in scales[j] & 63 and its min in scales[j + 4] & 63; j >= 4 has
//   the low 4 bits of both in scales[j + 4] (scale low nibble, min high nibble) and their top 2 bits in
//   bits 6-7 of scales[j - 4] (scale) and scales[j] (min).
//   qs: 32 bytes per pair of sub-blocks; byte l holds element l of sub-block 2c (low nibble) and element l
//   of sub-block 2c + 1 (high nibble). w = d * sc * q - dmin * m.
// NOTE: arithmetic goes through Math.fround where ggml computes in float, so the blocks match llama.cpp's
// reference quantizer (up to the C compiler's contraction of a * b + c into one fused multiply-add).

import { f16BitsToF32, f32ToF16Bits } from "../../core/dtype.js";

const fr = Math.fround;
const QK_K = 256;
export const Q4K_BLOCK_BYTES = 144;

/** ggml's nearest_int: round to nearest, ties to even (the float magic-number trick). */
function nearestInt(v: number): number {
  return fr(fr(v) + 12582912) - 12582912;
}

/**
 * make_qkx2_quants(32, 15, x, weights, L, &min, Laux, -1, 0.1, 20, false): a scale and a min (returned as
 * -min >= 0) for 4-bit levels L, chosen by a weighted least-squares search over 21 candidate scales.
 */
function makeQkx2Quants(x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number): [number, number] {
  const n = 32, nmax = 15, rmin = -1, rdelta = 0.1, nstep = 20;
  let min = x[xo]!, max = x[xo]!;
  let sumW = w[0]!, sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]!);
    bestError = fr(bestError + fr(w[i]! * fr(diff * diff)));
  }
  const aux = new Uint8Array(n);
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
      aux[i] = l;
      sumL = fr(sumL + fr(w[i]! * l));
      sumL2 = fr(sumL2 + fr(fr(w[i]! * l) * l));
      sumXL = fr(sumXL + fr(fr(w[i]! * l) * x[xo + i]!));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * aux[i]!) + thisMin) - x[xo + i]!);
        err = fr(err + fr(w[i]! * fr(diff * diff)));
      }
      if (err < bestError) {
        L.set(aux, lo);
        bestError = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** The 6-bit scale and min of sub-block j (ggml's get_scale_min_k4). */
export function q4kScaleMin(j: number, s: Uint8Array, at: number): [number, number] {
  if (j < 4) return [s[at + j]! & 63, s[at + j + 4]! & 63];
  return [(s[at + j + 4]! & 0x0f) | ((s[at + j - 4]! >> 6) << 4), (s[at + j + 4]! >> 4) | ((s[at + j]! >> 6) << 4)];
}

/** quantize_row_q4_K_ref: x.length must be a multiple of 256. */
export function encodeQ4K(x: Float32Array): Uint8Array {
  if (x.length % QK_K !== 0) throw new Error(`encodeQ4K: ${x.length} elements is not a whole number of 256-element Q4_K blocks`);
  const out = new Uint8Array((x.length / QK_K) * Q4K_BLOCK_BYTES);
  const L = new Uint8Array(QK_K);
  const weights = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  for (let o = 0, blk = 0; o < x.length; o += QK_K, blk += Q4K_BLOCK_BYTES) {
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xo = o + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + l]! * x[xo + l]!));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[xo + l]!));
      const [sc, mn] = makeQkx2Quants(x, xo, weights, L, 32 * j);
      scales[j] = sc;
      mins[j] = mn;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const s = blk + 4;
    for (let j = 0; j < 8; j++) {
      // NOTE: C stores nearest_int's int into a uint8_t before MIN(63, .): the same wrap-around, then clamp.
      const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
      const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        out[s + j] = ls;
        out[s + j + 4] = lm;
      } else {
        out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[s + j - 4] = out[s + j - 4]! | ((ls >> 4) << 6);
        out[s + j] = out[s + j]! | ((lm >> 4) << 6);
      }
    }
    const dBits = f32ToF16Bits(fr(maxScale / 63));
    const mBits = f32ToF16Bits(fr(maxMin / 63));
    out[blk] = dBits & 0xff;
    out[blk + 1] = dBits >> 8;
    out[blk + 2] = mBits & 0xff;
    out[blk + 3] = mBits >> 8;
    const d0 = f16BitsToF32(dBits), m0 = f16BitsToF32(mBits);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = q4kScaleMin(j, out, s);
      const d = fr(d0 * sc);
      if (!d) continue;
      const dm = fr(m0 * m);
      for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = Math.max(0, Math.min(15, nearestInt(fr(fr(x[o + 32 * j + ii]! + dm) / d))));
    }
    for (let j = 0, q = blk + 16; j < QK_K; j += 64, q += 32) {
      for (let l = 0; l < 32; l++) out[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  }
  return out;
}
