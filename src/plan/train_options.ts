// train_options.ts: the training options that change a layout's memory and time without being a
// parallel degree the planner searches: the training precision (bf16 mixed, fp32, fp8), the pipeline
// schedule (1F1B, interleaved, zero-bubble ZB-H1), context parallelism, selective recomputation,
// sequence parallelism off and non-flash ("eager") attention. A user fixes them
// (`kiln plan train --train-precision fp8 --schedule zb-h1 --cp 4 ...`); every layout of the search
// carries them. Their effect is train_memory.ts's and train_step.ts's; checking them is here.

import type { LoraOptions } from "./lora.js";
import { PlanInputError } from "./units.js";

export const TRAIN_PRECISIONS = ["bf16", "fp32", "fp8"] as const;
export type TrainPrecision = (typeof TRAIN_PRECISIONS)[number];
export const SCHEDULES = ["1f1b", "interleaved", "zb-h1"] as const;
export type PipelineSchedule = (typeof SCHEDULES)[number];
export const ATTENTION_KINDS = ["flash", "eager"] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

/** The options, all optional: absent means bf16 mixed precision, 1F1B, no CP, SP on, flash attention. */
export interface TrainOptions {
  readonly precision?: TrainPrecision;
  /** "zb-h1": Qi et al. 2023's zero-bubble schedule; "interleaved" is set by `interleave` > 1. */
  readonly schedule?: PipelineSchedule;
  /** Context parallel degree: each sequence split over cp GPUs (ring attention); world = tp x cp x pp x dp. */
  readonly cp?: number;
  /** Selective recomputation (Korthikanti et al. 2022): recompute only attention's scores and softmax. */
  readonly selective?: boolean;
  /** Sequence parallelism with tp (default true): false keeps the norms' and the matmul inputs' activations whole on every tp rank. */
  readonly sequenceParallel?: boolean;
  /** "eager" materializes the s x s attention scores per head (no flash attention). */
  readonly attention?: AttentionKind;
  /** Fine-tune rank-r adapters on a frozen base (bf16, or NF4 under QLoRA): data parallel only, ZeRO 0. */
  readonly lora?: LoraOptions;
}

export const cpOf = (o: TrainOptions): number => o.cp ?? 1;
export const precisionOf = (o: TrainOptions): TrainPrecision => o.precision ?? "bf16";

function pick<T extends string>(flag: string, text: string, known: readonly T[]): T {
  const v = known.find((k) => k === text.toLowerCase());
  if (!v) throw new PlanInputError(`${flag}: '${text}' is not one of ${known.join(", ")}`);
  return v;
}

export const parseTrainPrecision = (text: string): TrainPrecision => pick("--train-precision", text, TRAIN_PRECISIONS);
export const parseSchedule = (text: string): PipelineSchedule => pick("--schedule", text, SCHEDULES);
export const parseAttention = (text: string): AttentionKind => pick("--attention", text, ATTENTION_KINDS);

/**
 * Options that cannot go with the layout or the model: an error naming the flag. `pp` and
 * `interleave` are the fixed ones (undefined when searched); `checkpointing` the fixed recompute.
 */
export function checkTrainOptions(seqLen: number, o: TrainOptions, fixed: { tp?: number; pp?: number; zero?: number; offload?: boolean; interleave?: number; checkpointing?: boolean }): void {
  const cp = cpOf(o);
  if (!(Number.isInteger(cp) && cp >= 1)) throw new PlanInputError(`--cp: ${o.cp} is not a positive whole number`);
  if (cp > 1 && seqLen % (2 * cp) !== 0) {
    // NOTE: Megatron's CP splits each sequence into 2 x cp chunks (each rank takes one from each end, to balance the causal mask).
    throw new PlanInputError(`--cp: ${cp} needs the sequence length (${seqLen}) to divide into 2 x cp = ${2 * cp} chunks`);
  }
  const v = fixed.interleave ?? 1;
  if (o.schedule === "zb-h1") {
    if (v > 1) throw new PlanInputError(`--schedule zb-h1: kiln models ZB-H1 for one model chunk per GPU, not with --interleave ${v}`);
    if (fixed.pp !== undefined && fixed.pp < 2) throw new PlanInputError(`--schedule zb-h1: a pipeline schedule needs pipeline stages (--pp 2 or more, got ${fixed.pp})`);
  }
  if (o.schedule === "interleaved" && v < 2) throw new PlanInputError(`--schedule interleaved: give the model chunks per GPU with --interleave V (2 or more)`);
  if (o.schedule === "1f1b" && v > 1) throw new PlanInputError(`--schedule 1f1b: --interleave ${v} asks for the interleaved schedule`);
  if (o.lora) {
    // NOTE: LoRA fine-tuning is modelled as its users run it: whole replicas, data parallel only.
    for (const [flag, v, ok] of [["--tp", fixed.tp, 1], ["--pp", fixed.pp, 1], ["--zero", fixed.zero, 0], ["--cp", o.cp, 1]] as const) {
      if (v !== undefined && v !== ok) throw new PlanInputError(`--lora: kiln models LoRA as data parallel only; ${flag} must be ${ok} (got ${v})`);
    }
    if (fixed.offload === true) throw new PlanInputError(`--lora: optimizer offload is not modelled with LoRA (its optimizer state is the adapters' alone)`);
  }
  if (o.selective === true && fixed.checkpointing === true) throw new PlanInputError(`--recompute: selective and full recomputation are exclusive`);
}
