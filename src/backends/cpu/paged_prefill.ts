// paged_prefill.ts: the cpu paged_attention routine's path for runs of prompt tokens. A run is a stretch of
// consecutive tokens of one sequence at consecutive positions (a prompt, or a chunk of one, in a ragged
// batch); its queries attend causally to the same keys, so the run goes through the wasm SIMD attention
// kernel (wasm/attention_kernel.ts) as one block per head: that kv head's cache rows are gathered through
// the block table once (for all its query heads), then one call computes every query row of the run
// (f32 dots 4 keys at a time, the fast exp, P V in registers). Tokens outside such runs (decode steps) stay
// on paged.ts's per-token online softmax. It owns finding the runs and the gathering; the kernel owns the math.
// NOTE: f32 in the kernel where the per-token path computes in doubles (as the dense attention routine
// does for f32 data): prefill logits move by float rounding, within the conformance suite's tolerance.

import type { PagedAttentionSpec } from "../../core/routines.js";
import { Layout, pad4 } from "./attention_rows.js";
import { attentionKernel, launchMemory } from "./wasm/attention_kernel.js";

/** Shortest run that takes the kernel: a decode token (a run of 1) stays on the per-token path. */
export const MIN_RUN = 2;

/** [start, end) of the tokens of one run. */
export interface TokenRun {
  readonly t0: number;
  readonly t1: number;
}

/**
 * The runs of at least MIN_RUN tokens in a batch: same sequence, positions p, p + 1, ... (all valid, so the
 * per-token path keeps its checks and errors for everything else).
 */
export function tokenRuns(spec: PagedAttentionSpec, tokenSeq: Int32Array, tokenPos: Int32Array): TokenRun[] {
  const { numTokens, numSeqs, maxBlocksPerSeq, blockSize } = spec;
  const limit = maxBlocksPerSeq * blockSize;
  const ok = (t: number) => tokenPos[t]! >= 0 && tokenPos[t]! < limit && tokenSeq[t]! >= 0 && tokenSeq[t]! < numSeqs;
  const runs: TokenRun[] = [];
  let t = 0;
  while (t < numTokens) {
    if (!ok(t)) {
      t++;
      continue;
    }
    let e = t + 1;
    while (e < numTokens && ok(e) && tokenSeq[e] === tokenSeq[t] && tokenPos[e] === tokenPos[e - 1]! + 1) e++;
    if (e - t >= MIN_RUN) runs.push({ t0: t, t1: e });
    t = e;
  }
  return runs;
}

/**
 * o (numTokens, heads, d) for the tokens of `run`, from q (same layout) and the caches (numBlocks *
 * blockSize, kvHeads, d), f32. The run's first token at position p0 sees keys 0..p0, each next one more.
 */
export function runPrefill(spec: PagedAttentionSpec, run: TokenRun, o: Float32Array, q: Float32Array, kc: Float32Array, vc: Float32Array, tables: Int32Array, tokenSeq: Int32Array, tokenPos: Int32Array): void {
  const { heads, kvHeads, headDim: d, blockSize, maxBlocksPerSeq, scale } = spec;
  const group = heads / kvHeads;
  const hd = heads * d;
  const rowLen = kvHeads * d;
  const dp = pad4(d);
  const rows = run.t1 - run.t0;
  const p0 = tokenPos[run.t0]!;
  const tk = p0 + rows; // keys 0 .. the last token's position
  const tableBase = tokenSeq[run.t0]! * maxBlocksPerSeq;
  // Working memory (f32 elements, rows dp apart, pad lanes 0): K and V of one kv head with 3 rows of slack
  // (the kernel reads keys 4 at a time), Q and O of one query head, one row of scores, the constants.
  const lay = new Layout();
  const [K, V, Q, O] = [lay.region((tk + 3) * dp), lay.region((tk + 3) * dp), lay.region(rows * dp), lay.region(rows * dp)];
  const [S, C] = [lay.region(tk + 3), lay.region(4)];
  const kern = attentionKernel(dp / 4);
  const mem = launchMemory(kern, lay.size, C, scale);
  // Cache row offsets (of kv head 0) of keys 0 .. tk - 1, through the block table.
  const rowAt = new Int32Array(tk);
  for (let j = 0; j < tk; j++) rowAt[j] = (tables[tableBase + Math.floor(j / blockSize)]! * blockSize + (j % blockSize)) * rowLen;
  for (let g = 0; g < kvHeads; g++) {
    const off = g * d;
    for (let j = 0; j < tk; j++) {
      const src = rowAt[j]! + off, dst = j * dp;
      for (let x = 0; x < d; x++) {
        mem[K + dst + x] = kc[src + x]!;
        mem[V + dst + x] = vc[src + x]!;
      }
    }
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let r = 0; r < rows; r++) {
        const src = (run.t0 + r) * hd + h * d, dst = Q + r * dp;
        for (let x = 0; x < d; x++) mem[dst + x] = q[src + x]!;
      }
      kern.fwd(4 * Q, 4 * K, 4 * V, 4 * O, 4 * S, rows, p0 + 1, 1, tk, 4 * C);
      for (let r = 0; r < rows; r++) {
        const dst = (run.t0 + r) * hd + h * d, src = O + r * dp;
        for (let x = 0; x < d; x++) o[dst + x] = mem[src + x]!;
      }
    }
  }
}
