// dist.ts (npm run bench:dist): data parallel's scaling on the `local` communicator, 1, 2 and 4 ranks as
// OS processes on this host (bench/dist_rank.ts each), weak scaling: every rank trains BENCH_ROWS rows per
// step of a small GPT-2, so the ideal is the same tokens/s per rank at every world size. Per world size,
// the median over repeats of: the step time (the slowest rank's median), tokens/s per rank and in all,
// scaling efficiency (tokens/s per rank against 1 rank's), the communication share of the step (time in the
// gradient all-reduce, waiting for slower ranks included, over the step; the seed's goal is < 30%), and a
// bare all-reduce of the gradient's size after a barrier (the transfer alone).
// Results: bench/results/dist-<tag>.json and .md. The pipeline bubble is to be added beside these.
// NOTE: ranks share the host's cores: with more ranks than cores the efficiency falls by construction
// (KILN_THREADS=1 per rank by default, so 2 ranks can use 2 cores and 4 ranks oversubscribe them).
//
//   npm run bench:dist [-- --ranks 1,2,4 --repeats 3 --steps 10 --out bench/results]

import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../src/dist/index.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";

const ROOT = resolve(import.meta.dirname, "..");
const RANK_SCRIPT = join(ROOT, "bench/dist_rank.ts");

const { values: v } = parseArgs({
  options: {
    ranks: { type: "string", default: "1,2,4" }, repeats: { type: "string", default: "3" }, steps: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" }, rows: { type: "string", default: "4" }, block: { type: "string", default: "64" },
    dim: { type: "string", default: "64" }, layers: { type: "string", default: "2" }, threads: { type: "string", default: "1" },
    out: { type: "string", default: join(ROOT, "bench/results") }, tag: { type: "string" },
  },
});

interface RankOut { rank: number; size: number; params: number; stepMs: number[]; commMs: number[]; computeMs: number[]; bareMs: number[] }

/** One run of `size` ranks; rejects naming the rank that failed (its stderr), kills them all after 300 s. */
async function runOnce(size: number): Promise<RankOut[]> {
  const port = await freePort("127.0.0.1");
  const env = {
    ...process.env, WORLD_SIZE: String(size), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), KILN_THREADS: v.threads!,
    BENCH_ROWS: v.rows!, BENCH_BLOCK: v.block!, BENCH_STEPS: v.steps!, BENCH_WARMUP: v.warmup!, BENCH_DIM: v.dim!, BENCH_LAYERS: v.layers!,
  };
  const procs = [...Array(size).keys()].map((rank) => spawn(process.execPath, ["--import", "tsx", RANK_SCRIPT], { env: { ...env, RANK: String(rank) }, stdio: ["ignore", "pipe", "pipe"] }));
  const timer = setTimeout(() => procs.forEach((p) => p.kill("SIGKILL")), 300_000);
  try {
    return await Promise.all(procs.map((p, rank) => new Promise<RankOut>((res, rej) => {
      let [out, err] = ["", ""];
      p.stdout!.on("data", (d) => (out += d));
      p.stderr!.on("data", (d) => (err += d));
      p.on("close", (code) => (code === 0 ? res(JSON.parse(out.trim().split("\n").at(-1)!) as RankOut) : rej(new Error(`bench:dist: rank ${rank} of ${size} exited with ${code}: ${err.slice(-1500)}`))));
    })));
  } finally {
    clearTimeout(timer);
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  }
}

/** One run's numbers: the job steps at the slowest rank's pace; shares are each rank's, averaged. */
function summarise(outs: RankOut[]) {
  const stepMs = Math.max(...outs.map((o) => median(o.stepMs)));
  const tokensPerRank = (Number(v.rows) * Number(v.block)) / (stepMs / 1000);
  const commShare = outs.reduce((s, o) => s + median(o.commMs.map((c, i) => c / o.stepMs[i]!)), 0) / outs.length;
  const bareMs = median(outs.flatMap((o) => o.bareMs));
  return { stepMs, tokensPerRank, commShare, bareMs, commMs: median(outs.flatMap((o) => o.commMs)), computeMs: median(outs.flatMap((o) => o.computeMs)) };
}

const machine = machineInfo(v.tag);
const worlds = v.ranks!.split(",").map(Number);
const repeats = Number(v.repeats);
const loadBefore = loadavg()[0]!;
const rows: Record<string, number | number[]>[] = [];
let params = 0;
for (const size of worlds) {
  const runs: ReturnType<typeof summarise>[] = [];
  for (let r = 0; r < repeats; r++) {
    const outs = await runOnce(size);
    params = outs[0]!.params;
    runs.push(summarise(outs));
    console.error(`bench:dist: ${size} rank(s), repeat ${r + 1}/${repeats}: ${runs.at(-1)!.stepMs.toFixed(1)} ms/step, comm ${(100 * runs.at(-1)!.commShare).toFixed(1)}%`);
  }
  const med = (k: keyof (typeof runs)[number]) => median(runs.map((x) => x[k]));
  rows.push({
    ranks: size, stepMs: med("stepMs"), tokensPerRank: med("tokensPerRank"), tokensTotal: size * med("tokensPerRank"), commShare: med("commShare"),
    commMs: med("commMs"), computeMs: med("computeMs"), bareAllReduceMs: med("bareMs"), stepMsPerRepeat: runs.map((x) => x.stepMs),
  });
}
const base = rows.find((r) => r.ranks === 1)?.tokensPerRank as number | undefined;
for (const r of rows) r.efficiency = base === undefined ? Number.NaN : (r.tokensPerRank as number) / base;
const result = {
  date: new Date().toISOString(), machine, loadAverage1m: { before: loadBefore, after: loadavg()[0]!, cores: cpus().length },
  model: { arch: "gpt2", dim: Number(v.dim), layers: Number(v.layers), heads: 4, vocab: 65, block: Number(v.block), params, gradientBytes: params * 4 },
  rowsPerRank: Number(v.rows), steps: Number(v.steps), warmupStepsDropped: Number(v.warmup), repeats, kilnCpuThreadsPerRank: Number(v.threads),
  commShareGoal: 0.3, results: rows,
};

function markdown(r: typeof result): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    `## Data parallel scaling on \`local\` (${r.machine.tag})`, "",
    `${r.date.slice(0, 16).replace("T", " ")} UTC, ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.os}, Node ${r.machine.node}; load average ${r.loadAverage1m.before.toFixed(1)} before, ${r.loadAverage1m.after.toFixed(1)} after (${r.loadAverage1m.cores} cores${r.loadAverage1m.before > 1 ? ": the machine was busy with other work" : ""}).`,
    `GPT-2 ${r.model.layers} layers x ${r.model.dim} dim, block ${r.model.block}, ${r.model.params} parameters (${(r.model.gradientBytes / 2 ** 20).toFixed(2)} MiB of f32 gradient); ${r.rowsPerRank} rows per rank per step (weak scaling), KILN_THREADS=${r.kilnCpuThreadsPerRank} per rank; medians of ${r.steps} steps after ${r.warmupStepsDropped}, then the median of ${r.repeats} repeats.`, "",
    "| ranks | ms/step | tokens/s per rank | tokens/s in all | scaling efficiency | comm share of step (goal < 30%) | all-reduce in step ms | bare all-reduce ms | ms/step per repeat |",
    "|---|---|---|---|---|---|---|---|---|",
    ...r.results.map((x) => `| ${x.ranks} | ${(x.stepMs as number).toFixed(1)} | ${(x.tokensPerRank as number).toFixed(0)} | ${(x.tokensTotal as number).toFixed(0)} | ${pct(x.efficiency as number)} | ${pct(x.commShare as number)} | ${(x.commMs as number).toFixed(1)} | ${(x.bareAllReduceMs as number).toFixed(2)} | ${(x.stepMsPerRepeat as number[]).map((s) => s.toFixed(0)).join(", ")} |`),
    "",
    "All-reduce in step: the time a rank spends in the gradient's all-reduce, waiting for slower ranks included; bare: the same all-reduce after a barrier (the transfer alone).", "",
  ].join("\n");
}

mkdirSync(v.out!, { recursive: true });
const name = `dist-${machine.tag}`;
writeFileSync(join(v.out!, `${name}.json`), JSON.stringify(result, null, 2) + "\n");
writeFileSync(join(v.out!, `${name}.md`), markdown(result));
console.log(markdown(result));
