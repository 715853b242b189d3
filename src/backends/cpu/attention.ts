// attention.ts is the cpu attention routine: out = softmax(q k^T * scale [+ causal mask]) v, flash-style:
// one query row at a time with an online softmax over blocks of keys, so no (Tq, Tk) matrix is formed.
// Computed in doubles. q (B, H, Tq, D); k, v (B, KVH, Tk, D); query head h reads kv head h / (H / KVH).
// Causal: query i sees keys j <= i + (Tk - Tq); a query that sees no key gets 0/0 = NaN, like the dense formula.

import type { AttentionSpec } from "../../core/routines.js";
import type { FloatDType } from "./convert.js";
import { checkLength, readFloats, writeFloats } from "./convert.js";

/** Keys per online-softmax step: scores of a block share one max update and one rescale of the accumulator. */
const BK = 64;

export function buildAttention(spec: AttentionSpec): { source: string; run: (views: ArrayBufferView[]) => void } {
  const { batch, heads, kvHeads, tq, tk, headDim: d, causal, scale } = spec;
  const dtype = spec.dtype as FloatDType;
  const outDtype = spec.out as FloatDType;
  const group = heads / kvHeads;
  const shape = `attention q(${batch}, ${heads}, ${tq}, ${d}) kv(${batch}, ${kvHeads}, ${tk}, ${d})${causal ? " causal" : ""} ${dtype}->${outDtype}`;
  return {
    source: `// cpu routine ${shape}: online softmax over blocks of ${BK} keys in doubles`,
    run(views) {
      const [o, q, k, v] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView];
      checkLength(o, batch * heads * tq * d, `${shape}: output`);
      checkLength(q, batch * heads * tq * d, `${shape}: q`);
      checkLength(k, batch * kvHeads * tk * d, `${shape}: k`);
      checkLength(v, batch * kvHeads * tk * d, `${shape}: v`);
      const kh = new Float64Array(tk * d); // (Tk, D) of one kv head
      const vh = new Float64Array(tk * d);
      const qi = new Float64Array(d);
      const acc = new Float64Array(d);
      const s = new Float64Array(BK);
      for (let b = 0; b < batch; b++) {
        for (let g = 0; g < kvHeads; g++) {
          const kvOff = (b * kvHeads + g) * tk * d;
          readFloats(k, dtype, kvOff, tk * d, kh, 0);
          readFloats(v, dtype, kvOff, tk * d, vh, 0);
          for (let h = g * group; h < (g + 1) * group; h++) {
            for (let i = 0; i < tq; i++) {
              const qOff = ((b * heads + h) * tq + i) * d;
              readFloats(q, dtype, qOff, d, qi, 0);
              const visible = causal ? Math.min(tk, i + tk - tq + 1) : tk;
              let m = -Infinity; // running max of the scores
              let l = 0; // running sum of exp(score - m)
              acc.fill(0);
              for (let j0 = 0; j0 < visible; j0 += BK) {
                const nb = Math.min(BK, visible - j0);
                let mb = -Infinity;
                for (let jj = 0; jj < nb; jj++) {
                  const kr = (j0 + jj) * d;
                  let dot = 0;
                  for (let x = 0; x < d; x++) dot += qi[x]! * kh[kr + x]!;
                  const sc = (s[jj] = dot * scale);
                  if (sc > mb || sc !== sc) mb = sc;
                }
                const mNew = mb > m || mb !== mb ? mb : m;
                // NOTE: while every score so far is -inf, they all weigh 0; skipping keeps exp(-inf - -inf) = NaN out.
                if (mNew === -Infinity) continue;
                const corr = Math.exp(m - mNew);
                if (corr !== 1) {
                  l *= corr;
                  for (let x = 0; x < d; x++) acc[x] = acc[x]! * corr;
                }
                for (let jj = 0; jj < nb; jj++) {
                  const p = Math.exp(s[jj]! - mNew);
                  l += p;
                  const vr = (j0 + jj) * d;
                  for (let x = 0; x < d; x++) acc[x] = acc[x]! + p * vh[vr + x]!;
                }
                m = mNew;
              }
              for (let x = 0; x < d; x++) acc[x] = acc[x]! / l;
              writeFloats(acc, 0, d, o, outDtype, qOff);
            }
          }
        }
      }
    },
  };
}
