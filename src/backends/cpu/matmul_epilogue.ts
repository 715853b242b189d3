// matmul_epilogue.ts is the last step of the cpu matmul routine's paths: it stores blocks of C (f32 in wasm
// memory, or f64) into the output view, applying the spec's epilogue per element on the way. With an
// epilogue it compiles one store loop per spec, the epilogue's statements inlined into it. It does not
// compute C (matmul.ts, matmul_rows.ts) nor define the epilogue's meaning (src/core/routines.ts; spelled
// by render_js.ts).

import type { Epilogue } from "../../core/routines.js";
import type { FloatDType, WorkArray } from "./convert.js";
import { writeFloats } from "./convert.js";
import { compileWithHelpers } from "./kernel_helpers.js";
import { renderEpilogueLines } from "./render_js.js";
import { matmulKernel } from "./wasm/matmul_kernel.js";
import type { WasmEpilogue } from "./wasm/wasm_epilogue.js";
import { compileWasmEpilogue } from "./wasm/wasm_epilogue.js";

/**
 * Stores C rows first..first+rows (row r at c[cOff + r*ldc], n columns) into out through the epilogue;
 * views are the epilogue's inputs (the routine's slots 3..).
 */
export type BlockStore = (c: WorkArray, cOff: number, ldc: number, first: number, rows: number, out: ArrayBufferView, views: readonly ArrayBufferView[]) => void;

/** The value as the output dtype stores it: f32/f64 typed arrays round on assignment, f16/bf16 are bits. */
const storeAs = (dtype: FloatDType, value: string) => (dtype === "f16" ? `f2h(${value})` : dtype === "bf16" ? `f2bh(${value})` : value);

/**
 * Compiles an epilogue into a block store for an output of n columns (`total` elements); its inputs are
 * slots 3... An f32 output also gets the wasm spelling, which storeRows uses for C in the kernel's memory.
 */
export function compileEpilogue(epi: Epilogue, out: FloatDType, n: number, total: number): { source: string; store: BlockStore; wasm?: WasmEpilogue } {
  const source = storeSource("storeBlock", "c, cOff, ldc", "const src = cOff + r * ldc;", "c[src + j]", epi, out, n);
  const wasm = out === "f32" ? compileWasmEpilogue(epi, 3, n, total) : undefined;
  const store = compileWithHelpers<BlockStore>(source);
  if (!wasm) return { source, store };
  return { source: `// epilogue in wasm simd (f32x4) on C in place; the JS store below is its spec and fallback\n${source}`, store, wasm };
}

/**
 * Stores rows first..first+rows of C = a b^T, a matmul with k = 1, given by its factors: the column
 * a[aOff + r] and the row b[bOff + j] (j < n). Through the epilogue when there is one; views as BlockStore's.
 */
export type OuterStore = (a: WorkArray, aOff: number, b: WorkArray, bOff: number, first: number, rows: number, out: ArrayBufferView, views: readonly ArrayBufferView[]) => void;

/**
 * Compiles the store of an outer product (k = 1) for an output of n columns, epilogue or none.
 * NOTE: the products are formed in the store loop: filling a block of doubles first and storing it in a
 * second pass cost 2-4x the single pass (LayerNorm's gradient is a 768x1 @ 1x128 outer product with a
 * residual-add epilogue, 9 per step of a small GPT-2). `0 +` is the one step of the k-loop every other
 * path sums, so -0 products come out as the same 0.
 */
export function compileOuterStore(epi: Epilogue | undefined, out: FloatDType, n: number): { source: string; store: OuterStore } {
  const source = storeSource("storeOuter", "a, aOff, b, bOff", "const av = a[aOff + r];", "0 + av * b[bOff + j]", epi, out, n);
  return { source, store: compileWithHelpers<OuterStore>(source) };
}

/** A store loop over rows and their n columns: `acc` spelled per element, then the epilogue (if any) and out's dtype. */
function storeSource(name: string, params: string, rowSetup: string, acc: string, epi: Epilogue | undefined, out: FloatDType, n: number): string {
  const firstSlot = 3;
  const { lines, value } = epi ? renderEpilogueLines(epi, firstSlot) : { lines: [], value: "acc" };
  const names = (epi?.inputs ?? []).map((_, i) => `b${firstSlot + i}`);
  // NOTE: the epilogue's statements are inlined into the loop, and the value is stored straight into the
  // output view: an epilogue called per element, writing a row of doubles that a second loop converted,
  // was 14% of a small GPT-2's cpu training step (V8 did not inline the call).
  return [
    `return function ${name}(${params}, first, rows, out, views) {`,
    ...names.map((name, i) => `const ${name} = views[${i}];`),
    `for (let r = 0; r < rows; r++) {`,
    rowSetup,
    `const gid0 = (first + r) * ${n};`,
    `for (let j = 0; j < ${n}; j++) {`,
    `const acc = ${acc};`,
    `const gid = gid0 + j;`,
    ...lines,
    `out[gid] = ${storeAs(out, value)};`,
    `}`,
    `}`,
    `};`,
  ].join("\n");
}

/** Where C's rows go: the output view and dtype, and the epilogue's store with its input views (slots 3..). */
export interface RowSink {
  readonly out: ArrayBufferView;
  readonly dtype: FloatDType;
  readonly n: number;
  readonly store: BlockStore | undefined;
  readonly wasm: WasmEpilogue | undefined;
  readonly epiViews: readonly ArrayBufferView[];
  /** The outer-product store, compiled only for specs with k = 1 that the JS path runs. */
  readonly outer: OuterStore | undefined;
}

export function rowSink(views: readonly ArrayBufferView[], out: FloatDType, n: number, epi?: { store: BlockStore; wasm?: WasmEpilogue }, outer?: OuterStore): RowSink {
  return { out: views[0]!, dtype: out, n, store: epi?.store, wasm: epi?.wasm, epiViews: views.slice(3), outer };
}

/** Output rows first..first+rows = C rows at c[cOff + r*ldc], through the epilogue when there is one. */
export function storeRows(sink: RowSink, c: WorkArray, cOff: number, ldc: number, first: number, rows: number): void {
  const { out, dtype, n, epiViews } = sink;
  let store = sink.store;
  // C in the matmul kernel's memory: the wasm epilogue rewrites it in place, then it is copied as is.
  if (store && sink.wasm && c.buffer === matmulKernel().memory.buffer && sink.wasm(cOff, ldc, first, rows, epiViews)) {
    c = matmulKernel().reserve(0);
    store = undefined;
  }
  if (store) return store(c, cOff, ldc, first, rows, out, epiViews);
  // NOTE: rows laid out as the output's (no padding columns): one copy, not a subarray per row.
  if (ldc === n) return writeFloats(c, cOff, rows * n, out, dtype, first * n);
  for (let r = 0; r < rows; r++) writeFloats(c, cOff + r * ldc, n, out, dtype, (first + r) * n);
}
