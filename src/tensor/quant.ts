// quant.ts: weights that stay in their quantized block format (GGUF's Q8_0, Q4_0, Q4_K) on the device, and the
// matmul that computes on them. A QuantizedTensor is plain: the format, the logical (rows, cols) shape and
// a u8 tensor of the blocks exactly as the file stores them. matmulQuantized is the matmul_q routine
// where the backend has one for the spec, else dequantize (from primitives) then the ordinary matmul;
// with routines off that is the routine's reference (dequantize-then-f32), which conformance compares against.
// It does not read files (models/formats) nor choose which weights stay quantized (models/weights.ts).

import type { Backend } from "../core/backend.js";
import type { DType, QuantFormat } from "../core/dtype.js";
import { isFloat, quantRowBytes, STORAGE_FORMATS } from "../core/dtype.js";
import { Node } from "../core/graph.js";
import type { QuantMatmulSpec } from "../core/routines.js";
import { concat } from "./composites.js";
import { areRoutinesEnabled } from "./context.js";
import { tensor } from "./create.js";
import { matmul } from "./linalg.js";
import { fmt } from "./shape.js";
import { Tensor } from "./tensor.js";

/** A (rows, cols) matrix stored as `format` blocks along each row: bytes is (rows, rowBytes) u8. */
export interface QuantizedTensor {
  readonly format: QuantFormat;
  readonly shape: readonly [number, number];
  readonly bytes: Tensor;
}

/** Upload a (rows, cols) matrix's blocks; the byte count must be rows whole rows of blocks (an error naming `what`). */
export function quantizedTensor(
  data: Uint8Array, shape: readonly [number, number], format: QuantFormat, backend: Backend, what = "quantizedTensor",
): QuantizedTensor {
  const [rows, cols] = shape;
  const rowBytes = quantRowBytes(format, cols, what);
  if (data.byteLength !== rows * rowBytes) {
    throw new Error(`${what}: ${data.byteLength} bytes of ${format} blocks for shape ${fmt(shape)}; that shape needs ${rows * rowBytes}`);
  }
  return { format, shape: [rows, cols], bytes: tensor(data, { backend, dtype: "u8", shape: [rows, rowBytes] }) };
}

/** Bytes of a quantized tensor on its device. */
export const quantizedBytes = (q: QuantizedTensor): number => q.bytes.numel;

/** An f16's bits (i32 tensor) as f32 values, from primitives. NOTE: scales are finite; Inf/NaN are not decoded. */
function f16Value(h: Tensor): Tensor {
  const sign = h.shr(15).and(1);
  const exp = h.shr(10).and(31).cast("f32");
  const mant = h.and(1023).cast("f32");
  const two = h.full([], 2, "f32");
  const normal = mant.div(1024).add(1).mul(two.pow(exp.sub(15)));
  const sub = mant.mul(2 ** -24);
  const mag = exp.eq(0).where(sub, normal);
  return sign.eq(1).where(mag.neg(), mag);
}

/**
 * The f32 values (rows, cols) of `bytes` (rows, rowBytes) u8 holding `format` blocks, from primitives (runs
 * on every backend; the reference the matmul_q routines are checked against). Block layouts: ggml-common.h.
 */
export function dequantizeRows(bytes: Tensor, format: QuantFormat, cols: number): Tensor {
  const { blockElems, blockBytes } = STORAGE_FORMATS[format];
  const rows = bytes.shape[0]!;
  const nb = cols / blockElems;
  const b = bytes.reshape([rows, nb, blockBytes]).cast("i32");
  const d = f16Value(b.slice(2, 0, 1).or(b.slice(2, 1, 2).shl(8))); // (rows, nb, 1)
  let q: Tensor; // (rows, nb, 32) i32
  switch (format) {
    case "q8_0": { // f16 d; i8 qs[32]
      const u = b.slice(2, 2, 34);
      q = u.ge(128).where(u.sub(256), u);
      break;
    }
    case "q4_0": { // f16 d; u8 qs[16]: element j is the low nibble of qs[j], element j + 16 its high nibble, minus 8
      const u = b.slice(2, 2, 18);
      q = concat([u.and(15), u.shr(4)], -1).sub(8);
      break;
    }
    case "q4_k": return dequantizeQ4KRows(b, rows, nb, d);
    case "fp8e4m3_b128": return dequantizeFp8Rows(b, rows, nb);
    default: { const never: never = format; throw new Error(`dequantizeRows: unhandled format ${String(never)}`); }
  }
  return q.cast("f32").mul(d).reshape([rows, cols]);
}

/**
 * Q4_K super-blocks b (rows, nb, 144) i32 with d (rows, nb, 1) decoded: f16 d; f16 dmin; 12 bytes of 6-bit
 * scales and mins (layout: models/formats/encode_q4k.ts); 128 bytes of nibbles, 32 per pair of sub-blocks
 * (low nibbles the first, high the second). w = (d * sc) * q - (dmin * m), each product rounded to f32 as ggml does.
 */
function dequantizeQ4KRows(b: Tensor, rows: number, nb: number, d: Tensor): Tensor {
  const dmin = f16Value(b.slice(2, 2, 3).or(b.slice(2, 3, 4).shl(8)));
  const s = b.slice(2, 4, 16); // (rows, nb, 12)
  const [s0, s4, s8] = [s.slice(2, 0, 4), s.slice(2, 4, 8), s.slice(2, 8, 12)];
  const sc = concat([s0.and(63), s8.and(15).or(s0.shr(6).shl(4))], -1); // (rows, nb, 8)
  const mn = concat([s4.and(63), s8.shr(4).or(s4.shr(6).shl(4))], -1);
  const qs = b.slice(2, 16, 144).reshape([rows, nb, 4, 32]);
  const q = concat([qs.and(15), qs.shr(4)], -1).reshape([rows, nb, 8, 32]);
  const dsc = d.mul(sc.cast("f32")).reshape([rows, nb, 8, 1]);
  const dm = dmin.mul(mn.cast("f32")).reshape([rows, nb, 8, 1]);
  return q.cast("f32").mul(dsc).sub(dm).reshape([rows, nb * 256]);
}

/** An f32's four little-endian bytes (i32 tensors, same shape) as its value, from primitives. NOTE: finite values only. */
function f32Value(b0: Tensor, b1: Tensor, b2: Tensor, b3: Tensor): Tensor {
  const exp = b3.and(127).shl(1).or(b2.shr(7)).cast("f32");
  const mant = b2.and(127).shl(16).or(b1.shl(8)).or(b0).cast("f32"); // < 2^23: exact in f32
  const two = b0.full([], 2, "f32");
  const normal = mant.div(2 ** 23).add(1).mul(two.pow(exp.sub(127)));
  const mag = exp.eq(0).where(mant.mul(2 ** -149), normal);
  return b3.shr(7).eq(1).where(mag.neg(), mag);
}

/** fp8e4m3_b128 blocks b (rows, nb, 132) i32: f32 scale, 128 E4M3 codes (models/formats/fp8_blocks.ts); w = scale * e4m3. */
function dequantizeFp8Rows(b: Tensor, rows: number, nb: number): Tensor {
  const scale = f32Value(b.slice(2, 0, 1), b.slice(2, 1, 2), b.slice(2, 2, 3), b.slice(2, 3, 4)); // (rows, nb, 1)
  const q = b.slice(2, 4, 132);
  const e = q.shr(3).and(15);
  const m = q.and(7).cast("f32");
  const two = q.full([], 2, "f32");
  const mag = e.eq(0).where(m.mul(2 ** -9), m.add(8).mul(two.pow(e.cast("f32").sub(10))));
  const v = q.shr(7).eq(1).where(mag.neg(), mag);
  return v.mul(scale).reshape([rows, nb * 128]);
}

/** x (..., k) @ W^T for a quantized W (n, k): (..., n) in x's dtype. */
export function matmulQuantized(x: Tensor, w: QuantizedTensor): Tensor {
  const [n, k] = w.shape;
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== k) {
    throw new Error(`matmulQuantized: x ${fmt(x.shape)} does not end in the weight's ${k} input features (weight ${fmt(w.shape)} ${w.format}) on ${x.backend.name}`);
  }
  if (!isFloat(x.dtype)) throw new Error(`matmulQuantized: needs a float x, got ${x.dtype}`);
  const outShape = [...x.shape.slice(0, -1), n];
  const m = x.numel / k;
  const spec: QuantMatmulSpec = { m, n, k, format: w.format, dtype: x.dtype, out: x.dtype };
  if (m > 0 && areRoutinesEnabled() && x.backend.supportsRoutine("matmul_q", spec)) {
    const node = new Node(x.backend, "routine", [x.reshape([m, k]).node, w.bytes.node], { kind: "routine", name: "matmul_q", spec }, [m, n], x.dtype);
    // NOTE: no gradient context: quantized weights are for inference (grad rules refuse matmul_q).
    return new Tensor(node).reshape(outShape);
  }
  return matmulQuantizedReference(x, w);
}

/** Dequantize-then-matmul (the matmul routine where there is one): the fallback and, with routines off, the reference. */
export function matmulQuantizedReference(x: Tensor, w: QuantizedTensor): Tensor {
  const dt: DType = x.dtype;
  return matmul(x, dequantizeRows(w.bytes, w.format, w.shape[1]).cast(dt).transpose());
}

/** Rows `ids` (i32, any shape) of a quantized table, dequantized: (...ids.shape, cols). An embedding lookup. */
export function gatherQuantizedRows(w: QuantizedTensor, ids: Tensor, dtype: DType): Tensor {
  const flat = ids.ndim === 1 ? ids : ids.flatten();
  const rows = dequantizeRows(w.bytes.gather(0, flat), w.format, w.shape[1]).cast(dtype);
  return ids.ndim === 1 ? rows : rows.reshape([...ids.shape, w.shape[1]]);
}
