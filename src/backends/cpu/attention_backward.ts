// attention_backward.ts is the cpu attention_backward routine: dQ, dK, dV of attention from q, k, v, the
// forward's output o and its gradient dO, recomputing the probabilities (FlashAttention-2's equations; no
// (Tq, Tk) matrix of the whole head): per query row i, with D_i = dO_i . o_i,
//   P_i = softmax(scale q_i K^T) over the keys it sees, dP_i = dO_i V^T, dS_i = P_i (dP_i - D_i) scale,
//   dQ_i = dS_i K, dK += dS_i^T q_i, dV += P_i^T dO_i.
// dK and dV of a kv head accumulate in working memory over all its query heads (grouped-query), then are
// written once. Output: [dQ (B, H, Tq, D) | dK (B, KVH, Tk, D) | dV (B, KVH, Tk, D)] (see core/routines.ts).
// f32, f16 and bf16 data compute in f32 in the wasm SIMD kernel (wasm/attention_kernel.ts), one call per
// block of up to BLOCK query rows of a head (P and dS of the block stay in wasm memory between its two
// phases); f64 data compute in doubles in JS row by row (attention_rows.ts), D_i from the stored values.
// NOTE (measured 2026-12-07, AMD EPYC 2 vCPU under load, cpu time per launch, min/median of 15 x 20 launches,
// q/k/v (12, 4, 64, 32) causal as in the shakespeare GPT-2): wasm calls per row operation with the softmax in
// JS 3.5/3.7 ms; one call per head 1.5/1.6 ms.

import type { AttentionSpec } from "../../core/routines.js";
import { attentionBackwardSizes } from "../../core/routines.js";
import type { RowOps } from "./attention_rows.js";
import { computesInF32, f64RowOps, Layout, pad4, readRows, softmaxRow, visibleRows, writeRows } from "./attention_rows.js";
import type { FloatDType, WorkArray } from "./convert.js";
import { checkLength } from "./convert.js";
import { attentionKernel, launchMemory } from "./wasm/attention_kernel.js";

/** Query rows per kernel call: bounds the block's P and dS (BLOCK x Tk floats each) at long contexts. */
const BLOCK = 64;

export function buildAttentionBackward(spec: AttentionSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { batch, heads, kvHeads, tq, tk, headDim: d, causal, scale } = spec;
  const dtype = spec.dtype as FloatDType;
  const outDtype = spec.out as FloatDType;
  const group = heads / kvHeads;
  const dp = pad4(d);
  const tkp = pad4(tk);
  const { i0, n0, inc } = visibleRows(tq, tk, causal);
  const sizes = attentionBackwardSizes(spec);
  const shape = `attention_backward q(${batch}, ${heads}, ${tq}, ${d}) kv(${batch}, ${kvHeads}, ${tk}, ${d})${causal ? " causal" : ""} ${dtype}->${outDtype}`;
  const f32 = computesInF32(dtype);
  // Working memory (elements, rows dp apart): K, V (3 rows of slack: the kernel reads keys in groups of 4) and
  // the dK, dV accumulators of one kv head; q, o, dO and dQ of one query head; the kernel's P and dS of a
  // block and its constants, or the f64 path's row of scores, dP, P and dS.
  const lay = new Layout();
  const [K, V, DK, DV] = [lay.region((tk + 3) * dp), lay.region((tk + 3) * dp), lay.region(tk * dp), lay.region(tk * dp)];
  const [Q, O, DO, DQ] = [lay.region(tq * dp), lay.region(tq * dp), lay.region(tq * dp), lay.region(tq * dp)];
  const rowsPerBlock = Math.min(BLOCK, tq);
  const [PM, DSM, C] = f32 ? [lay.region(rowsPerBlock * tkp), lay.region(rowsPerBlock * tkp), lay.region(4)] : [0, 0, 0];
  const [S, DP, P, DS] = f32 ? [0, 0, 0, 0] : [lay.region(tk), lay.region(tk), lay.region(tk), lay.region(tk)];
  return {
    source: `// cpu routine ${shape}: ${f32 ? "one wasm SIMD call per block of a head's query rows (f32)" : "rows of recomputed probabilities in JS (f64)"}`,
    run(views) {
      const [out, q, k, v, o, dO] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView];
      checkLength(out, sizes.total, `${shape}: output`);
      checkLength(q, sizes.dq, `${shape}: q`);
      checkLength(k, sizes.dkv, `${shape}: k`);
      checkLength(v, sizes.dkv, `${shape}: v`);
      checkLength(o, sizes.dq, `${shape}: o`);
      checkLength(dO, sizes.dq, `${shape}: dO`);
      let mem: WorkArray;
      let head: () => void;
      if (f32) {
        const kern = attentionKernel(dp / 4);
        mem = launchMemory(kern, lay.size, C, scale);
        head = () => {
          for (let i = i0; i < tq; i += BLOCK) {
            const rows = Math.min(BLOCK, tq - i);
            const at = (region: number) => 4 * (region + i * dp);
            kern.bwd(at(Q), 4 * K, 4 * V, at(O), at(DO), at(DQ), 4 * DK, 4 * DV, 4 * PM, 4 * DSM, 4 * tkp,
              rows, n0 + (i - i0) * inc, inc, tk, 4 * C);
          }
        };
      } else {
        const ops = f64RowOps(dp, lay.size);
        mem = ops.mem;
        head = () => f64Rows(ops, { Q, K, V, O, DO, DQ, DK, DV, S, DP, P, DS }, d, tk, tq, i0, n0, inc, scale);
      }
      for (let b = 0; b < batch; b++) {
        for (let g = 0; g < kvHeads; g++) {
          const kvOff = (b * kvHeads + g) * tk * d;
          readRows(k, dtype, kvOff, tk, d, mem, K, dp);
          readRows(v, dtype, kvOff, tk, d, mem, V, dp);
          mem.fill(0, DK, DK + tk * dp);
          mem.fill(0, DV, DV + tk * dp);
          for (let h = g * group; h < (g + 1) * group; h++) {
            const qOff = (b * heads + h) * tq * d;
            readRows(q, dtype, qOff, tq, d, mem, Q, dp);
            readRows(o, dtype, qOff, tq, d, mem, O, dp);
            readRows(dO, dtype, qOff, tq, d, mem, DO, dp);
            mem.fill(0, DQ, DQ + tq * dp); // rows that see no key keep dQ_i = 0, as the composed formula's empty sums
            if (i0 < tq) head();
            writeRows(mem, DQ, dp, tq, d, out, outDtype, qOff);
          }
          writeRows(mem, DK, dp, tk, d, out, outDtype, sizes.dq + kvOff);
          writeRows(mem, DV, dp, tk, d, out, outDtype, sizes.dq + sizes.dkv + kvOff);
        }
      }
    },
  };
}

interface Regions { Q: number; K: number; V: number; O: number; DO: number; DQ: number; DK: number; DV: number; S: number; DP: number; P: number; DS: number }

/** The f64 path for one query head: rows i >= i0, the row's probabilities recomputed, then its rank-1 updates. */
function f64Rows(ops: RowOps, r: Regions, d: number, tk: number, tq: number, i0: number, n0: number, inc: number, scale: number): void {
  const { mem, dp } = ops;
  for (let i = i0; i < tq; i++) {
    const n = Math.min(tk, n0 + (i - i0) * inc);
    const [qi, oi, doi] = [r.Q + i * dp, r.O + i * dp, r.DO + i * dp];
    let di = 0;
    for (let x = 0; x < d; x++) di += mem[doi + x]! * mem[oi + x]!;
    ops.dots(qi, r.K, n, r.S);
    softmaxRow(mem, r.S, r.P, n, scale);
    ops.dots(doi, r.V, n, r.DP);
    for (let j = 0; j < n; j++) mem[r.DS + j] = mem[r.P + j]! * (mem[r.DP + j]! - di) * scale;
    ops.combine(r.DS, r.K, n, r.DQ + i * dp);
    ops.ger(r.DS, qi, r.DK, n);
    ops.ger(r.P, doi, r.DV, n);
  }
}
