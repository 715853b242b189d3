// paged.ts: the cpu routines over a paged KV cache: kv_write copies new rows into the cache at their
// slots (in place), paged_attention attends from each token of a ragged batch through its
// sequence's block table with an online softmax, in doubles. Semantics: src/core/routines.ts and
// the references in src/tensor/paged.ts.

import type { KvWriteSpec, PagedAttentionSpec } from "../../core/routines.js";
import type { FloatDType } from "./convert.js";
import { checkLength, readFloats, writeFloats } from "./convert.js";
import type { Floats } from "./paged_unrolled.js";
import { buildUnrolledPaged } from "./paged_unrolled.js";
import { runPrefill, tokenRuns } from "./paged_prefill.js";
import { hasAttentionKernel } from "./wasm/attention_kernel.js";

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
  const direct = (dtype === "f32" || dtype === "f64") && (outDtype === "f32" || outDtype === "f64");
  const unrolled = direct ? buildUnrolledPaged(spec, what) : undefined;
  // Runs of prompt tokens go through the wasm attention kernel as blocks (paged_prefill.ts), f32 data only.
  const blocks = dtype === "f32" && outDtype === "f32" && numTokens >= 2 && hasAttentionKernel();
  return {
    source: `// cpu routine ${what}: ${blocks ? "runs of prompt tokens as blocks in the wasm SIMD attention kernel (f32), other tokens " : ""}online softmax per token through block tables, in doubles${unrolled ? `, unrolled:\n${unrolled.source}` : direct ? " (direct reads)" : ""}`,
    run(views) {
      const [o, q, kc, vc, tables, tokenSeq, tokenPos] = views as [ArrayBufferView, ArrayBufferView, ArrayBufferView, ArrayBufferView, Int32Array, Int32Array, Int32Array];
      checkLength(o, numTokens * heads * d, `${what}: output`);
      checkLength(q, numTokens * heads * d, `${what}: q`);
      checkLength(kc, numBlocks * blockSize * kvHeads * d, `${what}: k cache`);
      checkLength(vc, numBlocks * blockSize * kvHeads * d, `${what}: v cache`);
      const runs = blocks ? tokenRuns(spec, tokenSeq, tokenPos) : [];
      if (runs.length > 0) {
        // NOTE: the per-token path skips the runs' tokens (a negative position writes zeros), then the blocks fill them.
        const rest = tokenPos.slice();
        for (const r of runs) rest.fill(-1, r.t0, r.t1);
        if (unrolled) unrolled.run(o as Floats, q as Floats, kc as Floats, vc as Floats, tables, tokenSeq, rest);
        else runDirect(spec, what, o as Floats, q as Floats, kc as Floats, vc as Floats, tables, tokenSeq, rest);
        for (const r of runs) runPrefill(spec, r, o as Float32Array, q as Float32Array, kc as Float32Array, vc as Float32Array, tables, tokenSeq, tokenPos);
        return;
      }
      if (unrolled) return unrolled.run(o as Floats, q as Floats, kc as Floats, vc as Floats, tables, tokenSeq, tokenPos);
      if (direct) return runDirect(spec, what, o as Floats, q as Floats, kc as Floats, vc as Floats, tables, tokenSeq, tokenPos);
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

/**
 * paged_attention for f32/f64 storage: the same online softmax as the general path (same operations in
 * the same order, so the same results), reading the typed arrays directly instead of copying each key
 * and value row into a double array, and walking each key row once for all the heads that share it.
 * NOTE: a serving step at batch 32 spent 70% of its time in the row copies of the general path.
 */
export function runDirect(spec: PagedAttentionSpec, what: string, o: Floats, q: Floats, kc: Floats, vc: Floats, tables: Int32Array, tokenSeq: Int32Array, tokenPos: Int32Array): void {
  const { numTokens, heads, kvHeads, headDim: d, blockSize, numSeqs, maxBlocksPerSeq, scale } = spec;
  const group = heads / kvHeads;
  const hd = heads * d;
  const rowLen = kvHeads * d;
  const m = new Float64Array(heads), l = new Float64Array(heads), acc = new Float64Array(hd), qi = new Float64Array(hd);
  for (let t = 0; t < numTokens; t++) {
    const pos = tokenPos[t]!, seq = tokenSeq[t]!;
    const ob = t * hd;
    if (pos < 0) {
      o.fill(0, ob, ob + hd);
      continue;
    }
    if (seq < 0 || seq >= numSeqs || pos >= maxBlocksPerSeq * blockSize) {
      throw new Error(`${what}: token ${t} has sequence ${seq} / position ${pos} outside the block tables (${numSeqs} x ${maxBlocksPerSeq})`);
    }
    for (let x = 0; x < hd; x++) qi[x] = q[ob + x]!;
    m.fill(-Infinity);
    l.fill(0);
    acc.fill(0);
    const tableBase = seq * maxBlocksPerSeq;
    for (let j = 0; j <= pos; j++) {
      const block = tables[tableBase + Math.floor(j / blockSize)]!;
      const rowBase = (block * blockSize + (j % blockSize)) * rowLen;
      for (let h = 0; h < heads; h++) {
        const kb = rowBase + Math.floor(h / group) * d;
        const qb = h * d;
        let s = 0;
        for (let x = 0; x < d; x++) s += qi[qb + x]! * kc[kb + x]!;
        s *= scale;
        const mOld = m[h]!;
        if (s <= mOld) {
          // NOTE: the max holds, so the general update's correction is exp(0) = 1: skipping it changes no bit.
          const p = Math.exp(s - mOld);
          l[h] = l[h]! + p;
          for (let x = 0; x < d; x++) acc[qb + x] = acc[qb + x]! + p * vc[kb + x]!;
        } else {
          // A new max (or NaN, which propagates as in the general path); here p = exp(0) = 1 unless s is NaN.
          const corr = Math.exp(mOld - s);
          const p = Math.exp(s - s);
          l[h] = l[h]! * corr + p;
          for (let x = 0; x < d; x++) acc[qb + x] = acc[qb + x]! * corr + p * vc[kb + x]!;
          m[h] = s;
        }
      }
    }
    for (let h = 0; h < heads; h++) {
      const inv = l[h]!;
      for (let x = 0; x < d; x++) o[ob + h * d + x] = acc[h * d + x]! / inv;
    }
  }
}
