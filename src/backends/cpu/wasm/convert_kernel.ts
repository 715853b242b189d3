// convert_kernel.ts emits the WebAssembly SIMD functions that widen f16 and bf16 bits (u16 in wasm memory)
// to f32, eight values per loop iteration, bit-exact with dtype.ts's f16BitsToF32 / bf16BitsToF32 (NaN stays NaN).
// The matmul's few-rows path uses them to convert B a chunk at a time inside wasm memory. It does not
// copy data in or out (the driver does), nor narrow f32 back to 16 bits (convert.ts does that in JS).

import { FuncBody, V128 } from "./encoder.js";

/** Elements one loop iteration converts (two f32x4 steps, at static offsets: half the pointer updates). */
export const CONVERT_GROUP = 8;

type Step = (src: number, dst: number, offset: number) => void;

/** The loop both conversions share; `step` (made once, it may declare locals) converts 4 values at src + offset/2 to dst + offset. */
function convertLoop(makeStep: (f: FuncBody) => Step): FuncBody {
  const f = new FuncBody(3);
  const [src, dst, groups] = [0, 1, 2];
  const step = makeStep(f);
  f.get(groups).i32Eqz().if().ret().end();
  f.loop();
  step(src, dst, 0);
  step(src, dst, 16);
  f.get(src).i32(2 * CONVERT_GROUP).i32Add().set(src);
  f.get(dst).i32(4 * CONVERT_GROUP).i32Add().set(dst);
  f.get(groups).i32(1).i32Sub().tee(groups).brIf(0);
  f.end();
  return f;
}

const splat = (x: number): [number, number, number, number] => [x, x, x, x];

/**
 * f16ToF32(src, dst, groups): dst f32[8*groups] = src f16[8*groups] (byte addresses; a last partial group
 * reads past the source's end and writes past the destination's: the caller leaves that slack).
 * NOTE: (h & 0x7fff) << 13 is the f32 with h's exponent and mantissa shifted into place, off by 2^-112;
 * one multiply by 2^112 rebiases normals and turns subnormals into normals exactly. Exponent 31 (inf, NaN)
 * would come out finite, so those lanes get all exponent bits set. Then the sign goes back on.
 */
export function f16ToF32(): FuncBody {
  return convertLoop((f) => {
    const [h, o] = [f.local(V128), f.local(V128)];
    return (src, dst, offset) => {
      f.get(src).v128Load16x4U(offset / 2).set(h);
      f.get(h).i32x4Const(splat(0x7fff)).v128And().i32(13).i32x4Shl().set(o);
      f.get(dst);
      f.get(o).i32x4Const(splat(0x77800000)).f32x4Mul(); // * 2^112
      f.get(o).i32x4Const(splat(0x0f7fffff)).i32x4GtS(); // exponent 31
      f.i32x4Const(splat(0x7f800000)).v128And().v128Or();
      f.get(h).i32x4Const(splat(0x8000)).v128And().i32(16).i32x4Shl().v128Or();
      f.v128Store(offset);
    };
  });
}

/** bf16ToF32(src, dst, groups): as f16ToF32; a bf16 is the top half of an f32, so it is a shift. */
export function bf16ToF32(): FuncBody {
  return convertLoop((f) => (src, dst, offset) => {
    f.get(dst).get(src).v128Load16x4U(offset / 2).i32(16).i32x4Shl().v128Store(offset);
  });
}
