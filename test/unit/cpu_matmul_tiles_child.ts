// cpu_matmul_tiles_child.ts: a process for cpu_matmul_tiles.test.ts. The micro-tile (3 x 12 with FMA,
// 4 x 8 without) and the thread count are fixed per process (KILN_CPU_FMA, KILN_THREADS), so the test runs
// this under each. It multiplies seeded f32 matrices on the packed paths (plain and swapped) at shapes off
// every multiple the kernel works in: m, n, k around MR (3, 4), NR (8, 12) and KC (256), B's rows at
// multiples of 64 floats (which bStride pads), A and B each stored either way, batches with their own or a shared (stride 0) B. Prints one JSON line: the tile, the
// path names the routines chose, how many products the pool shared, a sha256 of every output's bits, and
// the largest error against float64 relative to the f32 accumulation bound ((k + 1) 2^-24 sum |a b|).
// Run: [KILN_CPU_FMA=0] KILN_THREADS=N node --import tsx cpu_matmul_tiles_child.ts

import { createHash } from "node:crypto";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import { matmulKernel } from "../../src/backends/cpu/wasm/matmul_kernel.js";
import { matmulPool } from "../../src/backends/cpu/wasm/matmul_threads.js";

const cpu = new CpuBackend();
const hash = createHash("sha256");
let s = 11;
const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1));
// [batch, m, k, n, transA, transB, B shared by the batch]: rows past the few-rows path (> 256), so every
// product runs on the micro-kernel tiles; m % 3 and m % 4, n % 8 and n % 12, k % 256 all nonzero somewhere.
const cases: [number, number, number, number, boolean, boolean, boolean][] = [
  [1, 301, 257, 133, false, false, false],
  [1, 290, 513, 100, true, false, false],
  [1, 262, 255, 97, false, true, false], // B (n, k) transposed in: fewer floats than the swapped path moves
  [1, 259, 70, 1024, false, true, false], // the same, B^T's rows padded (4 x 8: 1024 -> 1028 floats)
  [1, 320, 520, 1030, false, true, false], // swapped (C^T = B . A^T): wide B (n, k); 4 x 8 pads A^T's rows (320)
  [1, 301, 600, 900, true, true, false], // swapped with A stored (k, m), read in place as the kernel's B
  [2, 263, 259, 37, true, true, false],
  [3, 265, 130, 64, false, false, true], // B's rows padded to 68 floats (bStride), copied once for the batch
  [1, 270, 300, 128, false, false, false],
];
const paths = new Set<string>();
let worst = 0;
for (const [batch, m, k, n, transA, transB, shared] of cases) {
  const a = rand(batch * m * k), b = rand((shared ? 1 : batch) * k * n);
  const exe = await cpu.routine("matmul", { batch, m, n, k, transA, transB, aBatchStride: m * k, bBatchStride: shared ? 0 : k * n, dtype: "f32", out: "f32" });
  paths.add((exe as { source?: string }).source?.split("\n")[0]?.replace(/^\/\/ cpu routine [^:]*: /, "") ?? "?");
  const put = (x: Float32Array) => { const buf = cpu.alloc(x.byteLength); cpu.write(buf, new Uint8Array(x.buffer)); return buf; };
  const out = cpu.alloc(batch * m * n * 4);
  cpu.launch(exe, [out, put(a), put(b)]);
  const c = new Float32Array((await cpu.read(out)).slice().buffer);
  hash.update(new Uint8Array(c.buffer));
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * m * k, bo = shared ? 0 : bi * k * n;
    // Every third row, and all of the last row tiles (where the tiles' edges are).
    for (let i = 0; i < m; i += i >= m - 13 ? 1 : 3) {
      for (let j = 0; j < n; j++) {
        let want = 0, mag = 0;
        for (let p = 0; p < k; p++) {
          const x = a[ao + (transA ? p * m + i : i * k + p)]! * b[bo + (transB ? j * k + p : p * n + j)]!;
          want += x;
          mag += Math.abs(x);
        }
        worst = Math.max(worst, Math.abs(c[bi * m * n + i * n + j]! - want) / ((k + 1) * 2 ** -24 * mag + 1e-30));
      }
    }
  }
}
const kernel = matmulKernel();
console.log(JSON.stringify({ fma: kernel.fma, tile: kernel.tile, threads: kernel.threads, shared: matmulPool()?.shared.tiles ?? 0, paths: [...paths].sort(), sha256: hash.digest("hex"), worst }));
