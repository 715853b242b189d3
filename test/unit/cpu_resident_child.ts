// cpu_resident_child.ts: a process for cpu_resident.test.ts (the resident heap and the thread count are
// per process, so each configuration runs in its own; run with --expose-gc). It prints one JSON line:
//   - products: a sha256 of decode products (few rows against a weight stored (n, k) in f32, f16 and bf16,
//     one stored (k, n), a Q8_0 and a Q4_0 GEMV) and of two packed ones (300 rows: W (n, k) swapped, B (k, n)) and their largest error against f64, relative to the
//     largest |value|; whether the weights were resident and which path the few-rows passes took;
//   - reuse: the heap's extent before and after 100 cycles of allocating, writing and dropping a 1 MiB
//     buffer (collected with gc() every 10 cycles, released by the FinalizationRegistry);
//   - view: whether a view of a resident buffer still reads its bytes after its parent was dropped and
//     collected and other buffers were allocated and written;
//   - full (KILN_RESIDENT_FILL=1 only): the heap filled with untouched blocks, a buffer allocated after
//     it is not resident and a product on it still gives the same bits; the process's VmRSS meanwhile.
// Run: KILN_THREADS=N [KILN_CPU_RESIDENT=0|1] node --expose-gc --import tsx cpu_resident_child.ts

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Tensor } from "../../src/index.js";
import { getBackend, matmul, matmulQuantized, matmulQuantizedReference, quantizedTensor, randn } from "../../src/index.js";
import type { CpuBuffer } from "../../src/backends/cpu/backend.js";
import { rowsPasses } from "../../src/backends/cpu/matmul_rows.js";
import { matmulKernel } from "../../src/backends/cpu/wasm/matmul_kernel.js";
import { residentHeap, wasmAddress } from "../../src/backends/cpu/wasm/resident_heap.js";

const backend = await getBackend("cpu");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
/** Collects, then lets the FinalizationRegistry's callbacks run (they are tasks after the collection). */
const collect = async (): Promise<void> => {
  gc();
  await new Promise((r) => setTimeout(r, 1));
};

const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
const bufferOf = (t: Tensor): CpuBuffer => (t as unknown as { node: { buffer: CpuBuffer } }).node.buffer;

let seed = 1;
const hash = createHash("sha256");
const maxRelErr: Record<string, number> = {};
const residentWeights: boolean[] = [];
const record = (name: string, y: Float32Array, ref: Float64Array): void => {
  hash.update(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
  const scale = ref.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
  let e = 0;
  for (let i = 0; i < ref.length; i++) e = Math.max(e, Math.abs(y[i]! - ref[i]!) / scale);
  maxRelErr[name] = Math.max(maxRelErr[name] ?? 0, e);
};

/** [rows, k, n]: n off a multiple of 4 (a partial group of B rows), k off a multiple of 4 (a masked tail). */
const shapes: [number, number, number][] = [[1, 512, 1030], [3, 301, 777]];
async function products(): Promise<void> {
  for (const [m, k, n] of shapes) {
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const x = randn([m, k], { backend, seed: seed++ }).cast(dtype);
      const w = randn([n, k], { backend, seed: seed++ }).cast(dtype);
      await w.data();
      residentWeights.push(wasmAddress(bufferOf(w).view(dtype)) !== undefined);
      const y = (await matmul(x, w.transpose()).cast("f32").data()) as Float32Array;
      record(dtype, y, (await matmul(x.cast("f64"), w.cast("f64").transpose()).data()) as Float64Array);
    }
  }
  // B stored (k, n): the strided tiles read it in place when resident.
  const x = randn([2, 300], { backend, seed: seed++ });
  const w = randn([300, 1000], { backend, seed: seed++ });
  record("f32_kn", (await matmul(x, w).data()) as Float32Array, (await matmul(x.cast("f64"), w.cast("f64")).data()) as Float64Array);
  // Packed products (prefill shapes): W (n, k) as the swapped path's A operand (n = 1032: whole row tiles of both kernels, 3 x 12 and 4 x 8), and B (k, n), both in place when resident.
  const xp = randn([300, 512], { backend, seed: seed++ });
  const wt = randn([1032, 512], { backend, seed: seed++ });
  record("f32_packed", (await matmul(xp, wt.transpose()).data()) as Float32Array, (await matmul(xp.cast("f64"), wt.cast("f64").transpose()).data()) as Float64Array);
  const wkn = randn([512, 520], { backend, seed: seed++ });
  record("f32_packed", (await matmul(xp, wkn).data()) as Float32Array, (await matmul(xp.cast("f64"), wkn.cast("f64")).data()) as Float64Array);
  let state = 12345;
  const byte = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 16) & 255;
  for (const [format, blockBytes] of [["q8_0", 34], ["q4_0", 18]] as const) {
    const [n, k] = [1000, 512];
    const data = new Uint8Array(n * (k / 32) * blockBytes);
    for (let o = 0; o < data.length; o += blockBytes) {
      data[o] = byte();
      data[o + 1] = 0x1c + (byte() & 3);
      for (let j = 2; j < blockBytes; j++) data[o + j] = byte();
    }
    const q = quantizedTensor(data, [n, k], format, backend);
    const xq = randn([1, k], { backend, seed: seed++ });
    record(format, (await matmulQuantized(xq, q).data()) as Float32Array, (await matmulQuantizedReference(xq.cast("f64"), q).data()) as Float64Array);
  }
}

await products();

const passes = { ...rowsPasses };
await collect();
const heap = residentHeap();

// 100 cycles of a 1 MiB buffer, written (so its pages are real), dropped and collected.
const before = heap?.stats().extent ?? 0;
for (let i = 0; i < 100; i++) {
  const b = backend.alloc(1 << 20) as CpuBuffer;
  (b.view("f32") as Float32Array).fill(i + 1);
  if (i % 10 === 9) await collect();
}
const reuse = { before, after: heap?.stats().extent ?? 0 };

// A view outlives its dropped parent: the parent's block must not be freed (and zeroed, reused) under it.
let view: CpuBuffer;
{
  const parent = backend.alloc(256 << 10) as CpuBuffer;
  (parent.view("f32") as Float32Array).fill(7);
  view = backend.view(parent, 4096, 4096) as CpuBuffer;
}
await collect();
const churn = Array.from({ length: 8 }, () => backend.alloc(256 << 10) as CpuBuffer);
for (const c of churn) (c.view("f32") as Float32Array).fill(-1);
const vf = view.view("f32") as Float32Array;
const viewOk = vf.length === 1024 && vf.every((v) => v === 7) && new Float32Array((await backend.read(view)).buffer).every((v) => v === 7);
const viewResident = wasmAddress(vf) !== undefined;

let full: { residentAfter: boolean; sameBits: boolean; rssBeforeKiB: number; rssFullKiB: number; heapExtent: number } | undefined;
if (process.env.KILN_RESIDENT_FILL === "1" && heap) {
  // The same product before and after the heap is full: resident first, its own SharedArrayBuffer after.
  const x = randn([1, 512], { backend, seed: 999 });
  const w1 = randn([1030, 512], { backend, seed: 998 });
  const y1 = (await matmul(x, w1.transpose()).data()) as Float32Array;
  const rssBeforeKiB = rssKiB();
  const hold: CpuBuffer[] = [];
  // Blocks of 1 GiB (never written), then smaller ones, until the heap refuses a 1 MiB block.
  for (let size = 1 << 30; size >= 1 << 20; size /= 2) {
    for (;;) {
      const b = backend.alloc(size) as CpuBuffer;
      if (wasmAddress(b.view("u8")) === undefined) break;
      hold.push(b);
    }
  }
  const rssFullKiB = rssKiB();
  const w2 = randn([1030, 512], { backend, seed: 998 });
  await w2.data();
  const residentAfter = wasmAddress(bufferOf(w2).view("f32")) !== undefined;
  const y2 = (await matmul(x, w2.transpose()).data()) as Float32Array;
  full = { residentAfter, sameBits: y1.length === y2.length && y1.every((v, i) => Object.is(v, y2[i])), rssBeforeKiB, rssFullKiB, heapExtent: heap.stats().extent };
  hold.length = 0;
}

console.log(JSON.stringify({
  threads: matmulKernel().threads, resident: heap !== undefined, residentWeights, passes, sha256: hash.digest("hex"), maxRelErr, reuse, viewOk, viewResident, full,
}));
