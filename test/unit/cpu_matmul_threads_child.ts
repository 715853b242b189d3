// cpu_matmul_threads_child.ts: a process for cpu_matmul_threads.test.ts. The thread count of the cpu
// matmul is fixed per process (KILN_CPU_THREADS), so the test runs this once per count. It multiplies
// seeded random matrices of several shapes (odd panel counts, both transposes, an epilogue, a batch) and
// prints one JSON line: the thread count the kernel used and a sha256 of every output's bytes.
// Run: KILN_CPU_THREADS=N node --import tsx cpu_matmul_threads_child.ts

import { createHash } from "node:crypto";
import { getBackend, matmul, randn } from "../../src/index.js";
import { matmulKernel } from "../../src/backends/cpu/wasm/matmul_kernel.js";

const backend = await getBackend("cpu");
const cases: [number, number, number, number][] = [
  // [batch, m, k, n]: big enough to be shared (>= 4M multiply-adds), with B panel counts that do not split evenly.
  [1, 768, 128, 512],
  [1, 300, 700, 136],
  [2, 257, 300, 200],
  [1, 1030, 520, 72],
];
const hash = createHash("sha256");
let seed = 1;
for (const [b, m, k, n] of cases) {
  for (const transB of [false, true]) {
    const a = randn([b, m, k], { backend, seed: seed++ });
    const w = randn(transB ? [b, n, k] : [b, k, n], { backend, seed: seed++ });
    const bias = randn([n], { backend, seed: seed++ });
    const out = matmul(a, transB ? w.transpose(-2, -1) : w).add(bias).tanh();
    hash.update(new Uint8Array(((await out.data()) as Float32Array).buffer));
  }
  // A stored (k, m), as a weight gradient's x^T: the kernel reads it by columns.
  const at = randn([b, k, m], { backend, seed: seed++ });
  const w = randn([b, k, n], { backend, seed: seed++ });
  hash.update(new Uint8Array(((await matmul(at.transpose(-2, -1), w).data()) as Float32Array).buffer));
}
console.log(JSON.stringify({ threads: matmulKernel().threads, sha256: hash.digest("hex") }));
