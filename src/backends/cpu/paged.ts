// paged.ts: the cpu routines over a paged KV cache: kv_write copies new rows into the cache at their
// slots (in place), paged_attention attends from each token of a ragged batch through its
// sequence's block table with an online softmax, in doubles. Semantics: src/core/routines.ts and
// the references in src/tensor/paged.ts.

import type { KvWriteSpec, PagedAttentionSpec } from "../../core/routines.js";
import type { FloatDType } from "./convert.js";
import { checkLength, readFloats, writeFloats } from "./convert.js";

type Built = { source: string; run: (views: ArrayBufferView[]) => void };

export function buildKvWrite(spec: KvWriteSpec): Built {
  const { numSlots, rowSize, rows } = spec;
  const what = `kv_write ${rows} rows of ${rowSize} into (${numSlots}, ${rowSize}) ${spec.dtype}`;
  return {
    source: `// cpu routine ${what}: row copies`,
    run(views) {
      // Slot 0 (the output) is the cache itself: the routine writes in place.
      const [cache, , slots, values] = views as [ArrayBufferView, ArrayBufferView, Int32Array, ArrayBufferView];
      checkLength(cache, numSlots * rowSize, `${what}: cache`);
      checkLength(values, rows * rowSize, `${what}: values`);
      // Same dtype on both sides: copy the stored elements (f16/bf16 bits included) untouched.
      const c = cache as unknown as Float32Array, v = values as unknown as Float32Array;
      for (let i = 0; i < rows; i++) {
        const slot = slots[i]!;
        if (slot < 0) continue;
        if (slot >= numSlots) throw new Error(`${what}: slot ${slot} of row ${i} is out of range`);
        c.set(v.subarray(i * rowSize, (i + 1) * rowSize), slot * rowSize);
      }
    },
  };
}

export function buildPagedAttention(spec: PagedAttentionSpec): Built {
  const { numTokens, heads, kvHeads, headDim: d, blockSize, numBlocks, numSeqs, maxBlocksPerSeq, scale } = spec;
  const dtype = spec.dtype as FloatDType;
  const outDtype = spec.out as FloatDType;
  const group = heads / kvHeads;
  const what = `paged_attention ${numTokens} tokens, ${heads}/${kvHeads} heads x ${d}, ${numBlocks} blocks of ${blockSize}`;
  return {
    source: `// cpu routine ${what}: online softmax per token through block tables, in doubles`,
    run(views) {
      const [o, q, kc, vc, tables, tokenSeq, tokenPos] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView, Int32Array, Int32Array, Int32Array];
      checkLength(o, numTokens * heads * d, `${what}: output`);
      checkLength(q, numTokens * heads * d, `${what}: q`);
      checkLength(kc, numBlocks * blockSize * kvHeads * d, `${what}: k cache`);
      checkLength(vc, numBlocks * blockSize * kvHeads * d, `${what}: v cache`);
      const qi = new Float64Array(d), kr = new Float64Array(d), vr = new Float64Array(d), acc = new Float64Array(d);
      const zero = new Float64Array(heads * d);
      for (let t = 0; t < numTokens; t++) {
        const pos = tokenPos[t]!, seq = tokenSeq[t]!;
        if (pos < 0) {
          writeFloats(zero, 0, heads * d, o, outDtype, t * heads * d);
          continue;
        }
        if (seq < 0 || seq >= numSeqs || pos >= maxBlocksPerSeq * blockSize) {
          throw new Error(`${what}: token ${t} has sequence ${seq} / position ${pos} outside the block tables (${numSeqs} x ${maxBlocksPerSeq})`);
        }
        for (let h = 0; h < heads; h++) {
          const g = Math.floor(h / group);
          readFloats(q, dtype, (t * heads + h) * d, d, qi, 0);
          let m = -Infinity, l = 0;
          acc.fill(0);
          for (let j = 0; j <= pos; j++) {
            const block = tables[seq * maxBlocksPerSeq + Math.floor(j / blockSize)]!;
            const row = (block * blockSize + (j % blockSize)) * kvHeads + g;
            readFloats(kc, dtype, row * d, d, kr, 0);
            let s = 0;
            for (let x = 0; x < d; x++) s += qi[x]! * kr[x]!;
            s *= scale;
            const mNew = s > m || s !== s ? s : m;
            const corr = Math.exp(m - mNew);
            const p = Math.exp(s - mNew);
            readFloats(vc, dtype, row * d, d, vr, 0);
            l = l * corr + p;
            for (let x = 0; x < d; x++) acc[x] = acc[x]! * corr + p * vr[x]!;
            m = mNew;
          }
          for (let x = 0; x < d; x++) acc[x] = acc[x]! / l;
          writeFloats(acc, 0, d, o, outDtype, (t * heads + h) * d);
        }
      }
    },
  };
}
