// dequant.ts: GGML storage formats to f32 on the host (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K) and the
// f32 -> F16 / Q8_0 encoders the GGUF writer uses. Block layouts follow ggml's ggml-common.h and the
// reference (de)quantizers in ggml-quants.c. It does not read files (gguf.ts hands it the bytes).
// NOTE: products go through Math.fround step by step, as ggml computes them in float, so the results
// are bit-identical to dequantize_row_* (which is what the hand-built-block tests check).

import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from "../../core/dtype.js";
import type { GgmlTypeName } from "./ggml_types.js";
import { GGML_TYPES } from "./ggml_types.js";

const fr = Math.fround;

// NOTE: a 64K-entry table makes F16 tensors (the common GGUF case) cheap to expand.
let f16Table: Float32Array | undefined;
function f16(h: number): number {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  return f16Table[h]!;
}

const u16le = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const i8 = (x: number): number => (x << 24) >> 24;

/** Expands `n` elements stored as `type` in `bytes` to f32. */
export function dequantize(type: GgmlTypeName, bytes: Uint8Array, n: number): Float32Array {
  if (type === "f32") {
    // NOTE: view the bytes when they are 4-aligned in their buffer (FileSource's are), else copy.
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    return new Float32Array(bytes.slice(0, n * 4).buffer);
  }
  const out = new Float32Array(n);
  switch (type) {
    case "f16":
      for (let i = 0; i < n; i++) out[i] = f16(u16le(bytes, 2 * i));
      return out;
    case "bf16":
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(u16le(bytes, 2 * i));
      return out;
    case "q8_0":
      return dequantQ8_0(bytes, out);
    case "q4_0":
      return dequantQ4_0(bytes, out);
    case "q4_k":
      return dequantQ4K(bytes, out);
    case "q6_k":
      return dequantQ6K(bytes, out);
    default:
      return assertNever(type);
  }
}

function assertNever(x: never): never {
  throw new Error(`dequantize: unhandled type ${String(x)}`);
}

// block_q8_0: f16 d; i8 qs[32]. y = qs * d.
function dequantQ8_0(b: Uint8Array, y: Float32Array): Float32Array {
  const { blockElems: qk, blockBytes: size } = GGML_TYPES.q8_0;
  for (let blk = 0, o = 0; o < y.length; blk += size, o += qk) {
    const d = f16(u16le(b, blk));
    for (let j = 0; j < qk; j++) y[o + j] = fr(i8(b[blk + 2 + j]!) * d);
  }
  return y;
}

// block_q4_0: f16 d; u8 qs[16]. Element j is the low nibble of qs[j], element j+16 the high one; y = (q - 8) * d.
function dequantQ4_0(b: Uint8Array, y: Float32Array): Float32Array {
  const { blockElems: qk, blockBytes: size } = GGML_TYPES.q4_0;
  for (let blk = 0, o = 0; o < y.length; blk += size, o += qk) {
    const d = f16(u16le(b, blk));
    for (let j = 0; j < qk / 2; j++) {
      const q = b[blk + 2 + j]!;
      y[o + j] = fr(((q & 0x0f) - 8) * d);
      y[o + j + qk / 2] = fr(((q >> 4) - 8) * d);
    }
  }
  return y;
}

// block_q4_K (144 bytes): f16 d; f16 dmin; u8 scales[12] (8 6-bit scales + 8 6-bit mins); u8 qs[128].
// Eight sub-blocks of 32: y = d * sc * q - dmin * m. Each 32 bytes of qs carry two sub-blocks: low nibbles, then high.
function scaleMinK4(j: number, s: Uint8Array, at: number): [number, number] {
  if (j < 4) return [s[at + j]! & 63, s[at + j + 4]! & 63];
  const d = (s[at + j + 4]! & 0x0f) | ((s[at + j - 4]! >> 6) << 4);
  const m = (s[at + j + 4]! >> 4) | ((s[at + j]! >> 6) << 4);
  return [d, m];
}

function dequantQ4K(b: Uint8Array, y: Float32Array): Float32Array {
  const { blockElems: qk, blockBytes: size } = GGML_TYPES.q4_k;
  for (let blk = 0, o = 0; o < y.length; blk += size, o += qk) {
    const d = f16(u16le(b, blk));
    const dmin = f16(u16le(b, blk + 2));
    const scales = blk + 4;
    let q = blk + 16;
    for (let j = 0, is = 0; j < qk; j += 64, is += 2, q += 32) {
      const [sc1, m1q] = scaleMinK4(is, b, scales);
      const [sc2, m2q] = scaleMinK4(is + 1, b, scales);
      const d1 = fr(d * sc1), m1 = fr(dmin * m1q);
      const d2 = fr(d * sc2), m2 = fr(dmin * m2q);
      for (let l = 0; l < 32; l++) y[o + j + l] = fr(fr(d1 * (b[q + l]! & 0x0f)) - m1);
      for (let l = 0; l < 32; l++) y[o + j + 32 + l] = fr(fr(d2 * (b[q + l]! >> 4)) - m2);
    }
  }
  return y;
}

// block_q6_K (210 bytes): u8 ql[128] (low 4 bits); u8 qh[64] (high 2 bits); i8 scales[16]; f16 d.
// Sixteen sub-blocks of 16: y = d * scale * (q - 32), q 6-bit.
function dequantQ6K(b: Uint8Array, y: Float32Array): Float32Array {
  const { blockElems: qk, blockBytes: size } = GGML_TYPES.q6_k;
  for (let blk = 0, o = 0; o < y.length; blk += size, o += qk) {
    const d = f16(u16le(b, blk + 208));
    let ql = blk, qh = blk + 128, sc = blk + 192;
    for (let n = 0; n < qk; n += 128, ql += 64, qh += 32, sc += 8) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l]!;
        const q1 = ((b[ql + l]! & 0x0f) | (((h >> 0) & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32]! & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        y[o + n + l] = fr(fr(d * i8(b[sc + is]!)) * q1);
        y[o + n + l + 32] = fr(fr(d * i8(b[sc + is + 2]!)) * q2);
        y[o + n + l + 64] = fr(fr(d * i8(b[sc + is + 4]!)) * q3);
        y[o + n + l + 96] = fr(fr(d * i8(b[sc + is + 6]!)) * q4);
      }
    }
  }
  return y;
}

// ---- encoders (writer side) ----

export function encodeF32(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

export function encodeF16(x: Float32Array): Uint8Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]!);
  return new Uint8Array(out.buffer);
}

/** quantize_row_q8_0_ref: d = max|x| / 127, q = round-half-away(x / d). x.length must be a multiple of 32. */
export function encodeQ8_0(x: Float32Array): Uint8Array {
  const { blockElems: qk, blockBytes: size } = GGML_TYPES.q8_0;
  const out = new Uint8Array((x.length / qk) * size);
  for (let o = 0, blk = 0; o < x.length; o += qk, blk += size) {
    let amax = 0;
    for (let j = 0; j < qk; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[blk] = h & 0xff;
    out[blk + 1] = h >> 8;
    for (let j = 0; j < qk; j++) {
      const v = fr(x[o + j]! * id);
      // NOTE: C's roundf rounds halves away from zero; Math.round rounds them up.
      out[blk + 2 + j] = (Math.sign(v) * Math.round(Math.abs(v))) & 0xff;
    }
  }
  return out;
}

/**
 * quantize_row_q4_0_ref: d = max / -8 where max is the value of largest magnitude (sign kept), q = min(15,
 * trunc(x / d + 8.5)); byte j holds element j in its low nibble and element j + 16 in its high one.
 */
export function encodeQ4_0(x: Float32Array): Uint8Array {
  const { blockElems: qk, blockBytes: size } = GGML_TYPES.q4_0;
  const out = new Uint8Array((x.length / qk) * size);
  for (let o = 0, blk = 0; o < x.length; o += qk, blk += size) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < qk; j++) {
      const v = x[o + j]!;
      if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[blk] = h & 0xff;
    out[blk + 1] = h >> 8;
    const q = (v: number): number => Math.min(15, Math.trunc(fr(fr(v * id) + 8.5)));
    for (let j = 0; j < qk / 2; j++) out[blk + 2 + j] = q(x[o + j]!) | (q(x[o + j + qk / 2]!) << 4);
  }
  return out;
}
