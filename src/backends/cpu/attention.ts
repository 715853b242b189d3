// attention.ts is the cpu attention routine: out = softmax(q k^T * scale [+ causal mask]) v, one query row at
// a time against the keys it sees: a row of scores (Tk floats, never a (Tq, Tk) matrix), its softmax in JS,
// then P V. The dot products and P V run in WebAssembly SIMD in f32 (attention_rows.ts; f64 data and engines
// without SIMD compute in doubles in JS). A kv head's K and V are copied in once and serve all its query heads.
// q (B, H, Tq, D); k, v (B, KVH, Tk, D); query head h reads kv head h / (H / KVH).
// Causal: query i sees keys j <= i + (Tk - Tq); a query that sees no key gets 0/0 = NaN, like the dense formula.
// NOTE: the whole row's scores are kept (Tk floats), so the softmax is exact rather than online: a row of
// scores fits L1 at any context a cpu trains or prefills at, and one max and one sum are cheaper than rescales.

import type { AttentionSpec } from "../../core/routines.js";
import { Layout, pad4, readRows, rowOps, softmaxRow, writeRows } from "./attention_rows.js";
import type { FloatDType } from "./convert.js";
import { checkLength } from "./convert.js";

export function buildAttention(spec: AttentionSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { batch, heads, kvHeads, tq, tk, headDim: d, causal, scale } = spec;
  const dtype = spec.dtype as FloatDType;
  const outDtype = spec.out as FloatDType;
  const group = heads / kvHeads;
  const dp = pad4(d);
  const shape = `attention q(${batch}, ${heads}, ${tq}, ${d}) kv(${batch}, ${kvHeads}, ${tk}, ${d})${causal ? " causal" : ""} ${dtype}->${outDtype}`;
  // Working memory (elements, rows dp apart): K and V of one kv head (3 rows of slack for dots), Q and the
  // output of one query head, one row's scores and probabilities.
  const lay = new Layout();
  const [K, V, Q, O] = [lay.region((tk + 3) * dp), lay.region((tk + 3) * dp), lay.region(tq * dp), lay.region(tq * dp)];
  const [S, P] = [lay.region(tk + 3), lay.region(tk)];
  return {
    source: `// cpu routine ${shape}: a row of scores per query, dots and P V in wasm SIMD (f32) or JS (f64)`,
    run(views) {
      const [o, q, k, v] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView];
      checkLength(o, batch * heads * tq * d, `${shape}: output`);
      checkLength(q, batch * heads * tq * d, `${shape}: q`);
      checkLength(k, batch * kvHeads * tk * d, `${shape}: k`);
      checkLength(v, batch * kvHeads * tk * d, `${shape}: v`);
      const ops = rowOps(dtype, dp, lay.size);
      const mem = ops.mem;
      for (let b = 0; b < batch; b++) {
        for (let g = 0; g < kvHeads; g++) {
          const kvOff = (b * kvHeads + g) * tk * d;
          readRows(k, dtype, kvOff, tk, d, mem, K, dp);
          readRows(v, dtype, kvOff, tk, d, mem, V, dp);
          for (let h = g * group; h < (g + 1) * group; h++) {
            const qOff = (b * heads + h) * tq * d;
            readRows(q, dtype, qOff, tq, d, mem, Q, dp);
            mem.fill(0, O, O + tq * dp);
            for (let i = 0; i < tq; i++) {
              const n = causal ? Math.min(tk, i + tk - tq + 1) : tk;
              if (n === 0) {
                mem.fill(NaN, O + i * dp, O + i * dp + d);
                continue;
              }
              ops.dots(Q + i * dp, K, n, S);
              softmaxRow(mem, S, P, n, scale);
              ops.combine(P, V, n, O + i * dp);
            }
            writeRows(mem, O, dp, tq, d, o, outDtype, qOff);
          }
        }
      }
    },
  };
}
