// dtype.ts owns the element types: their sizes, their classes (float/int/bool), and the host-side
// conversions between storage bits and JS numbers (f16 and bf16 have no typed array in Node 20).
// It does not know about devices: how a backend lays a dtype out in its memory is the backend's business.

/** Types that kernels compute with and buffers store. f64 exists on cpu only (the reference). */
export type DType = "f64" | "f32" | "f16" | "bf16" | "i32" | "u32" | "u8" | "bool";

/**
 * Block storage formats (GGUF's blocks, byte for byte): loaders and kernels agree on their names and block
 * sizes here. QuantFormat names the ones a matmul computes on directly (the matmul_q routine: a weight's
 * bytes stay as in the file, u8 on the device); the others are dequantized to a DType on load.
 */
export type StorageFormat = "fp8e4m3" | "fp8e5m2" | "q8_0" | "q4_0" | "q4_k" | "q6_k" | "fp8e4m3_b128";

export interface StorageFormatInfo {
  readonly blockElems: number; // elements per block
  readonly blockBytes: number; // bytes per block
}

export const STORAGE_FORMATS: Readonly<Record<StorageFormat, StorageFormatInfo>> = {
  fp8e4m3: { blockElems: 1, blockBytes: 1 },
  fp8e5m2: { blockElems: 1, blockBytes: 1 },
  q8_0: { blockElems: 32, blockBytes: 34 }, // f16 scale + 32 x i8
  q4_0: { blockElems: 32, blockBytes: 18 }, // f16 scale + 32 x 4-bit
  q4_k: { blockElems: 256, blockBytes: 144 },
  q6_k: { blockElems: 256, blockBytes: 210 },
  // NOTE: kiln's own FP8 weight blocks (GGUF has no FP8 type): f32 scale + 128 x E4M3 (models/formats/fp8_blocks.ts).
  fp8e4m3_b128: { blockElems: 128, blockBytes: 132 },
};

/** Formats the matmul_q routine reads in place (src/core/routines.ts QuantMatmulSpec). */
export const QUANT_FORMATS = ["q8_0", "q4_0", "q4_k", "fp8e4m3_b128"] as const;
export type QuantFormat = (typeof QUANT_FORMATS)[number];

export const isQuantFormat = (s: string): s is QuantFormat => (QUANT_FORMATS as readonly string[]).includes(s);

/** `s` as a QuantFormat, or an error naming `what` and the supported formats. */
export function quantFormat(s: string, what: string): QuantFormat {
  if (isQuantFormat(s)) return s;
  throw new Error(`${what}: quantized type '${s}' is not supported for in-place compute (supported: ${QUANT_FORMATS.join(", ")})`);
}

/**
 * Bytes of one row of `cols` elements stored as `format`. Blocks run along a row and never span two,
 * so cols must be a whole number of blocks: an error naming `what`, the format and the block size otherwise.
 */
export function quantRowBytes(format: StorageFormat, cols: number, what: string): number {
  const { blockElems, blockBytes } = STORAGE_FORMATS[format];
  if (!Number.isInteger(cols) || cols <= 0 || cols % blockElems !== 0) {
    throw new Error(`${what}: a row of ${cols} elements is not a whole number of ${format} blocks (${blockElems} elements each)`);
  }
  return (cols / blockElems) * blockBytes;
}

export interface DTypeInfo {
  readonly itemsize: number;
  readonly kind: "float" | "int" | "uint" | "bool";
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  f64: { itemsize: 8, kind: "float" },
  f32: { itemsize: 4, kind: "float" },
  f16: { itemsize: 2, kind: "float" },
  bf16: { itemsize: 2, kind: "float" },
  i32: { itemsize: 4, kind: "int" },
  u32: { itemsize: 4, kind: "uint" },
  u8: { itemsize: 1, kind: "uint" },
  bool: { itemsize: 1, kind: "bool" },
};

export const ALL_DTYPES = Object.keys(DTYPES) as DType[];

export const isFloat = (d: DType): boolean => DTYPES[d].kind === "float";
export const isInt = (d: DType): boolean => DTYPES[d].kind === "int" || DTYPES[d].kind === "uint";
export const itemsize = (d: DType): number => DTYPES[d].itemsize;

export function assertDType(d: string): asserts d is DType {
  if (!(d in DTYPES)) throw new Error(`unknown dtype '${d}' (known: ${ALL_DTYPES.join(", ")})`);
}

/** The type two operands are promoted to (float beats int beats bool; wider beats narrower). */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  const rank: DType[] = ["bool", "u8", "u32", "i32", "bf16", "f16", "f32", "f64"];
  // NOTE: f16 with bf16 has no exact common type; f32 holds both.
  if ((a === "f16" && b === "bf16") || (a === "bf16" && b === "f16")) return "f32";
  return rank.indexOf(a) > rank.indexOf(b) ? a : b;
}

// ---- f16 / bf16 bit conversions (round to nearest even) ----

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f32ToF16Bits(x: number): number {
  f32buf[0] = x;
  const b = u32buf[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  let out = sign | (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out++; // carry may roll into the exponent: correct
  return out;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function f32ToBf16Bits(x: number): number {
  f32buf[0] = x;
  const b = u32buf[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40; // keep NaN a NaN
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32buf[0] = (h & 0xffff) << 16;
  return f32buf[0]!;
}

/** Encode JS numbers as the dtype's little-endian bytes (the layout every Backend.write takes). */
export function encode(values: ArrayLike<number | boolean>, dtype: DType): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n * itemsize(dtype));
  const num = (i: number): number => Number(values[i]);
  switch (dtype) {
    case "f64": { const v = new Float64Array(out.buffer); for (let i = 0; i < n; i++) v[i] = num(i); break; }
    case "f32": { const v = new Float32Array(out.buffer); for (let i = 0; i < n; i++) v[i] = num(i); break; }
    case "i32": { const v = new Int32Array(out.buffer); for (let i = 0; i < n; i++) v[i] = num(i); break; }
    case "u32": { const v = new Uint32Array(out.buffer); for (let i = 0; i < n; i++) v[i] = num(i); break; }
    case "u8": for (let i = 0; i < n; i++) out[i] = num(i); break;
    case "bool": for (let i = 0; i < n; i++) out[i] = num(i) ? 1 : 0; break;
    case "f16": { const v = new Uint16Array(out.buffer); for (let i = 0; i < n; i++) v[i] = f32ToF16Bits(num(i)); break; }
    case "bf16": { const v = new Uint16Array(out.buffer); for (let i = 0; i < n; i++) v[i] = f32ToBf16Bits(num(i)); break; }
    default: { const never: never = dtype; throw new Error(`encode: unhandled dtype ${String(never)}`); }
  }
  return out;
}

/** Decode little-endian bytes of a dtype into JS numbers (bool as 0/1). */
export function decode(bytes: Uint8Array, dtype: DType, n = bytes.byteLength / itemsize(dtype)): number[] {
  // Copy so the typed-array view is aligned whatever the source offset was.
  const buf = bytes.slice(0, n * itemsize(dtype)).buffer;
  let v: ArrayLike<number>;
  switch (dtype) {
    case "f64": v = new Float64Array(buf); break;
    case "f32": v = new Float32Array(buf); break;
    case "i32": v = new Int32Array(buf); break;
    case "u32": v = new Uint32Array(buf); break;
    case "u8": case "bool": v = new Uint8Array(buf); break;
    case "f16": return Array.from(new Uint16Array(buf), f16BitsToF32);
    case "bf16": return Array.from(new Uint16Array(buf), bf16BitsToF32);
    default: { const never: never = dtype; throw new Error(`decode: unhandled dtype ${String(never)}`); }
  }
  return Array.from(v);
}

/** Round a JS number to what the dtype can hold (used by host-side references and constant folding). */
export function roundTo(x: number, dtype: DType): number {
  switch (dtype) {
    case "f64": return x;
    case "f32": return Math.fround(x);
    case "f16": return f16BitsToF32(f32ToF16Bits(x));
    case "bf16": return bf16BitsToF32(f32ToBf16Bits(x));
    case "i32": return x | 0;
    case "u32": return x >>> 0;
    case "u8": return x & 0xff;
    case "bool": return x ? 1 : 0;
    default: { const never: never = dtype; throw new Error(`roundTo: unhandled dtype ${String(never)}`); }
  }
}
