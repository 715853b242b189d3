// attention.ts is the cpu attention routine: out = softmax(q k^T * scale [+ causal mask]) v, per query head.
// f32, f16 and bf16 data compute in f32 in the wasm SIMD kernel (wasm/attention_kernel.ts), one call per
// head for all its query rows (scores, mask, max, exp, sum and P V inside wasm); f64 data (and engines without
// wasm SIMD) compute in doubles in JS, one query row at a time (attention_rows.ts). A kv head's K and V are
// copied in once and serve all its query heads.
// q (B, H, Tq, D); k, v (B, KVH, Tk, D); query head h reads kv head h / (H / KVH).
// Causal: query i sees keys j <= i + (Tk - Tq); a query that sees no key gets 0/0 = NaN, like the dense formula.
// NOTE: the whole row's scores are kept (Tk floats), so the softmax is exact rather than online: a row of
// scores fits L1 at any context a cpu trains or prefills at, and one max and one sum are cheaper than rescales.
// NOTE (measured 2026-12-07, AMD EPYC 2 vCPU under load, cpu time per launch, min/median of 15 x 20 launches,
// q/k/v (12, 4, 64, 32) causal as in the shakespeare GPT-2): wasm calls per row with the softmax in JS
// (Math.exp) 2.0/2.2 ms; one call per head with the softmax in wasm 0.89/0.97 ms.

import type { AttentionSpec } from "../../core/routines.js";
import type { RowOps } from "./attention_rows.js";
import { computesInF32, f64RowOps, Layout, pad4, readRows, softmaxRow, visibleRows, writeRows } from "./attention_rows.js";
import type { FloatDType, WorkArray } from "./convert.js";
import { checkLength } from "./convert.js";
import { attentionKernel, launchMemory } from "./wasm/attention_kernel.js";

export function buildAttention(spec: AttentionSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { batch, heads, kvHeads, tq, tk, headDim: d, causal, scale } = spec;
  const dtype = spec.dtype as FloatDType;
  const outDtype = spec.out as FloatDType;
  const group = heads / kvHeads;
  const dp = pad4(d);
  const { i0, n0, inc } = visibleRows(tq, tk, causal);
  const shape = `attention q(${batch}, ${heads}, ${tq}, ${d}) kv(${batch}, ${kvHeads}, ${tk}, ${d})${causal ? " causal" : ""} ${dtype}->${outDtype}`;
  // Working memory (elements, rows dp apart): K and V of one kv head (3 rows of slack: the kernel reads keys
  // in groups of 4), Q and the output of one query head, one row's scores and probabilities, the kernel's constants.
  const lay = new Layout();
  const [K, V, Q, O] = [lay.region((tk + 3) * dp), lay.region((tk + 3) * dp), lay.region(tq * dp), lay.region(tq * dp)];
  const [S, P, C] = [lay.region(tk + 3), lay.region(tk), lay.region(4)];
  const f32 = computesInF32(dtype);
  return {
    source: `// cpu routine ${shape}: ${f32 ? "one wasm SIMD call per head (f32)" : "a row of scores per query in JS (f64)"}`,
    run(views) {
      const [o, q, k, v] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView];
      checkLength(o, batch * heads * tq * d, `${shape}: output`);
      checkLength(q, batch * heads * tq * d, `${shape}: q`);
      checkLength(k, batch * kvHeads * tk * d, `${shape}: k`);
      checkLength(v, batch * kvHeads * tk * d, `${shape}: v`);
      let mem: WorkArray;
      let head: () => void;
      if (f32) {
        const kern = attentionKernel(dp / 4);
        mem = launchMemory(kern, lay.size, C, scale);
        head = () => kern.fwd(4 * (Q + i0 * dp), 4 * K, 4 * V, 4 * (O + i0 * dp), 4 * S, tq - i0, n0, inc, tk, 4 * C);
      } else {
        const ops = f64RowOps(dp, lay.size);
        mem = ops.mem;
        head = () => f64Rows(ops, Q, K, V, O, S, P, tk, i0, n0, inc, scale, tq);
      }
      for (let b = 0; b < batch; b++) {
        for (let g = 0; g < kvHeads; g++) {
          const kvOff = (b * kvHeads + g) * tk * d;
          readRows(k, dtype, kvOff, tk, d, mem, K, dp);
          readRows(v, dtype, kvOff, tk, d, mem, V, dp);
          for (let h = g * group; h < (g + 1) * group; h++) {
            const qOff = (b * heads + h) * tq * d;
            readRows(q, dtype, qOff, tq, d, mem, Q, dp);
            mem.fill(NaN, O, O + i0 * dp); // rows that see no key
            if (i0 < tq) head();
            writeRows(mem, O, dp, tq, d, o, outDtype, qOff);
          }
        }
      }
    },
  };
}

/** The f64 path for one head: rows i >= i0, a row of scores, its softmax, then P V. */
function f64Rows(ops: RowOps, Q: number, K: number, V: number, O: number, S: number, P: number, tk: number,
  i0: number, n0: number, inc: number, scale: number, tq: number): void {
  const { mem, dp } = ops;
  for (let i = i0; i < tq; i++) {
    const n = Math.min(tk, n0 + (i - i0) * inc);
    mem.fill(0, O + i * dp, O + (i + 1) * dp);
    ops.dots(Q + i * dp, K, n, S);
    softmaxRow(mem, S, P, n, scale);
    ops.combine(P, V, n, O + i * dp);
  }
}
