// The cpu paged_attention routine's f32/f64 paths (unrolled for small heads, loops for large ones)
// against the primitive reference computed in f64, with GQA, scattered blocks, ragged positions and
// padding. The conformance suite covers small heads; this covers the loop path too.

import { describe, expect, it } from "vitest";
import type { DType } from "../../src/index.js";
import { getBackend, tensor, withRoutines } from "../../src/index.js";
import { runDirect } from "../../src/backends/cpu/paged.js";
import { buildUnrolledPaged, MAX_UNROLLED } from "../../src/backends/cpu/paged_unrolled.js";
import { pagedAttention } from "../../src/tensor/paged.js";

const cpu = await getBackend("cpu");

function rand(n: number, seed: number): Float64Array {
  let x = seed;
  return Float64Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);
}

describe("cpu paged_attention", () => {
  for (const [heads, kvHeads, d] of [[8, 4, 8], [4, 2, 96]] as const) {
    const path = heads * d <= MAX_UNROLLED ? "unrolled" : "loops";
    for (const dtype of ["f32", "f64"] as DType[]) {
      it(`${path} (${heads}/${kvHeads} heads x ${d}) ${dtype} matches the f64 reference`, async () => {
        const bs = 4, blocks = 8, t = 6;
        const at = (data: Float64Array, shape: number[], dt: DType) => tensor(data, { backend: cpu, dtype: dt, shape });
        const q = rand(t * heads * d, 1), k = rand(blocks * bs * kvHeads * d, 2), v = rand(blocks * bs * kvHeads * d, 3);
        const ints = (xs: number[], shape?: number[]) => tensor(xs, { backend: cpu, dtype: "i32", ...(shape ? { shape } : {}) });
        const args = (dt: DType) => ({
          q: at(q, [t, heads, d], dt), kCache: at(k, [blocks * bs, kvHeads, d], dt), vCache: at(v, [blocks * bs, kvHeads, d], dt),
          blockTables: ints([6, 1, 3, 0, 7, 0, 2, 5, 4], [3, 3]), tokenSeq: ints([0, 0, 1, 2, 2, 0]), tokenPos: ints([9, 10, 3, 0, 7, -1]), blockSize: bs,
        });
        const got = Array.from(await pagedAttention(args(dtype)).data());
        const want = Array.from(await withRoutines(false, () => pagedAttention(args("f64"))).data());
        const tol = dtype === "f32" ? 1e-5 : 1e-12;
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i]!)));
        expect(got.slice(5 * heads * d).every((x) => x === 0)).toBe(true); // the padding token
      });
    }
  }

  // The unrolled code is a faster shape of runDirect, not a different computation: greedy serving relies
  // on every path giving the same bits (a token's text must not depend on which path its batch took).
  it("unrolled gives the same bits as the direct loops, NaN and -Infinity scores included", () => {
    const spec = { numTokens: 5, heads: 8, kvHeads: 4, headDim: 8, blockSize: 4, numBlocks: 8, numSeqs: 3, maxBlocksPerSeq: 3, scale: 1 / Math.sqrt(8), dtype: "f32", out: "f32" } as const;
    const q = Float32Array.from(rand(5 * 64, 4)), k = Float32Array.from(rand(32 * 32, 5)), v = Float32Array.from(rand(32 * 32, 6));
    k[3] = Number.NaN;
    q[70] = -Infinity;
    const tables = Int32Array.from([6, 1, 3, 0, 7, 0, 2, 5, 4]), seq = Int32Array.from([0, 0, 1, 2, 2]), pos = Int32Array.from([9, 10, 3, 0, 7]);
    const a = new Float32Array(5 * 64), b = new Float32Array(5 * 64);
    buildUnrolledPaged(spec, "test")!.run(a, q, k, v, tables, seq, pos);
    runDirect(spec, "test", b, q, k, v, tables, seq, pos);
    // The NaN key reaches some outputs; the rest are ordinary numbers.
    expect(a.some(Number.isNaN)).toBe(true);
    expect(a.filter(Number.isFinite).length).toBeGreaterThan(200);
    for (let i = 0; i < a.length; i++) expect(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i])), `element ${i}: ${a[i]} vs ${b[i]}`).toBe(true);
  });
});
