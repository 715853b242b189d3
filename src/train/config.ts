// config.ts: the training configuration file (`kiln train --config FILE`, JSON or YAML), validated with zod.
// An invalid field is named by its path with what is allowed ("optimizer.beta2: must be < 1",
// "model.arch: expected one of gpt2, llama"); unknown fields are errors too (a typo must not be ignored).
// It only describes a run; cli/train_command.ts runs it.

import { z } from "zod";
import { PRECISIONS } from "./precision/mixed_precision.js";
import { MemoryConfigSchema } from "./memory/config.js";
import { ParallelConfigSchema } from "./parallel_config.js";

const posInt = z.number().int().positive();
const positive = z.number().positive();

export const TrainConfigSchema = z.strictObject({
  model: z.strictObject({
    arch: z.enum(["gpt2", "llama"]),
    nLayers: posInt,
    nHeads: posInt,
    dim: posInt,
    /** Tokens per training sequence, and the model's context. */
    blockSize: posInt,
    /** llama only: the SwiGLU hidden size (default: 4 dim * 2/3 rounded up to a multiple of 8). */
    hiddenDim: posInt.optional(),
    /** llama only (default nHeads). */
    nKvHeads: posInt.optional(),
    /** llama only: each block's MLP a mixture of SwiGLU experts (Mixtral; src/nn/moe.ts). */
    moe: z.strictObject({
      numExperts: posInt,
      /** Experts per token (Mixtral: 2). */
      topK: posInt.default(2),
      /** Slots per expert as a multiple of tokens * topK / numExperts; absent: unlimited (nothing dropped). */
      capacityFactor: positive.optional(),
      /** Weight of the load-balancing loss in the training objective (default 0.01, Switch's). */
      routerAuxLossCoef: z.number().nonnegative().default(0.01),
    }).optional(),
    normEps: positive.default(1e-5),
  }),
  /** Either `path` (a text file, char-level) or `index` (prepared shards); parseTrainConfig checks which. */
  data: z.strictObject({
    /** A UTF-8 text file, relative to the config file's folder or absolute. */
    path: z.string().min(1).optional(),
    tokenizer: z.enum(["char"]).optional(),
    /** The last fraction of the text is held out for evaluation. */
    valFraction: z.number().gt(0).lt(1).optional(),
    /** A `kiln data prepare` output: its folder, its index.json, or an http(s) URL of either. */
    index: z.string().min(1).optional(),
  }),
  train: z.strictObject({
    batchSize: posInt,
    iters: posInt,
    gradAccumSteps: posInt.default(1),
    /** Global gradient-norm clip; 0 turns clipping off. */
    maxGradNorm: z.number().nonnegative().default(1),
    seed: z.number().int().nonnegative().default(1337),
    /** Capture the step once with jit and replay it (false: build and realize it every step, the reference). */
    jit: z.boolean().default(true),
  }),
  optimizer: z.discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("adamw"),
      lr: positive,
      beta1: z.number().min(0).lt(1).default(0.9),
      beta2: z.number().min(0).lt(1).default(0.999),
      eps: positive.default(1e-8),
      weightDecay: z.number().nonnegative().default(0),
    }),
    /** torch.optim.SGD's semantics (optim/sgd.ts). */
    z.strictObject({
      kind: z.literal("sgd"),
      lr: positive,
      momentum: z.number().min(0).lt(1).default(0),
      dampening: z.number().min(0).lt(1).default(0),
      nesterov: z.boolean().default(false),
      weightDecay: z.number().nonnegative().default(0),
    }),
  ]),
  schedule: z.discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("constant") }),
    z.strictObject({ kind: z.literal("cosine"), warmupSteps: z.number().int().nonnegative(), decaySteps: posInt, minLr: z.number().nonnegative() }),
    z.strictObject({ kind: z.literal("linear"), warmupSteps: z.number().int().nonnegative(), decaySteps: posInt, minLr: z.number().nonnegative() }),
    /** Warmup-stable-decay: lr from warmupSteps to decayStart, then a linear decay to minLr at decaySteps. */
    z.strictObject({ kind: z.literal("wsd"), warmupSteps: z.number().int().nonnegative(), decayStart: z.number().int().nonnegative(), decaySteps: posInt, minLr: z.number().nonnegative() }),
  ]),
  eval: z.strictObject({
    interval: posInt,
    batches: posInt,
    /** At each evaluation, `tokens` tokens generated from `prompt` (sample_text.ts), printed and recorded. */
    sample: z.strictObject({
      prompt: z.string().min(1),
      tokens: posInt.default(32),
      /** 0: greedy; above: sampled (seeded by train.seed). */
      temperature: z.number().nonnegative().default(0),
      /** With prepared shards of a BPE vocabulary: its tokenizer.json (the index holds only its sha256). */
      tokenizer: z.string().min(1).optional(),
    }).optional(),
  }).default({ interval: 250, batches: 20 }),
  /** Compute precision; master weights and optimizer state stay f32 (docs/training.md, "Mixed precision"). */
  precision: z.enum(PRECISIONS).default("fp32"),
  /** Tuning of the chosen precision: fp16's loss scaling, fp8's delayed scaling. */
  precisionOptions: z.strictObject({
    lossScale: z.strictObject({ initScale: positive.optional(), growthInterval: posInt.optional() }).optional(),
    fp8: z.strictObject({ amaxHistory: posInt.optional(), margin: z.number().int().nonnegative().optional() }).optional(),
  }).optional(),
  /** Checkpoints every `every` steps and at the end, into `dir` (relative to the config file's folder). */
  checkpoint: z.strictObject({
    dir: z.string().min(1),
    every: posInt,
    /** How many of the newest checkpoints to keep. */
    keepLast: posInt.default(3),
    /** Also keep every checkpoint whose step is a multiple of this (0: none). */
    keepEvery: z.number().int().nonnegative().default(0),
  }).optional(),
  /** At the end of the run, the trained model as a folder inference tools open (train/export/): HF files and/or model.gguf. */
  export: z.strictObject({
    /** The folder to write, relative to the config file's folder; an earlier export there is replaced. */
    dir: z.string().min(1),
    formats: z.array(z.enum(["hf", "gguf"])).min(1).default(["hf", "gguf"]),
    /** data.index runs: the tokenizer file the shards were prepared with (default: its name beside index.json, or in the config's folder). */
    tokenizer: z.string().min(1).optional(),
  }).optional(),
  /** Activation checkpointing and offload (memory/config.ts). */
  memory: MemoryConfigSchema.optional(),
  /** How the run is laid out over its ranks: { dp, tp, pp, ep, zero } or "auto" (parallel_config.ts). */
  parallel: ParallelConfigSchema.optional(),
  /** The run's record in the runs database (tracking/); on unless `enabled` is false or `kiln train --no-track`. */
  tracking: z.strictObject({
    /** The runs database, relative to the config file's folder (default runs/runs.sqlite). */
    db: z.string().min(1).optional(),
    /** The run's name in `kiln runs` (default: the config file's base name). */
    name: z.string().min(1).optional(),
    enabled: z.boolean().default(true),
  }).optional(),
});

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** Validate parsed JSON; the error names every invalid field and what it allows. */
export function parseTrainConfig(json: unknown, source: string): TrainConfig {
  const r = TrainConfigSchema.safeParse(json);
  if (r.success) {
    const c = r.data;
    const sc = c.schedule;
    if (sc.kind === "wsd" && sc.decayStart < sc.warmupSteps) {
      throw new Error(`${source}: schedule.decayStart (${sc.decayStart}) must be at least schedule.warmupSteps (${sc.warmupSteps})`);
    }
    if (sc.kind !== "constant") {
      const [name, start] = sc.kind === "wsd" ? ["decayStart", sc.decayStart] : ["warmupSteps", sc.warmupSteps];
      if (sc.decaySteps <= start) throw new Error(`${source}: schedule.decaySteps (${sc.decaySteps}) must be above schedule.${name} (${start})`);
      if (sc.minLr > c.optimizer.lr) throw new Error(`${source}: schedule.minLr (${sc.minLr}) must be at most optimizer.lr (${c.optimizer.lr})`);
    }
    const o = c.optimizer;
    if (o.kind === "sgd" && o.nesterov && (o.momentum === 0 || o.dampening !== 0)) {
      throw new Error(`${source}: optimizer.nesterov needs optimizer.momentum > 0 and optimizer.dampening 0 (got momentum ${o.momentum}, dampening ${o.dampening})`);
    }
    const d = c.data;
    if ((d.path === undefined) === (d.index === undefined)) {
      throw new Error(`${source}: data: give exactly one of 'path' (a UTF-8 text file, char-level tokens) or 'index' (a kiln data prepare output: folder, index.json or http(s) URL)`);
    }
    if (d.index !== undefined && (d.tokenizer !== undefined || d.valFraction !== undefined)) {
      throw new Error(`${source}: data: 'tokenizer' and 'valFraction' go with 'path'; prepared shards ('index') carry their tokenizer and their val split`);
    }
    if (c.precisionOptions?.lossScale && c.precision !== "fp16") throw new Error(`${source}: precisionOptions.lossScale applies to precision fp16 only (precision is ${c.precision})`);
    if (c.precisionOptions?.fp8 && c.precision !== "fp8") throw new Error(`${source}: precisionOptions.fp8 applies to precision fp8 only (precision is ${c.precision})`);
    const moe = c.model.moe;
    if (moe && c.model.arch !== "llama") throw new Error(`${source}: model.moe: a mixture of experts goes with arch llama (Mixtral's blocks), not ${c.model.arch}`);
    if (moe && moe.topK > moe.numExperts) throw new Error(`${source}: model.moe.topK (${moe.topK}) must be at most model.moe.numExperts (${moe.numExperts})`);
    if (c.model.dim % c.model.nHeads !== 0) throw new Error(`${source}: model.dim (${c.model.dim}) must be a multiple of model.nHeads (${c.model.nHeads})`);
    return c;
  }
  const lines = r.error.issues.map((i) => {
    const at = i.path.length ? i.path.join(".") : "(top level)";
    let msg = i.message;
    if (i.code === "unrecognized_keys") {
      const allowed = fieldsAt(i.path, json);
      msg = `unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `'${k}'`).join(", ")}${allowed ? ` (allowed: ${allowed.join(", ")})` : ""}`;
    }
    return `  ${at}: ${msg}`;
  });
  throw new Error(`${source}: invalid training config\n${lines.join("\n")}`);
}

/**
 * The fields the object schema at `path` allows (undefined where it is not a plain object); in a
 * discriminated union (optimizer, schedule) those of the variant that `json`'s discriminator picks.
 */
function fieldsAt(path: readonly PropertyKey[], json: unknown): string[] | undefined {
  const unwrap = (t: z.ZodType | undefined, value: unknown): z.ZodType | undefined => {
    for (;;) {
      if (t instanceof z.ZodDefault || t instanceof z.ZodOptional) t = t.unwrap() as z.ZodType;
      else if (t instanceof z.ZodDiscriminatedUnion) {
        const key = t._zod.def.discriminator;
        const tag = (value as Record<string, unknown> | undefined)?.[key];
        t = (t.options as z.ZodType[]).find((o) => o instanceof z.ZodObject && (o.shape as Record<string, z.ZodType>)[key]?.safeParse(tag).success);
      } else return t;
    }
  };
  let t: z.ZodType | undefined = TrainConfigSchema;
  let value = json;
  for (const p of path) {
    const o = unwrap(t, value);
    t = o instanceof z.ZodObject ? (o.shape as Record<PropertyKey, z.ZodType>)[p] : undefined;
    value = (value as Record<PropertyKey, unknown> | undefined)?.[p];
  }
  const o = unwrap(t, value);
  return o instanceof z.ZodObject ? Object.keys(o.shape) : undefined;
}
