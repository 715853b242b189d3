// train_command.ts: `kiln train --config FILE [--resume]`: read and validate a training config (JSON or YAML),
// pick the backend, run it (src/train's runTraining), print its events (one line per step, held-out
// losses, checkpoints; as text or as JSON lines) and a summary with the median step time. SIGINT and
// SIGTERM stop the run after the current step, which then checkpoints and waits for the write. It owns
// the flags and the printing; the run itself (and its record in the runs database) is the train layer's.

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { BackendName } from "../index.js";
import { BACKEND_NAMES, selectBackend } from "../index.js";
import type { CommBackend } from "../dist/index.js";
import { COMM_BACKENDS, markerLine, readRankEnv, restartCount } from "../dist/index.js";
import type { ParallelLayout, RunEvent } from "../train/index.js";
import { describeMemory, describeParallel, parseConfigText, parseTrainConfig, runTrackedTraining, trackingTarget } from "../train/index.js";
import { notYetParallel, resolveTrainParallel } from "./train_parallel.js";

import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";
import { joinParallel } from "./distributed_train.js";
import { ProgressBar } from "./train_progress.js";

/** The vocabulary `parallel: auto` plans with: the data (read later) fixes the real one, which moves only the embedding's memory. */
const AUTO_VOCAB = 256;

const HELP = `Usage: kiln train --config FILE [--resume] [--backend B] [--comm C] [--max-iters N] [--json] [--no-track]

Train a model as a JSON or YAML config describes (model, data, train, optimizer, schedule, eval,
checkpoint); configs/shakespeare_char.json is nanoGPT's CPU configuration on TinyShakespeare.
data is a text file (path, char-level) or a kiln data prepare output (index). Prints the loss,
learning rate, gradient norm and time of every step (on a terminal: a progress bar with tokens/s
and the time left), the held-out loss every eval.interval steps (and eval.sample's generated text),
and each checkpoint once it is on disk (every checkpoint.every steps, at the end, and when
stopped with Ctrl-C or SIGTERM). The run is recorded in the runs database (tracking.db, default
runs/runs.sqlite next to the config; see kiln runs) as finished, failed or killed.

Options:
  --config FILE   the training config (JSON, or YAML when it ends in .yaml/.yml); an invalid
                  field is named with what it allows
  --resume        continue from the newest good checkpoint in checkpoint.dir (a corrupted newer
                  one is skipped with a warning; none there: start at step 0)
  --backend B     ${[...BACKEND_NAMES].reverse().join("|")}|auto (default: KILN_BACKEND, else auto)
  --comm C        local|nccl: how the ranks of a parallel job talk (default: KILN_COMM, else
                  local); nccl runs one rank per GPU (LOCAL_RANK picks it) and says plainly
                  which piece (driver, GPU, libnccl.so.2, the addon) is missing where it cannot
  --max-iters N   stop at step N (to measure; the lr schedule still follows train.iters)
  --json          print each event as one JSON line (losses exact: JSON numbers round-trip)
  --no-track      do not record the run in the runs database (as tracking.enabled: false)
  -h, --help      show this help

Under kiln launch (or torchrun's or Slurm's variables: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) each
process is one rank of a parallel job laid out as the config's parallel: section says (none: data
parallel over every rank): dp (each rank its rows of every batch, the gradients averaged), zero: 1|2|3
(the optimizer, 2: also the gradients, 3: also the parameters sharded over dp; every rank writes its part
of each checkpoint), tp (each rank its slices
of the model), pp (each rank a stage; parallel.microBatches, default 2 x pp) or ep (a model.moe's experts
shared out): dp, tp, pp and zero 1|2 in any combination (the 4D run: --nproc dp x tp x pp), zero 3 and ep
beside dp alone. Every rank checks it has the same config, the losses
follow the single-process run's, and rank 0 alone prints and records the run. Ranks send heartbeats (KILN_HEARTBEAT_TIMEOUT_MS: silence limit, default 5000) and a
hung or dead rank aborts the job naming it. After a restart by kiln launch --max-restarts
(KILN_RESTART_COUNT > 0) the run resumes from the newest good checkpoint by itself.

Exit status: 0 when the run finished, 1 when it failed (the message says why), 2 on a usage error
(an invalid config included).`;

const OPTIONS = {
  config: { type: "string" },
  backend: { type: "string" },
  comm: { type: "string" },
  "max-iters": { type: "string" },
  resume: { type: "boolean" },
  json: { type: "boolean" },
  "no-track": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function text(e: RunEvent): string {
  switch (e.kind) {
    case "start": return `${e.arch}: ${e.params} parameters, ${e.data}, on ${e.backend}, precision ${e.precision}`;
    case "resume": return `resumed from ${e.dir} at step ${e.step}`;
    case "step": return `step ${e.step}/${e.iters} | loss ${e.loss.toFixed(4)} | lr ${e.lr.toExponential(2)} | grad norm ${e.gradNorm.toFixed(3)}${e.lossScale !== 1 ? ` | loss scale ${e.lossScale}` : ""}${e.skipped ? " | skipped (fp16 overflow, scale halved)" : ""} | ${e.ms.toFixed(0)} ms`;
    case "eval": return `step ${e.step}: held-out loss ${e.loss.toFixed(4)} (${e.batches} batches)${e.moe ? `; MoE: ${e.moe.dropped} of ${e.moe.assignments} token-expert assignments dropped, load-balancing loss ${e.moe.auxLoss.toFixed(3)}` : ""}`;
    case "checkpoint": return `checkpoint: ${e.dir} (step ${e.step})`;
    case "export": return `exported the model of step ${e.step} to ${e.dir}: ${e.files.map((f) => f.name).join(", ")}`;
    case "memory": return `memory at step ${e.step}: ${describeMemory(e.memory)}`;
    case "sample": return `step ${e.step}: sample ${JSON.stringify(e.prompt + e.text)}`;
  }
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export const trainCommand: Command = {
  name: "train",
  summary: "train a model from a config file (JSON or YAML)",
  help: HELP,
  async run(argv) {
    const { values: v } = parseCommandArgs(this, argv, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (v.config === undefined) throw new UsageError("train: --config is required", this);
    const backendName = v.backend as BackendName | "auto" | undefined;
    if (backendName !== undefined && backendName !== "auto" && !BACKEND_NAMES.includes(backendName)) {
      throw new UsageError(`train: --backend must be one of ${[...BACKEND_NAMES, "auto"].join(", ")}, got '${backendName}'`, this);
    }
    const commName = v.comm ?? (process.env.KILN_COMM || "local");
    if (!COMM_BACKENDS.includes(commName as CommBackend)) throw new UsageError(`train: --comm (or KILN_COMM) must be one of ${COMM_BACKENDS.join(", ")}, got '${commName}'`, this);
    let maxIters: number | undefined;
    if (v["max-iters"] !== undefined) {
      if (!/^\d+$/.test(v["max-iters"]) || Number(v["max-iters"]) < 1) throw new UsageError(`train: --max-iters must be a positive integer, got '${v["max-iters"]}'`, this);
      maxIters = Number(v["max-iters"]);
    }
    const path = resolve(v.config);
    let json: unknown;
    try {
      json = parseConfigText(readFileSync(path, "utf8"), path);
    } catch (err) {
      throw new UsageError(`train: cannot read the config ${path}: ${(err as Error).message}`, this);
    }
    let cfg;
    try {
      cfg = parseTrainConfig(json, path);
    } catch (err) {
      throw new UsageError((err as Error).message, this);
    }
    // The run's layout (its config's parallel: section), checked against the world size; modes not wired in yet are refused.
    const worldSize = readRankEnv()?.worldSize ?? 1;
    // NOTE: no parallel section: data parallel over every rank (as before layouts existed).
    let layout: ParallelLayout = { dp: worldSize, tp: 1, pp: 1, ep: 1, zero: 0 };
    try {
      const parallel = resolveTrainParallel(cfg, path, { worldSize, vocabSize: AUTO_VOCAB });
      const notYet = parallel && notYetParallel(parallel.layout, path, { checkpoint: cfg.checkpoint !== undefined, moe: cfg.model.moe !== undefined, sample: cfg.eval.sample !== undefined, export: cfg.export !== undefined, precision: cfg.precision, memory: cfg.memory !== undefined });
      if (notYet) throw new Error(notYet);
      if (parallel) console.error(`kiln train: parallel ${describeParallel(parallel.layout)} (${parallel.from})`);
      if (parallel) layout = parallel.layout;
    } catch (err) {
      throw new UsageError((err as Error).message, this);
    }
    const backend = await selectBackend(backendName);
    const rankEnv = readRankEnv();
    const restarts = restartCount();
    // NOTE: the launcher's marker lines only when a kiln launch that reads them started us (it sets the count).
    const markers = restarts !== undefined;
    const dist = rankEnv && rankEnv.worldSize > 1 ? await joinParallel(rankEnv, { layout, source: path, run: { batchSize: cfg.train.batchSize, blockSize: cfg.model.blockSize, gradAccumSteps: cfg.train.gradAccumSteps } }, markers, process.env, commName as CommBackend) : undefined;
    // NOTE: one rank speaks for the job (every rank holds the same state); the others print only errors.
    const lead = !dist || dist.rank === 0;
    // NOTE: the bar only on a terminal: piped or logged output (and the tests) keep one plain line per step.
    const bar = lead && !v.json && process.stdout.isTTY
      ? new ProgressBar(process.stdout, Math.min(cfg.train.iters, maxIters ?? Infinity), cfg.train.batchSize * cfg.model.blockSize * cfg.train.gradAccumSteps)
      : undefined;
    const print = v.json
      ? (e: RunEvent) => console.log(JSON.stringify(e))
      : bar
        ? (e: RunEvent) => (e.kind === "step" ? bar.step(e) : bar.print(text(e)))
        : (e: RunEvent) => console.log(text(e));
    let stepped = false;
    const report = (e: RunEvent) => {
      if (!lead) return;
      print(e);
      // The launcher times a recovery from a failure to the first step after the restart.
      if (markers && e.kind === "step" && !stepped) process.stderr.write(markerLine({ kind: "step", step: e.step, rank: dist?.rank ?? 0 }));
      stepped ||= e.kind === "step";
    };
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    // NOTE: on, not once: Ctrl-C reaches this process twice (the terminal signals the whole group, and the
    // launcher forwards its copy); a once handler would leave the second to Node's default, which kills the run
    // before its stop checkpoint.
    process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
    let result;
    try {
      const tracking = v["no-track"] || !lead ? undefined : trackingTarget(cfg, path, dirname(path));
      result = await runTrackedTraining(cfg, {
        backend, baseDir: dirname(path), resume: (v.resume ?? false) || (restarts ?? 0) > 0, signal: stop.signal, report,
        ...(maxIters ? { maxIters } : {}), ...(tracking ? { tracking } : {}), ...(dist ? { parallel: dist.parallel } : {}),
      });
    } finally {
      bar?.end();
      await dist?.close();
      process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    }
    if (!lead) return 0;
    const ms = result.steps.map((s) => s.ms);
    const steady = ms.length > 1 ? ms.slice(1) : ms;
    if (v.json) {
      console.log(JSON.stringify({ kind: "done", steps: ms.length, valLoss: result.valLoss ?? null, valStep: result.valStep ?? null, medianMs: ms.length ? median(steady) : null }));
      return 0;
    }
    if (ms.length === 0) {
      console.log(stop.signal.aborted ? "stopped before the first step" : "done: no steps to take (the run had already reached its last step)");
      return 0;
    }
    // NOTE: stopped between evaluations, the last held-out loss is an earlier step's (or there is none yet): say which.
    const last = result.steps[result.steps.length - 1]!.step + 1;
    const held = result.valLoss === undefined ? "no held-out loss yet" : `held-out loss ${result.valLoss.toFixed(4)}${result.valStep === last ? "" : ` (at step ${result.valStep})`}`;
    console.log(`${stop.signal.aborted ? "stopped" : "done"}: ${result.steps.length} steps, ${held}, median ${median(steady).toFixed(0)} ms/step (first step ${ms[0]!.toFixed(0)} ms, with compiling)`);
    return 0;
  },
};
