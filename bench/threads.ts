// threads.ts is the cpu backend's thread benchmark (`npm run bench:threads`): the decode matmul (a few rows
// of A against a weight stored (n, k), x @ W^T, the few-rows path) and the pool's fork/join cost, at each
// thread count in its own process (the pool is per process, KILN_THREADS), alternating the counts over
// rounds so a noisy machine hits all of them alike. Reports medians and the speed ratio to one thread, and
// writes bench/results/threads-<tag>.json and .md.
//
// With --generate it also runs bench/generate.ts (cpu) once per count per round, alternating the same way,
// and reports each model's prefill and decode tokens/s by thread count.
//
//   npx tsx bench/threads.ts [--threads 1,2] [--rounds 5] [--generate] [--out bench/results] [--tag NAME]
//   (child) KILN_THREADS=N npx tsx bench/threads.ts --child

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { CpuBackend } from "../src/backends/cpu/backend.js";
import { buildMatmul } from "../src/backends/cpu/matmul.js";
import { buildMatmulQ } from "../src/backends/cpu/matmul_q.js";
import { matmulKernel } from "../src/backends/cpu/wasm/matmul_kernel.js";
import { matmulPool } from "../src/backends/cpu/wasm/matmul_threads.js";
import { machineInfo } from "./lib/machine.js";
import { fmt3 } from "./lib/markdown.js";
import { median } from "./lib/timing.js";

/** [name, rows of A, k, n]: the 41M random Llama's and the 85.7M model's projections and heads, and stories260K's head. */
const SHAPES: readonly [string, number, number, number][] = [
  ["stories260K head 64->512", 1, 64, 512],
  ["41M attn 512->512", 1, 512, 512],
  ["41M mlp 512->1376", 1, 512, 1376],
  ["41M head 512->32000", 1, 512, 32000],
  ["85.7M attn 768->768", 1, 768, 768],
  ["85.7M mlp 768->2048", 1, 768, 2048],
  ["85.7M mlp 768->2048, 4 rows", 4, 768, 2048],
];

interface ChildResult {
  readonly threads: number;
  /** Per shape: median ms of one product. */
  readonly ms: Record<string, number>;
  /** The pool's fork/join: median us of a task with next to no work, and of the same work on the caller alone. */
  readonly forkUs: number;
  readonly aloneUs: number;
  /**
   * us to copy 1 MiB of f32 from a cpu buffer (as this thread count allocates it: a SharedArrayBuffer when
   * threads > 1) into the kernel's wasm memory (shared when threads > 1), in the few-rows path's 64 KiB chunks.
   */
  readonly copyUs: number;
}

const timeIt = (fn: () => void, minMs: number): number => {
  const xs: number[] = [];
  const end = performance.now() + minMs;
  while (xs.length < 9 || performance.now() < end) {
    const t0 = performance.now();
    fn();
    xs.push(performance.now() - t0);
  }
  return median(xs);
};

function child(): ChildResult {
  const backend = new CpuBackend();
  const ms: Record<string, number> = {};
  for (const [name, m, k, n] of SHAPES) {
    const bufs = [backend.alloc(4 * m * n), backend.alloc(4 * m * k), backend.alloc(4 * n * k)];
    const views = bufs.map((b) => b.view("f32") as Float32Array);
    for (const v of views.slice(1)) for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 0.37);
    const mm = buildMatmul({ batch: 1, m, n, k, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, dtype: "f32", out: "f32" });
    for (let i = 0; i < 20; i++) mm.run(views);
    // NOTE: repeated in a loop of 10 per sample: one product is 5-500 us, near the timer's resolution in a sandbox.
    ms[name] = timeIt(() => { for (let i = 0; i < 10; i++) mm.run(views); }, 400) / 10;
  }
  // The quantized GEMV (plain JS, w's Q8_0 blocks read in place): the 85.7M model's mlp shape.
  for (const [name, k, n] of [["85.7M mlp 768->2048, q8_0", 768, 2048], ["41M head 512->32000, q8_0", 512, 32000]] as const) {
    const out = backend.alloc(4 * n).view("f32") as Float32Array;
    const x = backend.alloc(4 * k).view("f32") as Float32Array;
    const w = backend.alloc(n * (k / 32) * 34).view("u8") as Uint8Array;
    for (let i = 0; i < k; i++) x[i] = Math.sin(i);
    for (let i = 0; i < w.length; i++) w[i] = i % 34 === 1 ? 0x1c : (i * 7919) & 255;
    const q = buildMatmulQ({ m: 1, n, k, format: "q8_0", dtype: "f32", out: "f32" });
    for (let i = 0; i < 5; i++) q.run([out, x, w]);
    ms[name] = timeIt(() => q.run([out, x, w]), 400);
  }
  // Fork/join: a dots task of one row, k = 4, 8 columns per thread: next to no work, so its time is the hand-off.
  const kern = matmulKernel();
  const pool = matmulPool();
  let forkUs = 0;
  let aloneUs = 0;
  if (pool) {
    const T = pool.threads;
    const w = new Float32Array(new SharedArrayBuffer(4 * 4 * 8 * T));
    const id = pool.share(w.buffer)!;
    const mem = kern.reserve(1 << 16);
    const task = { aOff: 0, lda: 16, cOff: 64, ldc: 32 * T, rows: 1, n: 8 * T, k: 4, buf: id, bElem: 0, dtype: 0, bOff: 4096, stride: 4096, raw: 4096, nb: 8 };
    const ex = { dots: kern.dots, f16_to_f32: kern.f16ToF32, bf16_to_f32: kern.bf16ToF32 };
    const views = { f32: mem, u16: kern.u16() };
    forkUs = timeIt(() => { for (let i = 0; i < 100; i++) pool.runDots(task, ex, views, w); }, 300) * 10;
    const one = { ...task };
    aloneUs = timeIt(() => { for (let i = 0; i < 100; i++) kern.dots(one.aOff, one.lda, one.bOff, 16, one.cOff, one.ldc, 1, 2 * T, 1, 0); }, 300) * 10;
  }
  const src = backend.alloc(1 << 20).view("f32") as Float32Array;
  const dst = kern.reserve(2 << 20);
  const copyUs = timeIt(() => { for (let o = 0; o < src.length; o += 16384) dst.set(src.subarray(o, o + 16384), 1 << 18); }, 300) * 1000;
  return { threads: kern.threads, ms, forkUs, aloneUs, copyUs };
}

interface Results {
  readonly suite: "threads";
  readonly date: string;
  readonly machine: ReturnType<typeof machineInfo>;
  /** /proc/loadavg's 1, 5 and 15 minute averages at the end: the machine is shared, this says how busy it was. */
  readonly loadAverage: string;
  readonly rounds: number;
  readonly threads: readonly number[];
  /** Per thread count: each round's child result. */
  readonly runs: Record<string, ChildResult[]>;
  /** With --generate, per thread count: each round's bench/generate.ts rates per model. */
  readonly generate?: Record<string, GenerateRates[]>;
}

type GenerateRates = Record<string, { prefillTokensPerS: number; decodeTokensPerS: number }>;

/** One bench/generate.ts run on the cpu backend with `threads` threads; its rates per model. */
function runGenerate(threads: number, dir: string, tag: string): GenerateRates {
  const script = fileURLToPath(new URL("./generate.ts", import.meta.url));
  execFileSync(process.execPath, ["--import", "tsx", script, "--backend", "cpu", "--threads", String(threads), "--out", dir, "--tag", tag], { stdio: ["ignore", "ignore", "inherit"], timeout: 600_000 });
  const r = JSON.parse(readFileSync(join(dir, `generate-cpu-${tag}.json`), "utf8")) as { threads?: number; runs: { model: string; prefillTokensPerS: number; decodeTokensPerS: number }[] };
  if (r.threads !== threads) throw new Error(`bench/generate.ts ran ${r.threads} threads, asked for ${threads}`);
  return Object.fromEntries(r.runs.map((x) => [x.model, { prefillTokensPerS: x.prefillTokensPerS, decodeTokensPerS: x.decodeTokensPerS }]));
}

function render(r: Results): string {
  const m = r.machine;
  const base = r.runs[String(r.threads[0])]!;
  const med = (t: number, f: (c: ChildResult) => number) => median(r.runs[String(t)]!.map(f));
  const lines = [
    `### threads: decode matmul (x @ W^T, f32) by thread count (${m.tag})`, "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.os}, Node ${m.node}. Run ${r.date.slice(0, 16).replace("T", " ")} UTC. ` +
      `Each count in its own process, ${r.rounds} rounds alternating the counts; medians over rounds of each round's median. ` +
      `Load average at the end (1/5/15 min): ${r.loadAverage}.`, "",
    `| product | ${r.threads.map((t) => `${t} thread${t > 1 ? "s" : ""} (us)`).join(" | ")} | ${r.threads.slice(1).map((t) => `speed ${t}/${r.threads[0]}`).join(" | ")} |`,
    `|---|${r.threads.map(() => "--:").join("|")}|${r.threads.slice(1).map(() => "--:").join("|")}|`,
  ];
  for (const name of Object.keys(base[0]!.ms)) {
    const us = r.threads.map((t) => med(t, (c) => c.ms[name]!) * 1000);
    lines.push(`| ${name} | ${us.map(fmt3).join(" | ")} | ${us.slice(1).map((u) => `${fmt3(us[0]! / u)}x`).join(" | ")} |`);
  }
  lines.push("");
  if (r.generate) {
    const g = r.generate;
    const first = g[String(r.threads[0])]![0]!;
    lines.push(`bench/generate.ts (cpu), tokens/s, medians over rounds:`, "",
      `| model | ${r.threads.map((t) => `prefill ${t}T`).join(" | ")} | ${r.threads.map((t) => `decode ${t}T`).join(" | ")} | ${r.threads.slice(1).map((t) => `decode ${t}T/${r.threads[0]}T`).join(" | ")} |`,
      `|---|${[...r.threads, ...r.threads, ...r.threads.slice(1)].map(() => "--:").join("|")}|`);
    for (const model of Object.keys(first)) {
      const rate = (t: number, f: "prefillTokensPerS" | "decodeTokensPerS") => median(g[String(t)]!.map((x) => x[model]![f]));
      const dec = r.threads.map((t) => rate(t, "decodeTokensPerS"));
      lines.push(`| ${model} | ${r.threads.map((t) => fmt3(rate(t, "prefillTokensPerS"))).join(" | ")} | ${dec.map(fmt3).join(" | ")} | ${dec.slice(1).map((d) => `${fmt3(d / dec[0]!)}x`).join(" | ")} |`);
    }
    lines.push("");
  }
  lines.push(`- Copying 1 MiB of f32 weights into the kernel's wasm memory (64 KiB chunks, as the few-rows path does for every weight byte): ${r.threads.map((t) => `${t} thread${t > 1 ? "s (shared memory)" : " (unshared)"} ${fmt3(med(t, (c) => c.copyUs))} us`).join(", ")}.`);
  for (const t of r.threads.filter((x) => x > 1)) {
    lines.push(`- ${t} threads: one fork/join of a task with next to no work ${fmt3(med(t, (c) => c.forkUs))} us (the same work on the calling thread alone: ${fmt3(med(t, (c) => c.aloneUs))} us).`);
  }
  return lines.join("\n") + "\n";
}

function main(): void {
  const { values } = parseArgs({ options: { child: { type: "boolean", default: false }, generate: { type: "boolean", default: false }, threads: { type: "string", default: "1,2" }, rounds: { type: "string", default: "5" }, out: { type: "string", default: "bench/results" }, tag: { type: "string" } } });
  if (values.child) {
    console.log(JSON.stringify(child()));
    return;
  }
  const threads = values.threads!.split(",").map(Number);
  const rounds = Number(values.rounds);
  const runs: Record<string, ChildResult[]> = Object.fromEntries(threads.map((t) => [String(t), []]));
  const self = fileURLToPath(import.meta.url);
  const generate: Record<string, GenerateRates[]> | undefined = values.generate ? Object.fromEntries(threads.map((t) => [String(t), []])) : undefined;
  const genDir = mkdtempSync(join(tmpdir(), "kiln-threads-"));
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 === 0 ? threads : [...threads].reverse()) {
      const out = execFileSync(process.execPath, ["--import", "tsx", self, "--child"], { env: { ...process.env, KILN_THREADS: String(t) }, encoding: "utf8", timeout: 120_000 });
      const res = JSON.parse(out.trim().split("\n").at(-1)!) as ChildResult;
      if (res.threads !== t) throw new Error(`asked for ${t} threads, the child ran ${res.threads}`);
      runs[String(t)]!.push(res);
      console.log(`round ${round + 1}/${rounds}, ${t} threads: ${Object.entries(res.ms).map(([k, v]) => `${k} ${fmt3(v * 1000)} us`).join(", ")}${t > 1 ? `; fork/join ${fmt3(res.forkUs)} us` : ""}`);
      if (generate) {
        const g = runGenerate(t, genDir, `t${t}-r${round}`);
        generate[String(t)]!.push(g);
        console.log(`  generate: ${Object.entries(g).map(([k, v]) => `${k} prefill ${fmt3(v.prefillTokensPerS)}, decode ${fmt3(v.decodeTokensPerS)} tokens/s`).join("; ")}`);
      }
    }
  }
  rmSync(genDir, { recursive: true, force: true });
  const machine = machineInfo(values.tag);
  const load = (() => { try { return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "); } catch { return "unknown"; } })();
  const results: Results = { suite: "threads", date: new Date().toISOString(), machine, loadAverage: load, rounds, threads, runs, ...(generate ? { generate } : {}) };
  const md = render(results);
  console.log(`\n${md}`);
  mkdirSync(values.out!, { recursive: true });
  const base = join(values.out!, `threads-${machine.tag}`);
  writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + "\n");
  writeFileSync(`${base}.md`, md);
  console.log(`wrote ${base}.json and ${base}.md`);
}

main();
