// convert.ts moves float values between the cpu backend's stored views (f16/bf16 as u16 bits) and the
// f32/f64 working arrays the hand-written routines compute in. Float dtypes only: the routines
// refuse int dtypes before they get here. Rounding on the way out is dtype.ts's (round to nearest even).

import type { DType } from "../../core/dtype.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../core/dtype.js";

export type FloatDType = "f64" | "f32" | "f16" | "bf16";
export type WorkArray = Float32Array | Float64Array;

export const isFloatDType = (d: DType): d is FloatDType => d === "f64" || d === "f32" || d === "f16" || d === "bf16";

let f16Table: Float32Array | undefined;
/** Every f16 bit pattern's value (256 KiB, built on first use): a lookup beats decoding per element. */
export function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** dst[dOff + i] = value of element sOff + i of a stored view, for i < n. */
export function readFloats(src: ArrayBufferView, dtype: FloatDType, sOff: number, n: number, dst: WorkArray, dOff: number): void {
  switch (dtype) {
    case "f32":
    case "f64": {
      const s = src as Float32Array | Float64Array;
      if (s.constructor === dst.constructor) dst.set(s.subarray(sOff, sOff + n), dOff);
      else for (let i = 0; i < n; i++) dst[dOff + i] = s[sOff + i]!;
      return;
    }
    case "f16": {
      const s = src as Uint16Array;
      const table = f16Values();
      for (let i = 0; i < n; i++) dst[dOff + i] = table[s[sOff + i]!]!;
      return;
    }
    case "bf16": {
      const s = src as Uint16Array;
      if (dst instanceof Float32Array) {
        // NOTE: a bf16 is the top half of an f32, so its bits shift straight into place.
        const bits = new Uint32Array(dst.buffer, dst.byteOffset + dOff * 4, n);
        for (let i = 0; i < n; i++) bits[i] = s[sOff + i]! << 16;
      } else {
        for (let i = 0; i < n; i++) dst[dOff + i] = bf16BitsToF32(s[sOff + i]!);
      }
      return;
    }
  }
}

/** Element dOff + i of a stored view = src[sOff + i] rounded to the view's dtype, for i < n. */
export function writeFloats(src: WorkArray, sOff: number, n: number, dst: ArrayBufferView, dtype: FloatDType, dOff: number): void {
  switch (dtype) {
    case "f32":
    case "f64": {
      const d = dst as Float32Array | Float64Array;
      if (d.constructor === src.constructor) d.set(src.subarray(sOff, sOff + n), dOff);
      else for (let i = 0; i < n; i++) d[dOff + i] = src[sOff + i]!;
      return;
    }
    case "f16": {
      const d = dst as Uint16Array;
      for (let i = 0; i < n; i++) d[dOff + i] = f32ToF16Bits(src[sOff + i]!);
      return;
    }
    case "bf16": {
      const d = dst as Uint16Array;
      for (let i = 0; i < n; i++) d[dOff + i] = f32ToBf16Bits(src[sOff + i]!);
      return;
    }
  }
}

/** Throws unless a view holds at least `need` elements (names the routine, operand and shape). */
export function checkLength(view: ArrayBufferView, need: number, what: string): void {
  const have = (view as Uint8Array).length;
  if (have < need) throw new Error(`cpu routine ${what}: needs ${need} elements, its buffer holds ${have}`);
}
