// naive_matmul.ts is the baseline the cpu matmul routine is measured against: a plain i-j-k triple loop
// on Float32Arrays. Run `npx tsx bench/naive_matmul.ts [size]` to time both at size^3 f32 in one process
// (median of several runs each, after one warm-up) and print GFLOP/s. It does not write result files.

import { CpuBackend } from "../src/backends/cpu/backend.js";
import type { MatmulSpec } from "../src/core/routines.js";

/** C (m, n) = A (m, k) @ B (k, n), row-major, one dot product per output element. */
export function naiveMatmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += a[i * k + p]! * b[p * n + j]!;
      c[i * n + j] = acc;
    }
  }
  return c;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[s.length >> 1]!;
}

/** Milliseconds of each run of fn: one untimed warm-up, then `runs` timed ones. */
function time(fn: () => void, runs: number): { first: number; runs: number[] } {
  let t0 = performance.now();
  fn();
  const first = performance.now() - t0;
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return { first, runs: out };
}

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 512);
  const [m, n, k] = [size, size, size];
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.11));
  const gflops = (ms: number) => (2 * m * n * k) / (ms * 1e6);

  const cpu = new CpuBackend();
  const spec: MatmulSpec = { batch: 1, m, n, k, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, dtype: "f32", out: "f32" };
  const exe = await cpu.routine("matmul", spec);
  const [bc, ba, bb] = [cpu.alloc(m * n * 4), cpu.alloc(m * k * 4), cpu.alloc(k * n * 4)];
  cpu.write(ba, new Uint8Array(a.buffer));
  cpu.write(bb, new Uint8Array(b.buffer));
  let naiveOut: Float32Array = new Float32Array(0);
  const naive = time(() => (naiveOut = naiveMatmul(a, b, m, n, k)), 3);
  // NOTE: the routine's first launch includes wasm compilation and runs V8's baseline tier; it is shown apart.
  const fast = time(() => cpu.launch(exe, [bc, ba, bb]), 7);
  const routineOut = new Float32Array(bc.data, 0, m * n);
  let maxDiff = 0;
  for (let i = 0; i < m * n; i++) maxDiff = Math.max(maxDiff, Math.abs(routineOut[i]! - naiveOut[i]!));

  const line = (name: string, t: { first: number; runs: number[] }) =>
    `${name.padEnd(16)} median ${median(t.runs).toFixed(2).padStart(8)} ms  ${gflops(median(t.runs)).toFixed(2).padStart(7)} GFLOP/s` +
    `  (first ${t.first.toFixed(1)} ms, runs ${t.runs.map((x) => x.toFixed(1)).join(" ")})`;
  console.log(`matmul ${m}x${n}x${k} f32 on ${cpu.info.device}`);
  console.log(line("naive i-j-k JS", naive));
  console.log(line("cpu routine", fast));
  console.log(`speedup ${(median(naive.runs) / median(fast.runs)).toFixed(1)}x, max |routine - naive| = ${maxDiff.toExponential(2)}`);
}

// NOTE: the browser's benchmark page bundles this module (suite.ts uses naiveMatmul): no Node import here, and
// import.meta.filename (Node >= 20.11) is undefined in a browser, so main() runs only as a Node script.
const script = (globalThis as { process?: { argv?: readonly string[] } }).process?.argv?.[1];
if (import.meta.filename !== undefined && import.meta.filename === script) await main();
