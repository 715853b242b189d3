// matmul_blas.ts is the cpu matmul's side-by-side benchmark against OpenBLAS (`npm run bench:matmul-blas`):
// f32 C = A . B at n^3 (512 by default; also x @ W^T at prefill shapes), kiln's cpu matmul routine launched
// directly (the copy into wasm memory included, graph building not) against PyTorch's CPU matmul, which
// Debian's python3-torch runs on OpenBLAS (libopenblas0-pthread; the script prints torch's BLAS line and
// the libblas the process mapped). Both with the same thread count (KILN_CPU_THREADS / torch.set_num_threads).
// The peer is one python process started once; rounds alternate kiln and peer, each round the median of
// `reps` calls, and the table gives the median over rounds and the ratio. Writes
// bench/results/matmul-blas-<tag>.json and .md.
//
//   npx tsx bench/matmul_blas.ts [--threads N] [--rounds R] [--clock wall|cpu] [--tag NAME] [--out bench/results]
//
// --clock cpu (one thread only) times each call by the cpu time its process spent (kiln: process.cpuUsage;
// the peer: time.thread_time of the thread OpenBLAS runs on), not the wall clock: on the shared, loaded
// machine a wall-clock call also counts the time the OS gave other processes, which swamps the ratio.
//
// NOTE: without /usr/bin/python3 + torch the peer column says why and kiln is timed alone.

import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CpuBackend } from "../src/backends/cpu/backend.js";
import type { MatmulSpec } from "../src/core/routines.js";
import { matmulKernel } from "../src/backends/cpu/wasm/matmul_kernel.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";

interface Case { readonly name: string; readonly m: number; readonly k: number; readonly n: number; readonly transB: boolean }

const CASES: readonly Case[] = [
  { name: "512^3", m: 512, k: 512, n: 512, transB: false },
  { name: "512^3, B (n, k)", m: 512, k: 512, n: 512, transB: true },
  { name: "prefill x @ W^T 64x512 . (1536x512)^T", m: 64, k: 512, n: 1536, transB: true },
  { name: "prefill x @ W^T 64x1376 . (512x1376)^T", m: 64, k: 1376, n: 512, transB: true },
];

const PEER = String.raw`
import sys, time, json, torch
torch.set_num_threads(int(sys.argv[1]))
blas = [l.strip() for l in torch.__config__.show().splitlines() if "BLAS" in l]
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l})
print(json.dumps({"ready": True, "torch": torch.__version__, "blas": blas[0][:200] if blas else "", "libs": libs}), flush=True)
for line in sys.stdin:
    m, k, n, tb, reps, cpu = map(int, line.split())
    clock = time.thread_time if cpu else time.perf_counter
    a = torch.randn(m, k); b = torch.randn(n, k) if tb else torch.randn(k, n)
    f = (lambda: a @ b.t()) if tb else (lambda: a @ b)
    for _ in range(3): f()
    ts = []
    for _ in range(reps):
        t = clock(); f(); ts.append(clock() - t)
    ts.sort()
    print(json.dumps({"ms": ts[len(ts) // 2] * 1e3}), flush=True)
`;

class Peer {
  private readonly proc;
  private readonly lines: AsyncIterator<string>;
  constructor(threads: number) {
    this.proc = spawn("/usr/bin/python3", ["-c", PEER, String(threads)], { stdio: ["pipe", "pipe", "inherit"] });
    this.lines = createInterface({ input: this.proc.stdout! })[Symbol.asyncIterator]();
  }
  async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error("matmul_blas: the python peer exited (is torch installed for /usr/bin/python3?)");
    return JSON.parse(r.value) as Record<string, unknown>;
  }
  async time(c: Case, reps: number, cpuClock: boolean): Promise<number> {
    this.proc.stdin!.write(`${c.m} ${c.k} ${c.n} ${c.transB ? 1 : 0} ${reps} ${cpuClock ? 1 : 0}\n`);
    return (await this.next()).ms as number;
  }
  close(): void {
    this.proc.stdin!.end();
    this.proc.kill();
  }
}

/** Milliseconds now on the wall clock, or of cpu time this process has used (all its threads). */
function clockMs(cpuClock: boolean): number {
  if (!cpuClock) return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function kilnTimer(cpu: CpuBackend, c: Case, cpuClock: boolean): Promise<(reps: number) => Promise<number>> {
  const spec: MatmulSpec = { batch: 1, m: c.m, n: c.n, k: c.k, transA: false, transB: c.transB, aBatchStride: c.m * c.k, bBatchStride: c.k * c.n, dtype: "f32", out: "f32" };
  const exe = await cpu.routine("matmul", spec);
  const buf = (len: number) => {
    const b = cpu.alloc(len * 4);
    cpu.write(b, new Uint8Array(Float32Array.from({ length: len }, (_, i) => Math.sin(i)).buffer));
    return b;
  };
  const bufs = [buf(c.m * c.n), buf(c.m * c.k), buf(c.k * c.n)];
  const once = async () => {
    cpu.launch(exe, bufs);
    await cpu.synchronize();
  };
  for (let i = 0; i < 3; i++) await once();
  return async (reps) => {
    const ts: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = clockMs(cpuClock);
      await once();
      ts.push(clockMs(cpuClock) - t0);
    }
    return median(ts);
  };
}

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const threads = Number(flag(argv, "threads") ?? process.env.KILN_CPU_THREADS ?? 2);
  const rounds = Number(flag(argv, "rounds") ?? 5);
  const reps = 15;
  const clock = flag(argv, "clock") ?? "wall";
  if (clock !== "wall" && clock !== "cpu") throw new Error(`matmul_blas: --clock must be wall or cpu, got ${JSON.stringify(clock)}`);
  if (clock === "cpu" && threads !== 1) throw new Error(`matmul_blas: --clock cpu times one thread's cpu time; it needs --threads 1, got ${threads}`);
  const cpuClock = clock === "cpu";
  process.env.KILN_CPU_THREADS = String(threads);
  const machine = machineInfo(flag(argv, "tag"));
  const cpu = new CpuBackend();
  let peer: Peer | undefined = new Peer(threads);
  let peerInfo: Record<string, unknown>;
  try {
    peerInfo = await peer.next();
  } catch (e) {
    peerInfo = { missing: (e as Error).message };
    peer = undefined;
  }
  const rows = [];
  try {
    for (const c of CASES) {
      const kiln = await kilnTimer(cpu, c, cpuClock);
      const k: number[] = [], p: number[] = [];
      for (let r = 0; r < rounds; r++) {
        k.push(await kiln(reps));
        if (peer) p.push(await peer.time(c, reps, cpuClock));
      }
      const flops = 2 * c.m * c.n * c.k;
      const km = median(k), pm = p.length ? median(p) : NaN;
      rows.push({ case: c.name, m: c.m, k: c.k, n: c.n, transB: c.transB, kilnMs: km, peerMs: pm, kilnGflops: flops / km / 1e6, peerGflops: flops / pm / 1e6, ratio: pm / km, kilnRounds: k, peerRounds: p });
      console.log(`${c.name}: kiln ${km.toFixed(3)} ms (${(flops / km / 1e6).toFixed(1)} GFLOP/s), OpenBLAS ${pm.toFixed(3)} ms, kiln at ${((100 * pm) / km).toFixed(0)}% of OpenBLAS`);
    }
  } finally {
    peer?.close();
  }
  const date = new Date().toISOString();
  const out = flag(argv, "out") ?? "bench/results";
  mkdirSync(out, { recursive: true });
  const base = join(out, `matmul-blas-${machine.tag}`);
  writeFileSync(`${base}.json`, JSON.stringify({ suite: "matmul-blas", version: 1, date, machine, threads, clock, fma: matmulKernel().fma, rounds, reps, peer: peerInfo, rows }, null, 2) + "\n");
  const md = [
    `# cpu matmul vs OpenBLAS (${date}, ${machine.cpu}, ${machine.cores} cores, ${threads} threads, Node ${machine.node})`,
    "",
    `Peer: PyTorch ${String(peerInfo.torch ?? "-")} ${String(peerInfo.blas ?? peerInfo.missing ?? "")}; libraries mapped: ${JSON.stringify(peerInfo.libs ?? [])}.`,
    `Medians of ${rounds} alternating rounds, each the median of ${reps} calls, timed by the ${clock === "cpu" ? "cpu time each side spent (one thread)" : "wall clock"}; kiln's kernel ${matmulKernel().fma ? "with" : "without"} relaxed-SIMD FMA.`,
    "",
    "| case | kiln ms | kiln GFLOP/s | OpenBLAS ms | OpenBLAS GFLOP/s | kiln / OpenBLAS speed |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.case} | ${r.kilnMs.toFixed(3)} | ${r.kilnGflops.toFixed(1)} | ${r.peerMs.toFixed(3)} | ${r.peerGflops.toFixed(1)} | ${r.ratio.toFixed(2)} |`),
    "",
  ].join("\n");
  writeFileSync(`${base}.md`, md);
  console.log(md);
}

await main();
process.exit(0);
