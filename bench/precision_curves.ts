// precision_curves.ts: the same small char-level GPT-2 trained on TinyShakespeare in fp32, bf16, fp16 and
// fp8 (same data, seed and schedule), on cpu: prints each precision's path, step time (median) and how far
// its loss curve is from fp32's (mean and max |difference| per step), and draws the four curves into
// docs/images/precision_curves.svg and each low precision's difference from fp32 per step into
// precision_diff.svg beside it (the pictures in docs/training.md, "Mixed precision"): the curves
// themselves lie on top of each other at this scale.
//
//   npx tsx bench/precision_curves.ts [--iters 200] [--out docs/images/precision_curves.svg]

import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { selectBackend } from "../src/index.js";
import { parseTrainConfig, plotSvg, runTraining } from "../src/train/index.js";
import type { PlotLine, RunEvent } from "../src/train/index.js";
import { machineInfo } from "./lib/machine.js";

const { values } = parseArgs({ options: { iters: { type: "string", default: "200" }, out: { type: "string", default: "docs/images/precision_curves.svg" } } });
const iters = Number(values.iters);
const backend = await selectBackend("cpu");
const precisions = ["fp32", "bf16", "fp16", "fp8"] as const;
const curves = new Map<string, number[]>();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const precision of precisions) {
  const cfg = parseTrainConfig({
    model: { arch: "gpt2", nLayers: 2, nHeads: 2, dim: 32, blockSize: 32 },
    data: { path: "data/tinyshakespeare/input.txt", tokenizer: "char" },
    train: { batchSize: 8, iters, seed: 1337 },
    optimizer: { kind: "adamw", lr: 3e-3, beta2: 0.99, weightDecay: 0.1 },
    schedule: { kind: "cosine", warmupSteps: 20, decaySteps: iters, minLr: 3e-4 },
    eval: { interval: iters, batches: 4 },
    precision,
  }, "bench/precision_curves.ts");
  const losses: number[] = [];
  const ms: number[] = [];
  let path = "";
  let skipped = 0;
  const report = (e: RunEvent) => {
    if (e.kind === "start") path = e.precision;
    if (e.kind !== "step") return;
    if (e.skipped) { skipped++; return; }
    losses.push(e.loss);
    ms.push(e.ms);
  };
  const r = await runTraining(cfg, { backend, baseDir: process.cwd(), report });
  curves.set(precision, losses);
  const ref = curves.get("fp32")!;
  const diff = losses.map((l, i) => Math.abs(l - ref[i]!));
  console.log(`${precision}: ${path}`);
  console.log(`  ${median(ms).toFixed(0)} ms/step (median), final loss ${losses.at(-1)!.toFixed(4)}, held-out ${r.valLoss?.toFixed(4) ?? "none"}, skipped steps ${skipped}` +
    (precision === "fp32" ? "" : `, |loss - fp32|: mean ${(diff.reduce((a, b) => a + b, 0) / diff.length).toFixed(4)}, max ${Math.max(...diff).toFixed(4)}`));
}

const lines: PlotLine[] = precisions.map((p) => ({ label: p, points: curves.get(p)!.map((l, i) => [i + 1, l] as const) }));
writeFileSync(values.out, plotSvg(lines, { metric: "loss", title: `GPT-2 2x32 char-level TinyShakespeare, ${iters} steps, cpu: fp32 / bf16 / fp16 / fp8` }));
const ref = curves.get("fp32")!;
const diffs: PlotLine[] = precisions.slice(1).map((p) => ({ label: p, points: curves.get(p)!.map((l, i) => [i + 1, l - ref[i]!] as const) }));
const diffOut = values.out.replace(/curves\.svg$/, "diff.svg");
writeFileSync(diffOut, plotSvg(diffs, { metric: "loss - fp32 loss", title: `The same runs: each precision's loss minus fp32's, per step` }));
console.log(`wrote ${diffOut}`);
const m = machineInfo();
console.log(`wrote ${values.out} (${new Date().toISOString().slice(0, 10)}, ${m.cpu}, ${m.cores} cores)`);
