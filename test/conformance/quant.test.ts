// Conformance of the quantized matmul (matmul_q: Q8_0, Q4_0 and Q4_K weights read in place) on every backend:
// the routine against dequantize-then-f32 matmul, where the dequantization is the host loader's
// (models/formats/dequant.ts, bit-identical to ggml's) and the matmul is done in f64 on the host. The
// tensor layer's primitive dequantization (the routine's fallback) is checked bit for bit against the same.

import { describe, expect, it } from "vitest";
import type { Backend } from "../../src/index.js";
import { tensor, withRoutines } from "../../src/index.js";
import type { QuantFormat } from "../../src/core/dtype.js";
import { dequantize, encodeQ4_0, encodeQ8_0 } from "../../src/models/formats/dequant.js";
import { encodeQ4K } from "../../src/models/formats/encode_q4k.js";
import { dequantFp8Blocks, encodeFp8Blocks } from "../../src/models/formats/fp8_blocks.js";
import { dequantizeRows, gatherQuantizedRows, matmulQuantized, quantizedTensor } from "../../src/tensor/quant.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";
import { backendsUnderTest, expectClose, rng } from "./harness.js";

const backends = await backendsUnderTest();
// NOTE: FP8 blocks take the matrix's row length (one scale per row); the others are row-agnostic.
const ENCODE: Record<QuantFormat, (x: Float32Array, cols: number) => Uint8Array> = {
  q8_0: encodeQ8_0, q4_0: encodeQ4_0, q4_k: encodeQ4K, fp8e4m3_b128: (x, cols) => encodeFp8Blocks(x, x.length / cols, cols),
};
/** The host decoder: ggml's (models/formats/dequant.ts) or, for kiln's FP8 blocks, fp8_blocks.ts. */
const hostDequant = (format: QuantFormat, bytes: Uint8Array, n: number): Float32Array =>
  format === "fp8e4m3_b128" ? dequantFp8Blocks(bytes, n) : dequantize(format, bytes, n);

function randomMatrix(n: number, seed: number): Float32Array {
  const r = rng(seed);
  // NOTE: a wide spread of block magnitudes, so the f16 scales cover normal and small exponents.
  return Float32Array.from({ length: n }, (_, i) => (r() * 2 - 1) * (i % 64 < 32 ? 1 : 0.01));
}

/** x (m, k) @ deq(w)^T in f64 on the host. */
function hostMatmul(x: Float32Array, w: Float32Array, m: number, n: number, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t]! * w[j * k + t]!;
      out.push(s);
    }
  }
  return out;
}

async function check(backend: Backend, format: QuantFormat, m: number, n: number, k: number, label: string): Promise<void> {
  const bytes = ENCODE[format](randomMatrix(n * k, 7 + m), k);
  const deq = hostDequant(format, bytes, n * k);
  const x = randomMatrix(m * k, 3 + n);
  const w = quantizedTensor(bytes, [n, k], format, backend);
  // NOTE: cpu and webgpu have the routine; cuda has none yet (and the CUDA recording backend of
  // cuda_render.test.ts builds no routines), so there the dequantize-from-primitives fallback is what runs.
  if (backend.name !== "cuda") expect(backend.supportsRoutine("matmul_q", { m, n, k, format, dtype: "f32", out: "f32" }), `${label}: routine present`).toBe(true);
  const got = Array.from(await matmulQuantized(tensor(x, { backend, shape: [m, k] }), w).data() as Float32Array);
  // NOTE: f32 sums of k products against an f64 sum: the tolerance grows with sqrt(k).
  const tol = 3e-6 * Math.sqrt(k) * 4;
  expectClose(got, hostMatmul(x, deq, m, n, k), { rtol: tol, atol: tol }, label);
}

for (const b of backends) {
  describe.skipIf(!b.backend)(`quantized matmul on ${b.name}${skipLabel(noBackend(b.name, b.missing))}`, () => {
    for (const format of ["q8_0", "q4_0", "q4_k", "fp8e4m3_b128"] as const) {
      // NOTE: Q4_K rows are whole 256-element super-blocks; n = 130 on cpu puts the GEMV on the worker threads.
      const shapes = format === "q4_k"
        ? [[1, 1, 256], [1, 17, 512], [1, 130, 256], [5, 13, 256], [33, 9, 768]] as const
        : format === "fp8e4m3_b128" ? [[1, 1, 128], [1, 17, 384], [5, 13, 256], [33, 9, 128]] as const
        : [[1, 1, 32], [1, 17, 64], [1, 40, 256], [5, 13, 96], [33, 9, 128]] as const;
      it(`${format}: GEMV (decode) and GEMM (prefill) against dequantize-then-f32`, async () => {
        for (const [m, n, k] of shapes) {
          await check(b.backend!, format, m, n, k, `matmul_q ${format} (${m}x${k}) @ (${n}x${k})^T on ${b.name}`);
        }
      }, 30_000);

      it(`${format}: dequantization from primitives equals the host loader's, bit for bit`, async () => {
        const [n, k] = [6, format === "q4_k" ? 512 : format === "fp8e4m3_b128" ? 256 : 64];
        const bytes = ENCODE[format](randomMatrix(n * k, 11), k);
        const want = Array.from(hostDequant(format, bytes, n * k));
        const w = quantizedTensor(bytes, [n, k], format, b.backend!);
        const got = Array.from(await withRoutines(false, () => dequantizeRows(w.bytes, format, k)).data() as Float32Array);
        expect(got).toEqual(want);
      }, 30_000);
    }

    it("an embedding lookup on a quantized table dequantizes the gathered rows (q8_0, q4_0, q4_k)", async () => {
      for (const format of ["q8_0", "q4_0", "q4_k"] as const) {
        const [n, k] = [9, format === "q4_k" ? 256 : 64];
        const bytes = ENCODE[format](randomMatrix(n * k, 5), k);
        const table = dequantize(format, bytes, n * k);
        const ids = [3, 0, 8, 3];
        const w = quantizedTensor(bytes, [n, k], format, b.backend!);
        const got = Array.from(await gatherQuantizedRows(w, tensor(Int32Array.from(ids), { backend: b.backend!, dtype: "i32" }), "f32").data() as Float32Array);
        expect(got).toEqual(ids.flatMap((i) => Array.from(table.subarray(i * k, (i + 1) * k))));
      }
    }, 30_000);

    it("bad input: a row that is not whole blocks, and a byte count that does not fit the shape", () => {
      expect(() => quantizedTensor(new Uint8Array(34), [1, 48], "q8_0", b.backend!, "blk.0.ffn_down.weight"))
        .toThrow(/blk\.0\.ffn_down\.weight: a row of 48 elements is not a whole number of q8_0 blocks \(32 elements each\)/);
      expect(() => quantizedTensor(new Uint8Array(35), [1, 32], "q8_0", b.backend!, "w"))
        .toThrow(/w: 35 bytes of q8_0 blocks for shape \(1, 32\); that shape needs 34/);
    });
  });
}
