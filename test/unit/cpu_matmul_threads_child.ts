// cpu_matmul_threads_child.ts: a process for cpu_matmul_threads.test.ts. The thread count of the cpu
// backend is fixed per process (KILN_THREADS), so the test runs this once per count. It multiplies seeded
// random matrices of several shapes: large products (the packed path: odd panel counts, both transposes,
// an epilogue, a batch) and decode products (the few-rows path: 1-4 rows of A against B stored (n, k) in
// f32, f16 and bf16, n and k off the kernels' multiples, B broadcast over a batch; a Q8_0 and a Q4_0
// GEMV with a row count that splits unevenly), and prints one JSON
// line: the thread count, how many tasks the pool shared, a sha256 of every output's bytes and the largest
// relative error (to the largest |value|) of the decode products, per dtype, against the same product in f64.
// Run: KILN_THREADS=N node --import tsx cpu_matmul_threads_child.ts

import { createHash } from "node:crypto";
import type { Tensor } from "../../src/index.js";
import { getBackend, matmul, matmulQuantized, matmulQuantizedReference, quantizedTensor, randn } from "../../src/index.js";
import { matmulKernel } from "../../src/backends/cpu/wasm/matmul_kernel.js";
import { matmulPool } from "../../src/backends/cpu/wasm/matmul_threads.js";

const backend = await getBackend("cpu");
const hash = createHash("sha256");
const bytes = async (t: Tensor): Promise<Uint8Array> => {
  const d = (await t.data()) as ArrayBufferView;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
};
let seed = 1;
const large: [number, number, number, number][] = [
  // [batch, m, k, n]: big enough to be shared (>= 4M multiply-adds), with B panel counts that do not split evenly.
  [1, 768, 128, 512],
  [1, 300, 700, 136],
  [2, 257, 300, 200],
  [1, 1030, 520, 72],
];
for (const [b, m, k, n] of large) {
  for (const transB of [false, true]) {
    const a = randn([b, m, k], { backend, seed: seed++ });
    const w = randn(transB ? [b, n, k] : [b, k, n], { backend, seed: seed++ });
    const bias = randn([n], { backend, seed: seed++ });
    hash.update(await bytes(matmul(a, transB ? w.transpose(-2, -1) : w).add(bias).tanh()));
  }
  // A stored (k, m), as a weight gradient's x^T: the kernel reads it by columns.
  const at = randn([b, k, m], { backend, seed: seed++ });
  const w = randn([b, k, n], { backend, seed: seed++ });
  hash.update(await bytes(matmul(at.transpose(-2, -1), w)));
}

// Decode: [batch, rows, k, n] against a weight (n, k) shared by the batch (x @ W^T). B is >= 128 KiB even in
// 16 bits, so the pool splits its rows; n = 1030 and 777 end in a partial group of 4 and a partial chunk.
const decode: [number, number, number, number][] = [
  [1, 1, 512, 1030],
  [1, 3, 301, 777],
  [4, 1, 256, 600],
  [1, 2, 64, 4100],
];
const maxRelErr = { f32: 0, f16: 0, bf16: 0 };
for (const [b, m, k, n] of decode) {
  for (const dtype of ["f32", "f16", "bf16"] as const) {
    const x = randn([b, m, k], { backend, seed: seed++ }).cast(dtype);
    const w = randn([n, k], { backend, seed: seed++ }).cast(dtype);
    const y = (await matmul(x, w.transpose()).cast("f32").data()) as Float32Array;
    hash.update(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
    const ref = (await matmul(x.cast("f64"), w.cast("f64").transpose()).data()) as Float64Array;
    const scale = ref.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
    for (let i = 0; i < ref.length; i++) maxRelErr[dtype] = Math.max(maxRelErr[dtype], Math.abs(y[i]! - ref[i]!) / scale);
  }
}
// Quantized GEMV (decode through a Q8_0 / Q4_0 weight): seeded block bytes, f16 scales near 2^-6.
let state = 12345;
const byte = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 16) & 255;
const qErr = { q8_0: 0, q4_0: 0 };
for (const [format, blockBytes] of [["q8_0", 34], ["q4_0", 18]] as const) {
  const [n, k] = [1000, 512];
  const data = new Uint8Array(n * (k / 32) * blockBytes);
  for (let o = 0; o < data.length; o += blockBytes) {
    data[o] = byte();
    data[o + 1] = 0x1c + (byte() & 3); // f16 exponent 7..8: scales 2^-8 .. 2^-7 and above
    for (let j = 2; j < blockBytes; j++) data[o + j] = byte();
  }
  const q = quantizedTensor(data, [n, k], format, backend);
  const x = randn([1, k], { backend, seed: seed++ });
  const y = (await matmulQuantized(x, q).data()) as Float32Array;
  hash.update(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
  const ref = (await matmulQuantizedReference(x.cast("f64"), q).data()) as Float64Array;
  const scale = ref.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  for (let i = 0; i < n; i++) qErr[format] = Math.max(qErr[format], Math.abs(y[i]! - ref[i]!) / scale);
}
console.log(JSON.stringify({ threads: matmulKernel().threads, shared: matmulPool()?.shared ?? { tiles: 0, dots: 0, qdots: 0 }, sha256: hash.digest("hex"), maxRelErr: { ...maxRelErr, ...qErr } }));
