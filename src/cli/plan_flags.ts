// plan_flags.ts: the `kiln plan` flags beyond the request itself: the link model (efficiencies and
// latency), a fixed layout (--tp --pp --dp --ep --zero --mb --recompute --offload), a given MFU and
// price, and `--emit layout`, the `parallel:` block `kiln train` reads. Parsing and printing only;
// every number comes from src/plan.

import type { CommModel, FixedLayout, GpuSpec, TrainCandidate, TrainPlan } from "../plan/index.js";
import { PlanInputError, commModel, parseAttention, parsePositive, parseSchedule, parseTrainPrecision } from "../plan/index.js";

type Values = Record<string, string | boolean | undefined>;

/** parseArgs options of the flags below (all strings but --offload and --sensitivity). */
export const COMM_OPTIONS = {
  "node-link-efficiency": { type: "string" }, "network-efficiency": { type: "string" }, "latency-scale": { type: "string" }, price: { type: "string" },
} as const;
export const FIXED_OPTIONS = {
  tp: { type: "string" }, pp: { type: "string" }, dp: { type: "string" }, ep: { type: "string" }, zero: { type: "string" }, mb: { type: "string" },
  recompute: { type: "string" }, offload: { type: "string" }, interleave: { type: "string" }, mfu: { type: "string" }, sensitivity: { type: "boolean" }, emit: { type: "string" },
  "train-precision": { type: "string" }, schedule: { type: "string" }, cp: { type: "string" }, "no-sp": { type: "boolean" }, attention: { type: "string" },
  lora: { type: "string" }, qlora: { type: "boolean" },
} as const;

export const PLAN_FLAGS_HELP = `  --tp N --pp N --dp N --ep N --zero S --mb N --recompute none|selective|full --offload on|off
                    (train) fix these values of the layout (tp x pp x dp [x cp] must equal --gpus
                    when all are given); the planner searches the rest, or evaluates the one layout;
                    --interleave V: the interleaved pipeline schedule, V model chunks per GPU
  --train-precision P  (train) bf16 (mixed, default), fp32 (TF32 matmuls) or fp8 (Transformer Engine)
  --schedule S      (train) pipeline schedule: 1f1b (default), interleaved (with --interleave), zb-h1
  --cp N            (train) context parallel degree: each sequence split over N GPUs (ring attention)
  --no-sp           (train) sequence parallelism off: norm and matmul inputs whole on every tp rank
  --attention A     (train) flash (default) or eager (keeps the s x s softmax output per head)
  --lora R [--qlora] (train) fine-tune rank-R adapters on every block linear of a frozen base, bf16
                    or (--qlora) 4-bit NF4; data parallel only
  --mfu X           (train) assume this MFU (0.4 or 40%) for time and cost instead of the step model's
  --price P         dollars per GPU-hour instead of the GPU table's
  --node-link-efficiency E, --network-efficiency E
                    share of the nominal link bandwidth NCCL reaches (defaults 0.82 and 0.94, from
                    NCCL's published figures; see docs/planning.md)
  --latency-scale S multiply NCCL's per-collective latencies (default 1; 0: none)
  --sensitivity     (train) also plan with nominal links and with 20% slower links, 2x latency
  --emit layout     (train) print only the chosen layout as the \`parallel:\` block of a kiln train
                    config (YAML; JSON with --json)`;

const str = (v: Values, k: string): string | undefined => (typeof v[k] === "string" ? (v[k] as string) : undefined);

/** "0.4" or "40%" as 0.4. */
export function parseShare(text: string, what: string): number {
  const pct = text.trim().endsWith("%");
  const x = parsePositive(pct ? text.trim().slice(0, -1) : text, what) / (pct ? 100 : 1);
  if (x > 1) throw new PlanInputError(`${what}: '${text}' is more than 100%`);
  return x;
}

export function commFromFlags(v: Values): CommModel | undefined {
  const e = str(v, "node-link-efficiency");
  const n = str(v, "network-efficiency");
  const l = str(v, "latency-scale");
  if (e === undefined && n === undefined && l === undefined) return undefined;
  let latencyScale: number | undefined;
  if (l !== undefined) {
    latencyScale = Number(l);
    if (l.trim() === "" || !(latencyScale >= 0 && Number.isFinite(latencyScale))) throw new PlanInputError(`--latency-scale: '${l}' is not a number >= 0`);
  }
  return commModel({
    ...(e === undefined ? {} : { nodeLinkEfficiency: parseShare(e, "--node-link-efficiency") }),
    ...(n === undefined ? {} : { networkEfficiency: parseShare(n, "--network-efficiency") }),
    ...(latencyScale === undefined ? {} : { latencyScale }),
  });
}

/** The GPU with --price applied. */
export function gpuWithPrice(gpu: GpuSpec, v: Values): GpuSpec {
  const p = str(v, "price");
  return p === undefined ? gpu : { ...gpu, pricePerHour: parsePositive(p, "--price") };
}

const whole = (text: string, flag: string): number => {
  const x = Number(text);
  if (text.trim() === "" || !Number.isInteger(x) || x < 1) throw new PlanInputError(`${flag}: '${text}' is not a positive whole number`);
  return x;
};

export function fixedFromFlags(v: Values): FixedLayout | undefined {
  const out: Record<string, number | boolean | string> = {};
  for (const [flag, key] of [["tp", "tp"], ["pp", "pp"], ["dp", "dp"], ["ep", "ep"], ["mb", "microBatch"], ["interleave", "interleave"]] as const) {
    const t = str(v, flag);
    if (t !== undefined) out[key] = whole(t, `--${flag}`);
  }
  const z = str(v, "zero");
  if (z !== undefined) {
    if (!/^[0-3]$/.test(z.trim())) throw new PlanInputError(`--zero: '${z}' is not a ZeRO stage (0, 1, 2 or 3)`);
    out.zero = Number(z);
  }
  const r = str(v, "recompute");
  if (r !== undefined) {
    if (r !== "none" && r !== "full" && r !== "selective") throw new PlanInputError(`--recompute: '${r}' is not none, selective or full (full: every layer's activations recomputed in backward; selective: attention's scores only)`);
    out.checkpointing = r === "full";
    if (r === "selective") out.selective = true;
  }
  const cp = str(v, "cp");
  if (cp !== undefined) out.cp = whole(cp, "--cp");
  const tp = str(v, "train-precision");
  if (tp !== undefined) out.precision = parseTrainPrecision(tp);
  const sc = str(v, "schedule");
  if (sc !== undefined) out.schedule = parseSchedule(sc);
  const at = str(v, "attention");
  if (at !== undefined) out.attention = parseAttention(at);
  if (v["no-sp"] === true) out.sequenceParallel = false;
  const lora = str(v, "lora");
  if (v.qlora === true && lora === undefined) throw new PlanInputError(`--qlora: give the adapters' rank with --lora R (QLoRA is LoRA on a 4-bit base)`);
  const loraOptions = lora === undefined ? undefined : { rank: whole(lora, "--lora"), qlora: v.qlora === true };
  const o = str(v, "offload");
  if (o !== undefined) {
    if (o !== "on" && o !== "off") throw new PlanInputError(`--offload: '${o}' is not on or off`);
    out.offload = o === "on";
  }
  const fixed = { ...out, ...(loraOptions ? { lora: loraOptions } : {}) };
  return Object.keys(fixed).length > 0 ? (fixed as FixedLayout) : undefined;
}

/** The `parallel:` block of a kiln train config for a candidate layout: plain data. */
export function parallelBlock(c: TrainCandidate): { parallel: { dp: number; tp: number; pp: number; ep: number; zero: number } } {
  const l = c.layout;
  return { parallel: { dp: l.dp, tp: l.tp, pp: l.pp, ep: l.ep, zero: l.zero } };
}

/** `--emit layout` as YAML: the block, and as comments what a train config sets elsewhere. */
export function emitLayoutYaml(p: TrainPlan): string {
  const b = p.best!;
  const l = b.layout;
  const { parallel } = parallelBlock(b);
  return [
    `# kiln plan train: ${p.model} on ${p.gpus} x ${p.gpu}; ${l.microBatch} sequence(s) of ${l.seqLen} per microbatch, ${l.microBatches} microbatches per step`,
    `# (train.batchSize: dp x microbatch = ${l.dp * l.microBatch}; train.gradAccumSteps: ${l.microBatches}; memory.activationCheckpointing: ${l.checkpointing ? "layer" : "none"}${l.offload ? "; optimizer offload" : ""})`,
    "parallel:",
    ...Object.entries(parallel).map(([k, x]) => `  ${k}: ${x}`),
  ].join("\n");
}
