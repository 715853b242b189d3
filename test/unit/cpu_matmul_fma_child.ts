// cpu_matmul_fma_child.ts: a process for cpu_matmul_fma.test.ts. Whether the matmul micro-kernel uses
// relaxed-SIMD FMA is fixed per process (the engine's flags, KILN_CPU_FMA), so the test runs this under each
// setting. It multiplies seeded matrices on the packed path (odd sizes past the few-rows path's 256 rows)
// and prints one JSON line: whether the kernel used FMA and the largest error against float64 relative to
// the f32 accumulation bound ((k + 1) 2^-24 sum |a b|), which must stay below 1.
// Run: [KILN_CPU_FMA=0|1] node [--experimental-wasm-relaxed-simd] --import tsx cpu_matmul_fma_child.ts

import { CpuBackend } from "../../src/backends/cpu/backend.js";
import { matmulKernel } from "../../src/backends/cpu/wasm/matmul_kernel.js";

const cpu = new CpuBackend();
let s = 7;
const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1));
let worst = 0;
for (const [m, k, n, transB] of [[300, 257, 131, false], [261, 300, 603, true]] as const) {
  const a = rand(m * k), b = rand(k * n);
  const exe = await cpu.routine("matmul", { batch: 1, m, n, k, transA: false, transB, aBatchStride: m * k, bBatchStride: k * n, dtype: "f32", out: "f32" });
  const put = (x: Float32Array) => { const buf = cpu.alloc(x.byteLength); cpu.write(buf, new Uint8Array(x.buffer)); return buf; };
  const out = cpu.alloc(m * n * 4);
  cpu.launch(exe, [out, put(a), put(b)]);
  const c = new Float32Array((await cpu.read(out)).slice().buffer);
  for (let i = 0; i < m; i += 3) {
    for (let j = 0; j < n; j++) {
      let want = 0, mag = 0;
      for (let p = 0; p < k; p++) {
        const x = a[i * k + p]! * b[transB ? j * k + p : p * n + j]!;
        want += x;
        mag += Math.abs(x);
      }
      worst = Math.max(worst, Math.abs(c[i * n + j]! - want) / ((k + 1) * 2 ** -24 * mag + 1e-30));
    }
  }
}
console.log(JSON.stringify({ fma: matmulKernel().fma, worst }));
