// wasm_epilogue.ts applies a matmul's f32 epilogue (bias, GELU, residual, a gradient's elementwise tail) in
// wasm SIMD to C where the matmul left it, in the matmul kernel's own memory, before C is copied out: the
// JS store loop spent ~10 ns per element in a GELU backward's tanh (a 768x512 output took ~4 ms).
// Its inputs are copied in after C. A store whose inputs are much larger than its rows (one batch of a
// batched matmul reading every batch's residual) keeps the JS store. It owns that copy and the call; the
// lowering is render_wasm.ts's, C's layout the matmul paths'.

import type { Epilogue } from "../../../core/routines.js";
import { encodeModule } from "./encoder.js";
import { matmulKernel } from "./matmul_kernel.js";
import { NotVectorizable, renderWasmEpilogue } from "./render_wasm.js";
import { wasmKernelsEnabled } from "./wasm_elementwise.js";

/** Applies the epilogue to C rows [0, rows) at float offset cOff (row stride ldc floats) in place; false: use JS. */
export type WasmEpilogue = (cOff: number, ldc: number, first: number, rows: number, views: readonly ArrayBufferView[]) => boolean;

const align4 = (floats: number) => Math.ceil(floats / 4) * 4;

/**
 * The wasm spelling of an epilogue whose inputs are slots firstSlot.., for an f32 output of n columns and
 * `total` elements; undefined where it has none (the JS store runs).
 */
export function compileWasmEpilogue(epi: Epilogue, firstSlot: number, n: number, total: number): WasmEpilogue | undefined {
  if (!wasmKernelsEnabled()) return undefined;
  let rendered;
  try {
    rendered = renderWasmEpilogue(epi.expr, epi.inputs, firstSlot, n, total);
  } catch (e) {
    if (e instanceof NotVectorizable) return undefined;
    throw e;
  }
  const kernel = matmulKernel();
  const bytes = encodeModule([{ name: "run", body: rendered.body }], kernel.sharedMaxPages);
  const run = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: kernel.memory } }).exports.run as (...a: number[]) => void;
  const slots = rendered.shape.slots;
  const args = new Array<number>(4 + 2 * slots.length).fill(0);
  return (cOff, ldc, first, rows, views) => {
    let total = 0;
    for (const s of slots) total += (views[s - firstSlot] as Float32Array).length;
    if (total > 4 * rows * n + 65536) return false;
    let at = align4(cOff + rows * ldc);
    const starts = slots.map((s) => {
      const here = at;
      at += align4((views[s - firstSlot] as Float32Array).length + 4);
      return here;
    });
    const heap = kernel.reserve(at * 4);
    slots.forEach((s, i) => {
      const v = views[s - firstSlot] as Float32Array;
      heap.set(v, starts[i]!);
      args[4 + 2 * i] = starts[i]! * 4;
      args[5 + 2 * i] = v.length;
    });
    args[0] = rows;
    args[1] = first;
    args[2] = cOff * 4;
    args[3] = ldc * 4;
    run(...args);
    return true;
  };
}
