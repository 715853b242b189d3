// train_peer.ts: kiln's training step beside PyTorch's, on the same machine in the same session. Both
// train the same model with the same recipe from one kiln config (default configs/shakespeare_char.json,
// nanoGPT's CPU configuration): kiln through its CLI (`kiln train --json`), PyTorch through
// bench/peers/torch_gpt2_train.py (Debian's python3-torch with OpenBLAS). Runs alternate (kiln, torch,
// kiln, torch, ...) so both see the same background load; each run's first steps (compiling, warm-up)
// are dropped and the median of the rest is its ms/step. Writes bench/results/train-peer-<tag>.json/.md.
//
//   npm run bench:train:peer -- [--iters 200] [--rounds 2] [--full] [--threads 2] [--config FILE] [--tag T]
//
// --full runs the config's whole schedule (2000 iterations for shakespeare_char) once per tool and also
// records the final held-out losses (the issue's anchor: nanoGPT reports about 1.88).

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { parseTrainConfig } from "../src/train/config.js";
import type { TrainConfig } from "../src/train/config.js";
import { matmulThreadCount } from "../src/backends/cpu/wasm/matmul_threads.js";
import { machineInfo } from "./lib/machine.js";
import { median } from "./lib/timing.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WARMUP_STEPS = 5;

const { values: v } = parseArgs({
  options: {
    config: { type: "string", default: join(ROOT, "configs/shakespeare_char.json") },
    iters: { type: "string", default: "200" },
    rounds: { type: "string", default: "2" },
    full: { type: "boolean", default: false },
    threads: { type: "string", default: "2" },
    python: { type: "string", default: "/usr/bin/python3" },
    out: { type: "string", default: join(ROOT, "bench/results") },
    tag: { type: "string" },
  },
});

interface Run {
  readonly tool: "kiln" | "pytorch";
  readonly stepMs: number[];
  readonly losses: number[];
  readonly evalLoss?: number;
  readonly wallS: number;
  readonly info: Record<string, unknown>;
}

/** Runs a command, parsing each stdout line that is JSON; fails with its stderr's tail. */
function runJsonLines(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Record<string, unknown>[]> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", fail);
    child.on("close", (code) => {
      if (code !== 0) return fail(new Error(`${cmd} ${args.join(" ")} exited with ${code}:\n${err.slice(-2000)}`));
      ok(out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>));
    });
  });
}

async function runKiln(configPath: string, cfg: TrainConfig, iters: number, dir: string): Promise<Run> {
  // A copy of the config whose paths are absolute and whose checkpoints go to a temp folder.
  const base = dirname(configPath);
  const data = cfg.data.path ? { ...cfg.data, path: resolve(base, cfg.data.path) } : { ...cfg.data, index: resolve(base, cfg.data.index!) };
  const copy = { ...cfg, data, checkpoint: cfg.checkpoint && { ...cfg.checkpoint, dir: join(dir, "ckpt") }, tracking: undefined };
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify(copy));
  const t0 = performance.now();
  const rows = await runJsonLines(process.execPath, [join(ROOT, "bin/kiln.mjs"), "train", "--config", file, "--json", "--no-track", "--max-iters", String(iters)], process.env);
  const steps = rows.filter((r) => r.kind === "step");
  const evals = rows.filter((r) => r.kind === "eval");
  const start = rows.find((r) => r.kind === "start") ?? {};
  return {
    tool: "kiln",
    stepMs: steps.map((r) => r.ms as number),
    losses: steps.map((r) => r.loss as number),
    evalLoss: evals.at(-1)?.loss as number | undefined,
    wallS: (performance.now() - t0) / 1000,
    info: { backend: start.backend, params: start.params },
  };
}

async function runTorch(configPath: string, cfg: TrainConfig, iters: number): Promise<Run> {
  if (!cfg.data.path || cfg.model.arch !== "gpt2" || cfg.schedule.kind !== "cosine" || cfg.optimizer.kind !== "adamw") {
    throw new Error("bench:train:peer: the PyTorch peer implements a char-level GPT-2 with AdamW and a cosine schedule; this config is something else");
  }
  const m = cfg.model, t = cfg.train, o = cfg.optimizer, s = cfg.schedule;
  const args = [
    join(ROOT, "bench/peers/torch_gpt2_train.py"), "--data", resolve(dirname(configPath), cfg.data.path), "--iters", String(iters),
    "--batch", String(t.batchSize * t.gradAccumSteps), "--block", String(m.blockSize), "--layers", String(m.nLayers),
    "--heads", String(m.nHeads), "--dim", String(m.dim), "--lr", String(o.lr), "--min-lr", String(s.minLr),
    "--warmup", String(s.warmupSteps), "--decay", String(s.decaySteps), "--beta1", String(o.beta1), "--beta2", String(o.beta2),
    "--weight-decay", String(o.weightDecay), "--clip", String(t.maxGradNorm), "--val-fraction", String(cfg.data.valFraction ?? 0.1),
    "--eval-batches", String(cfg.eval.batches), "--seed", String(t.seed), "--threads", v.threads!,
  ];
  // NOTE: OpenBLAS's own threads on top of torch's intra-op threads oversubscribe the cores: one BLAS
  // thread per torch thread was fastest for this training loop (ENVIRONMENT.md).
  const env = { ...process.env, OMP_NUM_THREADS: v.threads!, OPENBLAS_NUM_THREADS: "1" };
  const t0 = performance.now();
  const rows = await runJsonLines(v.python!, args, env);
  const steps = rows.filter((r) => typeof r.ms === "number");
  return {
    tool: "pytorch",
    stepMs: steps.map((r) => r.ms as number),
    losses: steps.map((r) => r.loss as number),
    evalLoss: rows.filter((r) => typeof r.eval_loss === "number").at(-1)?.eval_loss as number | undefined,
    wallS: (performance.now() - t0) / 1000,
    info: rows[0] ?? {},
  };
}

function summary(runs: readonly Run[]) {
  const per = runs.map((r) => median(r.stepMs.slice(WARMUP_STEPS)));
  return {
    medianMs: median(per),
    perRunMedianMs: per,
    lastLoss: runs.at(-1)!.losses.at(-1),
    evalLoss: runs.at(-1)!.evalLoss,
    wallS: runs.map((r) => r.wallS),
    info: runs[0]!.info,
  };
}

async function main(): Promise<void> {
  const configPath = resolve(v.config!);
  const cfg = parseTrainConfig(JSON.parse(readFileSync(configPath, "utf8")), configPath);
  const iters = v.full ? cfg.train.iters : Number(v.iters);
  const rounds = v.full ? 1 : Number(v.rounds);
  if (!(iters > WARMUP_STEPS) || !(rounds >= 1)) throw new Error(`bench:train:peer: --iters must be above ${WARMUP_STEPS} and --rounds at least 1`);
  const machine = machineInfo(v.tag);
  const runs: Run[] = [];
  const dir = mkdtempSync(join(tmpdir(), "kiln-bench-train-"));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const tool of ["kiln", "pytorch"] as const) {
        const sub = join(dir, `${tool}-${r}`);
        mkdirSync(sub);
        const run = tool === "kiln" ? await runKiln(configPath, cfg, iters, sub) : await runTorch(configPath, cfg, iters);
        console.error(`${tool} round ${r + 1}/${rounds}: median ${median(run.stepMs.slice(WARMUP_STEPS)).toFixed(1)} ms/step, last loss ${run.losses.at(-1)?.toFixed(4)}${run.evalLoss !== undefined ? `, held-out ${run.evalLoss.toFixed(4)}` : ""}`);
        runs.push(run);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const kiln = summary(runs.filter((r) => r.tool === "kiln"));
  const torch = summary(runs.filter((r) => r.tool === "pytorch"));
  const result = {
    date: new Date().toISOString(),
    machine,
    config: configPath.slice(ROOT.length + 1),
    iters,
    rounds,
    warmupStepsDropped: WARMUP_STEPS,
    // NOTE: kiln's JS runs on one thread; its large matmuls are shared by matmulThreadCount() threads.
    threads: { kiln: matmulThreadCount(), pytorch: Number(v.threads) },
    kiln,
    pytorch: torch,
    ratio: kiln.medianMs / torch.medianMs,
  };
  mkdirSync(v.out!, { recursive: true });
  const name = `train-peer-${machine.tag}${v.full ? "-full" : ""}`;
  writeFileSync(join(v.out!, `${name}.json`), JSON.stringify(result, null, 2) + "\n");
  writeFileSync(join(v.out!, `${name}.md`), markdown(result));
  console.log(markdown(result));
}

function markdown(r: { date: string; machine: ReturnType<typeof machineInfo>; config: string; iters: number; rounds: number; threads: { kiln: number; pytorch: number }; kiln: ReturnType<typeof summary>; pytorch: ReturnType<typeof summary>; ratio: number }): string {
  const f = (x: number | undefined, d = 4) => (x === undefined ? "—" : x.toFixed(d));
  return [
    `# Training step: kiln vs PyTorch (${r.config})`,
    "",
    `${r.date.slice(0, 10)}, ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.os}, Node ${r.machine.node}. ${r.iters} iterations x ${r.rounds} round(s) each, alternating; the first ${WARMUP_STEPS} steps of each run dropped.`,
    "",
    "| | threads | median ms/step | per-run medians | last train loss | held-out loss |",
    "|---|---|---|---|---|---|",
    `| kiln (${String(r.kiln.info.backend ?? "cpu")} backend) | ${r.threads.kiln} (matmuls; the rest 1) | ${f(r.kiln.medianMs, 1)} | ${r.kiln.perRunMedianMs.map((x) => x.toFixed(1)).join(", ")} | ${f(r.kiln.lastLoss)} | ${f(r.kiln.evalLoss)} |`,
    `| PyTorch ${String(r.pytorch.info.torch ?? "")} + OpenBLAS | ${r.threads.pytorch} | ${f(r.pytorch.medianMs, 1)} | ${r.pytorch.perRunMedianMs.map((x) => x.toFixed(1)).join(", ")} | ${f(r.pytorch.lastLoss)} | ${f(r.pytorch.evalLoss)} |`,
    "",
    `kiln / PyTorch time per step: **${r.ratio.toFixed(2)}x**${r.ratio > 1 ? " (kiln slower)" : " (kiln faster)"}.`,
    "",
  ].join("\n");
}

main().catch((e: unknown) => {
  console.error(`bench:train:peer: ${(e as Error).message}`);
  process.exit(1);
});
