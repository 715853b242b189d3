// train.ts (npm run bench:train): peak device memory and step time of one training configuration
// under each memory setting (activation checkpointing none / layer / every-2 / attention, and layer
// with its inputs offloaded to disk), measured by the allocator's accounting (core/memory.ts), beside
// the capacity planner's formula for the same configuration (src/plan/train_memory.ts), and where the
// two differ. The model is nanoGPT's shakespeare_char (GPT-2, 4 layers, 4 heads, 128 dim, block 64,
// batch 12) on TinyShakespeare. Results: docs/bench/train_memory.json and .md (date, machine, CPU).
// NOTE: one function per section (measure, plan, compare, render), so another section (a PyTorch
// step-time comparison) can be added beside them.
//
//   npm run bench:train [-- --steps 4 --backend cpu --out docs/bench]

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { BackendName, MemorySnapshot } from "../src/index.js";
import { getBackend, memoryAccountant, trackMemory } from "../src/index.js";
import { Gpt2 } from "../src/models/gpt2.js";
import type { Gpt2Config } from "../src/models/types.js";
import { planModelFromConfig } from "../src/plan/plan_model.js";
import { trainMemoryPerGpu } from "../src/plan/train_memory.js";
import type { TrainMemory } from "../src/plan/train_memory.js";
import { RandomWindows } from "../src/train/batches.js";
import { charVocab } from "../src/train/char_vocab.js";
import { initParameters } from "../src/train/init.js";
import type { ActivationCheckpointing } from "../src/train/memory/config.js";
import { DiskStore } from "../src/train/memory/store.js";
import { Trainer } from "../src/train/trainer.js";
import { machineInfo } from "./lib/machine.js";
import type { MachineInfo } from "./lib/machine.js";

const ROOT = resolve(import.meta.dirname, "..");

export interface Setting {
  readonly name: string;
  readonly checkpointing: ActivationCheckpointing;
  readonly offload?: "disk";
}

export const SETTINGS: readonly Setting[] = [
  { name: "none", checkpointing: "none" },
  { name: "layer", checkpointing: "layer" },
  { name: "every-2", checkpointing: { every: 2 } },
  { name: "attention", checkpointing: "attention" },
  { name: "layer + offload (disk)", checkpointing: "layer", offload: "disk" },
];

export interface Measured {
  readonly setting: string;
  /** Median step time over the measured steps (ms). */
  readonly stepMs: number;
  readonly stepsMs: readonly number[];
  /** Peaks over the warm-up step (a capture's allocations) and the measured steps, bytes. */
  readonly peak: MemorySnapshot["peak"];
  readonly peakTotal: number;
  readonly losses: readonly number[];
  readonly offloadedBytesPerStep: number;
}

export interface Planned {
  readonly setting: string;
  /** The planner's bytes, or why it has no formula for this setting. */
  readonly formula: TrainMemory | { readonly none: string };
}

const CONFIG = { nLayers: 4, nHeads: 4, dim: 128, blockSize: 64, batchSize: 12 };

function modelConfig(vocabSize: number): Gpt2Config {
  return { arch: "gpt2", dim: CONFIG.dim, nLayers: CONFIG.nLayers, nHeads: CONFIG.nHeads, vocabSize, maxSeqLen: CONFIG.blockSize, normEps: 1e-5 };
}

/**
 * Section 1: train a few steps under each setting, each on its own accounted backend. NOTE: the
 * settings take turns step by step, so a busy spell of a shared machine falls on all of them alike.
 */
export async function measureSettings(backendName: BackendName, steps: number, tokens: Int32Array, vocabSize: number): Promise<Measured[]> {
  const runs = [];
  for (const s of SETTINGS) {
    const backend = trackMemory(await getBackend(backendName));
    const model = new Gpt2(modelConfig(vocabSize), backend);
    await initParameters(model, { seed: 1337 });
    const store = s.offload ? new DiskStore() : undefined;
    const trainer = new Trainer(model, new RandomWindows(tokens, CONFIG.batchSize, CONFIG.blockSize, 1337), {
      schedule: { kind: "constant", lr: 1e-3 }, adamw: { beta2: 0.99, weightDecay: 0.1 }, maxGradNorm: 1,
      memory: { activationCheckpointing: s.checkpointing, ...(store ? { offload: store } : {}) },
    });
    runs.push({ s, backend, trainer, times: [] as number[], losses: [] as number[], offloaded0: 0 });
  }
  try {
    for (const r of runs) {
      // NOTE: the window opens before the warm-up step: a captured step (every setting but offload)
      // allocates its buffers when it is captured, there, and its replays allocate nothing.
      memoryAccountant(r.backend)!.resetPeak();
      await r.trainer.trainStep(); // compiles (and captures)
      r.offloaded0 = r.trainer.memory.offloader?.offloadedBytes ?? 0;
    }
    for (let i = 0; i < steps; i++) {
      for (const r of runs) {
        const st = await r.trainer.trainStep();
        r.times.push(st.ms);
        r.losses.push(st.loss);
      }
    }
    return runs.map((r) => {
      const snap = r.trainer.memory.snapshot()!;
      const offloaded = ((r.trainer.memory.offloader?.offloadedBytes ?? 0) - r.offloaded0) / steps;
      console.error(`${r.s.name}: ${median(r.times).toFixed(0)} ms/step, peak activations ${mib(snap.peak.activations)}, total ${mib(snap.peakTotal)}`);
      return { setting: r.s.name, stepMs: median(r.times), stepsMs: r.times, peak: snap.peak, peakTotal: snap.peakTotal, losses: r.losses, offloadedBytesPerStep: offloaded };
    });
  } finally {
    for (const r of runs) r.trainer.memory.close();
  }
}

/** Section 2: the planner's formula for the same model and batch, fp32, one device. */
export function plannerSection(vocabSize: number): Planned[] {
  const m = planModelFromConfig(modelConfig(vocabSize), "shakespeare_char");
  const layout = (checkpointing: boolean) => ({
    tp: 1, pp: 1, dp: 1, ep: 1, zero: 0 as const, checkpointing, offload: false,
    microBatch: CONFIG.batchSize, microBatches: 1, seqLen: CONFIG.blockSize,
  });
  return SETTINGS.map((s) => {
    if (s.checkpointing === "none") return { setting: s.name, formula: trainMemoryPerGpu(m, layout(false), "fp32") };
    if (s.checkpointing === "layer" && !s.offload) return { setting: s.name, formula: trainMemoryPerGpu(m, layout(true), "fp32") };
    const why = s.offload
      ? "the planner's offload moves optimizer state to the host (ZeRO-Offload), not activations"
      : "the planner models full checkpointing (every layer) only";
    return { setting: s.name, formula: { none: why } };
  });
}

/** Section 3: where measurement and formula differ, as sentences. */
export function differences(measured: readonly Measured[], planned: readonly Planned[]): string[] {
  const notes: string[] = [];
  for (const p of planned) {
    const m = measured.find((x) => x.setting === p.setting)!;
    if ("none" in p.formula) {
      notes.push(`${p.setting}: no formula (${p.formula.none}); measured peak activations ${mib(m.peak.activations)}${versus(m, measured)}.`);
      continue;
    }
    const f = p.formula;
    const ratio = (a: number, b: number) => (b === 0 ? "n/a" : `${(a / b).toFixed(2)}x`);
    // NOTE: the update assigns in place (one copy); a second copy would mean new values computed beside the old.
    const inPlace = (a: number, b: number, what: string) => (a > 1.5 * b ? `: the new ${what} are computed while the old ones are alive` : `: updated in place`);
    notes.push(
      `${p.setting}: activations measured ${mib(m.peak.activations)} vs formula ${mib(f.activations)} (${ratio(m.peak.activations, f.activations)}); ` +
      `parameters ${mib(m.peak.parameters)} vs ${mib(f.weights)} (${ratio(m.peak.parameters, f.weights)}${inPlace(m.peak.parameters, f.weights, "parameters")}); ` +
      `gradients ${mib(m.peak.gradients)} vs ${mib(f.grads)} (${ratio(m.peak.gradients, f.grads)}: gradients live only inside the step's schedule, freed after the update reads them); ` +
      `optimizer ${mib(m.peak.optimizer)} vs ${mib(f.optimizer)} (${ratio(m.peak.optimizer, f.optimizer)}${inPlace(m.peak.optimizer, f.optimizer, "moments")}). ` +
      `The formula counts what the forward keeps for the backward (and the logits); the measurement also counts the backward's own ` +
      `temporaries alive at the peak (gradients of activations, the recomputed block, the loss's intermediates).`,
    );
  }
  return notes;
}

/** The measured activation peak against the settings it should be compared with. */
function versus(m: Measured, all: readonly Measured[]): string {
  const of = (name: string) => all.find((x) => x.setting === name)!.peak.activations;
  if (m.setting === "attention") {
    return ` against none's ${mib(of("none"))}: kiln's attention routine already keeps no probabilities (its backward recomputes them), ` +
      `so recomputing attend() saves nothing and keeps its q, k, v views besides`;
  }
  if (m.setting.includes("offload")) {
    return ` against layer's ${mib(of("layer"))}: the step is one lazy graph, so the offloaded inputs are uploaded again when the backward ` +
      `is built, all before it runs, and the forward is computed in a realize of its own; offload frees device memory between ` +
      `forward and backward, not at the backward's peak`;
  }
  return ` against none's ${mib(of("none"))} and layer's ${mib(of("layer"))}`;
}

export interface TrainMemoryResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly backend: string;
  readonly config: typeof CONFIG & { readonly vocabSize: number; readonly steps: number };
  readonly measured: readonly Measured[];
  readonly planned: readonly Planned[];
  readonly differences: readonly string[];
}

/** Section 4: the markdown page. */
export function renderMarkdown(r: TrainMemoryResults): string {
  const c = r.config;
  const lines = [
    `# Training memory: checkpointing and offload (bench:train)`,
    ``,
    `${r.date}, ${r.machine.cpu} (${r.machine.cores} cores, ${r.machine.memoryGiB} GiB), ${r.machine.os}, Node ${r.machine.node}, backend ${r.backend}.`,
    `Model: GPT-2 ${c.nLayers} layers, ${c.nHeads} heads, dim ${c.dim}, block ${c.blockSize}, batch ${c.batchSize}, vocab ${c.vocabSize} (nanoGPT shakespeare_char), f32, AdamW.`,
    `Peaks are the allocator's accounting (core/memory.ts) over a warm-up step (where a jit capture allocates) and ${c.steps} steps; step time is the ${c.steps} steps' median`,
    `(a shared, noisy machine: compare within one run). Workspace is memory the schedule's reuse pool holds without a live value.`,
    ``,
    `| setting | step ms | peak total MiB | activations | parameters | gradients | optimizer | workspace | offloaded/step | planner activations | planner total |`,
    `|---|---|---|---|---|---|---|---|---|---|---|`,
  ];
  for (const m of r.measured) {
    const p = r.planned.find((x) => x.setting === m.setting)!.formula;
    const pl = "none" in p ? ["-", "-"] : [mibN(p.activations), mibN(p.total)];
    lines.push(`| ${m.setting} | ${m.stepMs.toFixed(0)} | ${mibN(m.peakTotal)} | ${mibN(m.peak.activations)} | ${mibN(m.peak.parameters)} | ${mibN(m.peak.gradients)} | ${mibN(m.peak.optimizer)} | ${mibN(m.peak.workspace)} | ${mibN(m.offloadedBytesPerStep)} | ${pl[0]} | ${pl[1]} |`);
  }
  lines.push(``, `## Where measurement and formula differ`, ``, ...r.differences.map((d) => `- ${d}`), ``);
  lines.push(`Losses of the measured steps are the same in every setting (checkpointing and offload change memory, not math):`, ``);
  for (const m of r.measured) lines.push(`- ${m.setting}: ${m.losses.map((l) => l.toFixed(6)).join(", ")}`);
  lines.push(``, `Regenerate: \`npm run bench:train\` (writes docs/bench/train_memory.json and .md).`, ``);
  return lines.join("\n");
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
const mibN = (b: number) => (b / 2 ** 20).toFixed(2);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { steps: { type: "string", default: "4" }, backend: { type: "string", default: "cpu" }, out: { type: "string", default: "docs/bench" } } });
  const steps = Number(values.steps);
  if (!(Number.isInteger(steps) && steps > 0)) throw new Error(`--steps must be a positive integer, got ${values.steps}`);
  const text = readFileSync(join(ROOT, "data/tinyshakespeare/input.txt"), "utf8");
  const vocab = charVocab(text);
  const tokens = vocab.encode(text);
  const backend = values.backend as BackendName;
  const measured = await measureSettings(backend, steps, tokens, vocab.chars.length);
  const planned = plannerSection(vocab.chars.length);
  const results: TrainMemoryResults = {
    date: new Date().toISOString(), machine: machineInfo(), backend, config: { ...CONFIG, vocabSize: vocab.chars.length, steps },
    measured, planned, differences: differences(measured, planned),
  };
  const out = resolve(ROOT, values.out!);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "train_memory.json"), JSON.stringify(results, null, 2) + "\n");
  writeFileSync(join(out, "train_memory.md"), renderMarkdown(results));
  console.log(renderMarkdown(results));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
