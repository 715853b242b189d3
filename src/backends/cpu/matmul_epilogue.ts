// matmul_epilogue.ts is the last step of the cpu matmul routine's paths: it compiles a spec's epilogue into
// a per-row loop and stores rows of C (f32 in wasm memory, or f64) into the output view, applying the
// epilogue per element on the way. It does not compute C (matmul.ts, matmul_rows.ts) nor define the
// epilogue's meaning (src/core/routines.ts; rendered by render_js.ts).

import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../core/dtype.js";
import type { Epilogue } from "../../core/routines.js";
import type { FloatDType, WorkArray } from "./convert.js";
import { writeFloats } from "./convert.js";
import { renderEpilogueJs } from "./render_js.js";

/** Writes epilogue(acc[accOff + j], gid0 + j, ...views) into dst[j] for j < n (dst may alias acc at offset 0). */
export type RowEpilogue = (acc: WorkArray, accOff: number, dst: Float64Array, n: number, gid0: number, views: readonly ArrayBufferView[]) => void;

// Host helpers an epilogue's source may call (the same ones rendered kernels get).
const HELPERS = {
  h2f: f16BitsToF32,
  bh2f: bf16BitsToF32,
  f16round: (x: number) => f16BitsToF32(f32ToF16Bits(x)),
  bf16round: (x: number) => bf16BitsToF32(f32ToBf16Bits(x)),
};

/** Compiles an epilogue into a row loop; its inputs are the views after the matmul's operands (slots 3..). */
export function compileEpilogue(epi: Epilogue): { source: string; row: RowEpilogue } {
  const firstSlot = 3;
  const fn = renderEpilogueJs(epi, firstSlot);
  const names = epi.inputs.map((_, i) => `b${firstSlot + i}`);
  // NOTE: one generated loop per spec lets V8 inline the epilogue instead of calling it through a spread per element.
  const source = [
    `const epilogue = ${fn};`,
    `return function epilogueRow(acc, accOff, dst, n, gid0, views) {`,
    ...names.map((name, i) => `const ${name} = views[${i}];`),
    `for (let j = 0; j < n; j++) dst[j] = epilogue(acc[accOff + j], gid0 + j${names.map((x) => `, ${x}`).join("")});`,
    `};`,
  ].join("\n");
  const make = new Function(...Object.keys(HELPERS), source) as (...h: unknown[]) => RowEpilogue;
  return { source, row: make(...Object.values(HELPERS)) };
}

/** Where C's rows go: the output view and dtype, the epilogue and its input views (slots 3..). */
export interface RowSink {
  readonly out: ArrayBufferView;
  readonly dtype: FloatDType;
  readonly n: number;
  readonly epi: RowEpilogue | undefined;
  readonly epiViews: readonly ArrayBufferView[];
  /** Scratch for one epilogue row (n doubles), reused across stores. */
  readonly row: Float64Array;
}

export function rowSink(views: readonly ArrayBufferView[], out: FloatDType, n: number, epi: RowEpilogue | undefined): RowSink {
  return { out: views[0]!, dtype: out, n, epi, epiViews: views.slice(3), row: new Float64Array(epi ? n : 0) };
}

/** Output rows first..first+rows = C rows at c[cOff + r*ldc], through the epilogue when there is one. */
export function storeRows(sink: RowSink, c: WorkArray, cOff: number, ldc: number, first: number, rows: number): void {
  const { out, dtype, n, epi, epiViews, row } = sink;
  for (let r = 0; r < rows; r++) {
    const gid0 = (first + r) * n;
    if (epi) {
      epi(c, cOff + r * ldc, row, n, gid0, epiViews);
      writeFloats(row, 0, n, out, dtype, gid0);
    } else {
      writeFloats(c, cOff + r * ldc, n, out, dtype, gid0);
    }
  }
}
