// Tests the cpu paged_attention routine's block path for runs of prompt tokens (paged_prefill.ts: the wasm
// SIMD attention kernel over the run's keys gathered through the block table) against the per-token online
// softmax in doubles (paged.ts runDirect), on a ragged batch that mixes runs of two sequences, a decode
// token, a padding token and blocks scattered through the cache; and that tokenRuns finds exactly the runs.

import { describe, expect, it } from "vitest";
import { buildPagedAttention, runDirect } from "../../src/backends/cpu/paged.js";
import { MIN_RUN, tokenRuns } from "../../src/backends/cpu/paged_prefill.js";
import type { PagedAttentionSpec } from "../../src/core/routines.js";

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * 2;
  });
}

// Tokens: seq 0 at positions 3..9 (a run of 7), a padding token, seq 1 at 4 (a decode token), seq 0 at 11
// (a run of 1: not consecutive with 9), seq 1 at 12..14 (a run of 3, whose keys span 3 blocks).
const SEQ = Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1]);
const POS = Int32Array.from([3, 4, 5, 6, 7, 8, 9, -1, 4, 11, 12, 13, 14]);
// Block tables (2 sequences x 4 blocks of 5 slots), blocks out of order.
const TABLES = Int32Array.from([6, 2, 0, 7, 1, 5, 3, 4]);

function spec(heads: number, kvHeads: number, headDim: number): PagedAttentionSpec {
  return {
    numTokens: SEQ.length, heads, kvHeads, headDim, blockSize: 5, numBlocks: 8, numSeqs: 2, maxBlocksPerSeq: 4,
    scale: 1 / Math.sqrt(headDim), dtype: "f32", out: "f32",
  };
}

describe("cpu paged_attention, runs of prompt tokens as blocks", () => {
  it("finds the runs of consecutive positions of one sequence", () => {
    expect(MIN_RUN).toBe(2);
    expect(tokenRuns(spec(2, 1, 4), SEQ, POS)).toEqual([{ t0: 0, t1: 7 }, { t0: 10, t1: 13 }]);
  });

  it.each([
    [4, 2, 6], // unrolled per-token path for the rest (heads x dim <= 256), head dim padded to 8
    [8, 2, 40], // per-token loops for the rest, GQA groups of 4
    [3, 3, 16],
  ])("%i heads / %i kv heads x %i: equals the per-token path in doubles", (heads, kvHeads, d) => {
    const s = spec(heads, kvHeads, d);
    const q = rand(s.numTokens * heads * d, 1);
    const kc = rand(s.numBlocks * s.blockSize * kvHeads * d, 2);
    const vc = rand(s.numBlocks * s.blockSize * kvHeads * d, 3);
    const routine = buildPagedAttention(s);
    expect(routine.source).toContain("blocks in the wasm SIMD attention kernel");
    const got = new Float32Array(s.numTokens * heads * d).fill(NaN);
    routine.run([got, q, kc, vc, TABLES, SEQ, POS]);
    const want = new Float32Array(got.length).fill(NaN);
    runDirect(s, "reference", want, q, kc, vc, TABLES, SEQ, POS);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThan(2e-6);
    // The padding token's output is zeros; the tokens outside runs are the per-token path's own bits.
    const hd = heads * d;
    expect(Array.from(got.subarray(7 * hd, 8 * hd))).toEqual(new Array(hd).fill(0));
    expect(got.subarray(8 * hd, 10 * hd)).toEqual(want.subarray(8 * hd, 10 * hd));
  });

  it("keeps f64 data on the per-token path in doubles", () => {
    expect(buildPagedAttention({ ...spec(2, 1, 4), dtype: "f64", out: "f64" }).source).not.toContain("wasm");
  });
});
