// Tests the cpu matmul's swapped packed path (matmul_swapped.ts: x @ W^T computed as (W . x^T)^T so W, stored
// (n, k), is read in place instead of transposed): it must give the same bits as the plain packed path on
// the same product with B laid out (k, n) (same sums in the same order), and match a float64 reference
// within the f32 accumulation bound. Shapes are odd (row, column and k tails) and past the few-rows path's
// 256 rows, so both products run on the packed micro-kernel whatever the thread count.

import { describe, expect, it } from "vitest";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import type { DType } from "../../src/core/dtype.js";
import { decode, encode, roundTo } from "../../src/core/dtype.js";
import type { MatmulSpec } from "../../src/core/routines.js";

const cpu = new CpuBackend();

function rand(n: number, dtype: DType, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return roundTo(s / 2 ** 31 - 1, dtype);
  });
}

/** Runs the matmul routine for spec on a and b; returns the output bytes and the routine's source line. */
async function run(spec: MatmulSpec, a: number[], b: number[]): Promise<{ out: Uint8Array; source: string }> {
  const exe = await cpu.routine("matmul", spec);
  const ob = cpu.alloc(spec.batch * spec.m * spec.n * 4);
  const bufs = [a, b].map((values) => {
    const bytes = encode(values, spec.dtype);
    const buf = cpu.alloc(bytes.byteLength);
    cpu.write(buf, bytes);
    return buf;
  });
  cpu.launch(exe, [ob, ...bufs]);
  return { out: await cpu.read(ob), source: cpu.source?.(exe) ?? "" };
}

/** B stored (n, k) per batch -> (k, n). */
function transposeB(b: number[], batch: number, n: number, k: number): number[] {
  const t = new Array<number>(b.length);
  for (let bi = 0; bi < batch; bi++) for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) t[bi * n * k + p * n + j] = b[bi * n * k + j * k + p]!;
  return t;
}

describe("cpu matmul, swapped packed path (B stored (n, k) read in place)", () => {
  it.each([
    { batch: 1, m: 259, k: 517, n: 1001, transA: false, dtype: "f32" as DType },
    { batch: 2, m: 260, k: 520, n: 600, transA: false, dtype: "f32" as DType },
    { batch: 1, m: 261, k: 300, n: 603, transA: true, dtype: "f32" as DType },
    { batch: 1, m: 300, k: 520, n: 1000, transA: false, dtype: "f16" as DType },
  ])("$batch x ($m x $k) . ($n x $k)^T, A transposed: $transA, $dtype: the plain path's bits, near float64", async ({ batch, m, k, n, transA, dtype }) => {
    const base = { batch, m, n, k, transA, aBatchStride: m * k, bBatchStride: n * k, dtype, out: "f32" as DType };
    const a = rand(batch * m * k, dtype, 3);
    const b = rand(batch * n * k, dtype, 11);
    const swapped = await run({ ...base, transB: true }, a, b);
    expect(swapped.source).toContain("swapped");
    const plain = await run({ ...base, transB: false }, a, transposeB(b, batch, n, k));
    expect(plain.source).not.toContain("swapped");
    const got = decode(swapped.out, "f32", batch * m * n);
    expect(Buffer.from(swapped.out).equals(Buffer.from(plain.out)), "bits equal to the plain packed path").toBe(true);
    // float64 reference on a sample of elements (every 7th row, every 5th column), f32 accumulation bound.
    for (let bi = 0; bi < batch; bi++) {
      for (let i = 0; i < m; i += 7) {
        for (let j = 0; j < n; j += 5) {
          let want = 0, mag = 0;
          for (let p = 0; p < k; p++) {
            const x = a[bi * m * k + (transA ? p * m + i : i * k + p)]! * b[bi * n * k + j * k + p]!;
            want += x;
            mag += Math.abs(x);
          }
          const g = got[(bi * m + i) * n + j]!;
          if (!(Math.abs(g - want) <= (k + 1) * 2 ** -24 * mag + 1e-30)) expect.fail(`batch ${bi} (${i}, ${j}): got ${g}, want ${want}`);
        }
      }
    }
  }, 30_000);
});
