// train_layouts.ts: the layouts the training planner considers: every tensor/pipeline/data/expert
// parallel degree, ZeRO stage, checkpointing, offload and microbatch size that divides the cluster
// and the batch, or only those a user fixed (`kiln plan train --tp 8 --pp 16 ...`, a train config's
// `parallel:` block). Checking fixed values against the cluster and the model is here too, each
// error naming the field. Ranking them is train_plan.ts's.

import type { GpuSpec } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import type { TrainLayout, ZeroStage } from "./train_memory.js";
import type { TrainOptions } from "./train_options.js";
import { cpOf } from "./train_options.js";
import { PlanInputError } from "./units.js";

/** Values a user fixes; the planner searches the rest. The options (precision, schedule, cp, ...) are never searched. */
export interface FixedLayout extends TrainOptions {
  readonly tp?: number;
  readonly pp?: number;
  readonly dp?: number;
  readonly ep?: number;
  readonly zero?: ZeroStage;
  /** Sequences per microbatch. */
  readonly microBatch?: number;
  readonly checkpointing?: boolean;
  readonly offload?: boolean;
  /** Model chunks per GPU of the interleaved pipeline schedule (never searched: only fixed). */
  readonly interleave?: number;
}

export const FIXED_FIELDS = ["tp", "pp", "dp", "ep", "zero", "microBatch", "checkpointing", "offload", "interleave"] as const;

/** The options of a fixed layout alone (what a re-plan at another GPU count keeps). */
export function optionsOf(f: FixedLayout): TrainOptions {
  return Object.fromEntries((["precision", "schedule", "cp", "selective", "sequenceParallel", "attention", "lora"] as const).filter((k) => f[k] !== undefined).map((k) => [k, f[k]]));
}

const powersOfTwo = (max: number): number[] => {
  const out: number[] = [];
  for (let x = 1; x <= max; x *= 2) out.push(x);
  return out;
};

const divisors = (n: number): number[] => {
  const out: number[] = [];
  for (let x = 1; x <= n; x++) if (n % x === 0) out.push(x);
  return out;
};

/**
 * Fixed values that cannot describe a layout of `gpus` GPUs for the model: an error naming the field
 * (`source` says where they came from: "--tp" style flags, or a config's "parallel.").
 */
export function checkFixedLayout(m: PlanModel, gpus: number, f: FixedLayout, prefix = "--"): void {
  const name = (k: string) => (prefix === "--" ? `--${k === "microBatch" ? "mb" : k}` : `${prefix}${k}`);
  for (const k of ["tp", "pp", "dp", "ep", "microBatch", "interleave"] as const) {
    const v = f[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new PlanInputError(`${name(k)}: ${v} is not a positive whole number`);
  }
  if (f.zero !== undefined && ![0, 1, 2, 3].includes(f.zero)) throw new PlanInputError(`${name("zero")}: ${f.zero} is not a ZeRO stage (0, 1, 2 or 3)`);
  const { tp, pp, dp, ep } = f;
  const cp = cpOf(f);
  const cpText = cp > 1 ? ` x ${name("cp")} ${cp}` : "";
  if (tp !== undefined && pp !== undefined && dp !== undefined && tp * pp * dp * cp !== gpus) {
    throw new PlanInputError(`${name("tp")} ${tp} x ${name("pp")} ${pp} x ${name("dp")} ${dp}${cpText} = ${tp * pp * dp * cp}, but the world size is ${gpus} GPUs: they must multiply to it`);
  }
  const product = (tp ?? 1) * (pp ?? 1) * (dp ?? 1) * cp;
  if (gpus % product !== 0) {
    const given = (["tp", "pp", "dp", "cp"] as const).filter((k) => f[k] !== undefined && !(k === "cp" && cp === 1)).map((k) => `${name(k)} ${f[k]}`).join(" x ");
    throw new PlanInputError(`${given} = ${product} does not divide the world size of ${gpus} GPUs`);
  }
  if (tp !== undefined && (m.nHeads % tp !== 0 || (m.nKvHeads % tp !== 0 && tp % m.nKvHeads !== 0))) {
    throw new PlanInputError(`${name("tp")}: ${tp} does not divide ${m.name}'s ${m.nHeads} attention heads and ${m.nKvHeads} KV heads`);
  }
  if (pp !== undefined && pp > m.nLayers) throw new PlanInputError(`${name("pp")}: ${pp} stages for ${m.name}'s ${m.nLayers} layers (at most one stage per layer)`);
  if (ep !== undefined && ep > 1) {
    if (!m.moe) throw new PlanInputError(`${name("ep")}: ${ep}, but ${m.name} has no experts (expert parallel needs a mixture of experts)`);
    if (m.moe.experts % ep !== 0) throw new PlanInputError(`${name("ep")}: ${ep} does not divide ${m.name}'s ${m.moe.experts} experts`);
    if (dp !== undefined && dp % ep !== 0) throw new PlanInputError(`${name("ep")}: ${ep} does not divide ${name("dp")} ${dp} (expert parallel is carved out of data parallel)`);
  }
  if (f.interleave !== undefined && f.interleave > 1) {
    if (f.pp === undefined || f.pp < 2) throw new PlanInputError(`${name("interleave")}: ${f.interleave} model chunks per GPU need pipeline stages (${name("pp")} 2 or more)`);
    if (f.pp * f.interleave > m.nLayers) throw new PlanInputError(`${name("interleave")}: ${f.pp} stages x ${f.interleave} chunks is more than ${m.name}'s ${m.nLayers} layers`);
  }
  if (f.offload === true && f.zero !== undefined && f.zero < 2) throw new PlanInputError(`${name("offload")}: optimizer offload needs ZeRO stage 2 or 3 (${name("zero")} is ${f.zero})`);
}

/** Every layout of `gpus` GPUs the planner considers for the model, within the fixed values. */
export function enumerateLayouts(m: PlanModel, gpu: GpuSpec, gpus: number, seqLen: number, batchTokens: number, f: FixedLayout = {}): TrainLayout[] {
  const sequences = Math.floor(batchTokens / seqLen);
  const cp = cpOf(f);
  const options = optionsOf(f);
  const headsDivide = (t: number) => m.nHeads % t === 0 && (m.nKvHeads % t === 0 || t % m.nKvHeads === 0);
  const tps = f.tp !== undefined ? [f.tp] : f.lora ? [1] : powersOfTwo(Math.min(gpu.gpusPerNode, 8)).filter(headsDivide);
  const out: TrainLayout[] = [];
  for (const tp of tps.filter((t) => gpus % (t * cp) === 0)) {
    const pps = f.pp !== undefined ? [f.pp] : f.lora ? [1] : divisors(gpus / (tp * cp)).filter((p) => p <= m.nLayers);
    for (const pp of pps.filter((p) => (gpus / (tp * cp)) % p === 0)) {
      const dp = gpus / (tp * pp * cp);
      if (f.dp !== undefined && f.dp !== dp) continue;
      const eps = f.ep !== undefined ? [f.ep] : m.moe ? divisors(dp).filter((e) => m.moe!.experts % e === 0) : [1];
      for (const ep of eps.filter((e) => dp % e === 0)) {
        for (const microBatch of f.microBatch !== undefined ? [f.microBatch] : [1, 2, 4, 8]) {
          const microBatches = Math.floor(sequences / (dp * microBatch));
          if (microBatches < 1) continue;
          // NOTE: ZeRO-2/3 shard gradients that pipeline stages accumulate across microbatches, which
          // DeepSpeed does not allow with pipeline parallelism (searched only; a fixed stage is kept);
          // offload needs ZeRO-2 or 3.
          const zeros: ZeroStage[] = f.zero !== undefined ? [f.zero] : f.lora ? [0] : pp === 1 ? [0, 1, 2, 3] : [0, 1];
          for (const zero of zeros) {
            const offloads = f.offload !== undefined ? [f.offload] : [false, true];
            for (const offload of offloads.filter((o) => !o || zero >= 2)) {
              for (const checkpointing of f.checkpointing !== undefined ? [f.checkpointing] : f.selective === true ? [false] : [false, true]) {
                out.push({ tp, pp, dp, ep, zero, checkpointing, offload, microBatch, microBatches, seqLen, ...(f.interleave !== undefined && pp > 1 ? { interleave: f.interleave } : {}), ...options });
              }
            }
          }
        }
      }
    }
  }
  return out;
}
