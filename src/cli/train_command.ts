// train_command.ts: `kiln train --config FILE`: read and validate a training config (JSON), pick the
// backend, run it (src/train's runTraining), print one line per step and a summary with the median
// step time. It owns the flags and the printing; the run itself is the train layer's.

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { BackendName } from "../index.js";
import { BACKEND_NAMES, selectBackend } from "../index.js";
import { parseTrainConfig, runTraining } from "../train/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";

const HELP = `Usage: kiln train --config FILE [--backend B] [--max-iters N]

Train a model from scratch as a JSON config describes (model, data, train, optimizer, schedule,
eval, out); configs/shakespeare_char.json is nanoGPT's CPU configuration on TinyShakespeare.
Prints the loss, learning rate, gradient norm and time of every step, the held-out loss every
eval.interval steps, and writes the final checkpoint to "out" when the config names one.

Options:
  --config FILE   the training config (JSON); an invalid field is named with what it allows
  --backend B     ${[...BACKEND_NAMES].reverse().join("|")}|auto (default: KILN_BACKEND, else auto)
  --max-iters N   stop after N steps (to measure; the lr schedule still follows train.iters)
  -h, --help      show this help

Exit status: 0 when the run finished, 1 when it failed (the message says why), 2 on a usage error
(an invalid config included).`;

const OPTIONS = {
  config: { type: "string" },
  backend: { type: "string" },
  "max-iters": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export const trainCommand: Command = {
  name: "train",
  summary: "train a model from a config file (JSON)",
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
    let maxIters: number | undefined;
    if (v["max-iters"] !== undefined) {
      if (!/^\d+$/.test(v["max-iters"]) || Number(v["max-iters"]) < 1) throw new UsageError(`train: --max-iters must be a positive integer, got '${v["max-iters"]}'`, this);
      maxIters = Number(v["max-iters"]);
    }
    const path = resolve(v.config);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new UsageError(`train: cannot read the config ${path}: ${(err as Error).message}`, this);
    }
    let cfg;
    try {
      cfg = parseTrainConfig(json, path);
    } catch (err) {
      throw new UsageError((err as Error).message, this);
    }
    const backend = await selectBackend(backendName);
    const result = await runTraining(cfg, { backend, baseDir: dirname(path), ...(maxIters ? { maxIters } : {}), log: (l) => console.log(l) });
    const ms = result.steps.map((s) => s.ms);
    const steady = ms.length > 1 ? ms.slice(1) : ms;
    console.log(`done: ${result.steps.length} steps, held-out loss ${result.valLoss.toFixed(4)}, median ${median(steady).toFixed(0)} ms/step (first step ${ms[0]!.toFixed(0)} ms, with compiling)`);
    return 0;
  },
};
