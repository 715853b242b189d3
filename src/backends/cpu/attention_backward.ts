// attention_backward.ts is the cpu attention_backward routine: dQ, dK, dV of attention from q, k, v, the
// forward's output o and its gradient dO, recomputing the probabilities row by row (FlashAttention-2's
// equations; no (Tq, Tk) matrix): per query row i, with D_i = dO_i . o_i,
//   P_i = softmax(scale q_i K^T) over the keys it sees, dP_i = dO_i V^T, dS_i = P_i (dP_i - D_i) scale,
//   dQ_i = dS_i K, and the rank-1 updates dK += dS_i^T q_i, dV += P_i^T dO_i.
// dK and dV of a kv head accumulate in working memory over all its query heads (grouped-query), then are
// written once. Output: [dQ (B, H, Tq, D) | dK (B, KVH, Tk, D) | dV (B, KVH, Tk, D)] (see core/routines.ts).
// The row operations run in WebAssembly SIMD in f32, or in JS in doubles for f64 data (attention_rows.ts);
// D_i is computed in doubles from the stored values.

import type { AttentionSpec } from "../../core/routines.js";
import { attentionBackwardSizes } from "../../core/routines.js";
import { Layout, pad4, readRows, rowOps, softmaxRow, writeRows } from "./attention_rows.js";
import type { FloatDType } from "./convert.js";
import { checkLength, readFloats } from "./convert.js";

export function buildAttentionBackward(spec: AttentionSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { batch, heads, kvHeads, tq, tk, headDim: d, causal, scale } = spec;
  const dtype = spec.dtype as FloatDType;
  const outDtype = spec.out as FloatDType;
  const group = heads / kvHeads;
  const dp = pad4(d);
  const sizes = attentionBackwardSizes(spec);
  const shape = `attention_backward q(${batch}, ${heads}, ${tq}, ${d}) kv(${batch}, ${kvHeads}, ${tk}, ${d})${causal ? " causal" : ""} ${dtype}->${outDtype}`;
  // Working memory (elements, rows dp apart): K, V (3 rows of slack for dots) and the dK, dV accumulators of
  // one kv head; q, dO and dQ of one query head; one row's scores, dP, P and dS.
  const lay = new Layout();
  const [K, V, DK, DV] = [lay.region((tk + 3) * dp), lay.region((tk + 3) * dp), lay.region(tk * dp), lay.region(tk * dp)];
  const [Q, DO, DQ] = [lay.region(tq * dp), lay.region(tq * dp), lay.region(tq * dp)];
  const [S, DP, P, DS] = [lay.region(tk + 3), lay.region(tk + 3), lay.region(tk), lay.region(tk)];
  return {
    source: `// cpu routine ${shape}: rows of recomputed probabilities, dots and rank-1 updates in wasm SIMD (f32) or JS (f64)`,
    run(views) {
      const [out, q, k, v, o, dO] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView];
      checkLength(out, sizes.total, `${shape}: output`);
      checkLength(q, sizes.dq, `${shape}: q`);
      checkLength(k, sizes.dkv, `${shape}: k`);
      checkLength(v, sizes.dkv, `${shape}: v`);
      checkLength(o, sizes.dq, `${shape}: o`);
      checkLength(dO, sizes.dq, `${shape}: dO`);
      const ops = rowOps(dtype, dp, lay.size);
      const mem = ops.mem;
      // o and dO of one query head in doubles, for D_i.
      const oHead = new Float64Array(tq * d);
      const dOHead = new Float64Array(tq * d);
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
            readRows(dO, dtype, qOff, tq, d, mem, DO, dp);
            readFloats(o, dtype, qOff, tq * d, oHead, 0);
            readFloats(dO, dtype, qOff, tq * d, dOHead, 0);
            mem.fill(0, DQ, DQ + tq * dp);
            for (let i = 0; i < tq; i++) {
              const n = causal ? Math.min(tk, i + tk - tq + 1) : tk;
              if (n === 0) continue; // sees no key: dQ_i = 0, as the empty sums of the composed formula
              let di = 0;
              for (let x = i * d; x < (i + 1) * d; x++) di += dOHead[x]! * oHead[x]!;
              const [qi, doi] = [Q + i * dp, DO + i * dp];
              ops.dots(qi, K, n, S);
              softmaxRow(mem, S, P, n, scale);
              ops.dots(doi, V, n, DP);
              for (let j = 0; j < n; j++) mem[DS + j] = mem[P + j]! * (mem[DP + j]! - di) * scale;
              ops.combine(DS, K, n, DQ + i * dp);
              ops.ger(DS, qi, DK, n);
              ops.ger(P, doi, DV, n);
            }
            writeRows(mem, DQ, dp, tq, d, out, outDtype, qOff);
          }
          writeRows(mem, DK, dp, tk, d, out, outDtype, sizes.dq + kvOff);
          writeRows(mem, DV, dp, tk, d, out, outDtype, sizes.dq + sizes.dkv + kvOff);
        }
      }
    },
  };
}
