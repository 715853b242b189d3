// parallel_config.ts: the `parallel` section of a training config: how the run is laid out over its
// ranks (issue 11's device mesh), either fixed,
//   parallel: { dp: 2, tp: 1, pp: 1, ep: 1, zero: 1 }   (what `kiln plan train --emit layout` prints)
// or `parallel: auto`, which asks the capacity planner for this machine and world size (the CLI does
// that: train does not import plan). Here: the schema and the checks of a layout against the world
// size and the model, each error naming the field. Building the parallel modes is src/dist's.

import { z } from "zod";
import type { TrainConfig } from "./config.js";

const degree = z.number().int().positive();

export const ParallelLayoutSchema = z.strictObject({
  /** Data-parallel replicas: each takes train.batchSize / dp rows of every batch. */
  dp: degree.default(1),
  /** Tensor-parallel ranks per layer (Megatron-style), inside a node. */
  tp: degree.default(1),
  /** Pipeline stages. */
  pp: degree.default(1),
  /** Expert-parallel ranks, carved out of dp (a mixture-of-experts model). */
  ep: degree.default(1),
  /** ZeRO stage: 1 shards optimizer state over dp, 2 also gradients, 3 also parameters. */
  zero: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)], { error: () => "must be a ZeRO stage: 0, 1, 2 or 3" }).default(0),
  /**
   * Pipeline micro-batches per batch (with pp > 1): each replica's rows of a batch split in as many equal parts,
   * run through the stages in 1F1B order; absent: 2 x pp (enough to keep the bubble at a third or less).
   */
  microBatches: degree.optional(),
});

export const ParallelConfigSchema = z.union([z.literal("auto"), ParallelLayoutSchema], {
  error: () => `must be "auto" or { dp, tp, pp, ep, zero } (each a positive whole number; zero 0-3)`,
});

export type ParallelLayout = z.infer<typeof ParallelLayoutSchema>;
export type ParallelConfig = z.infer<typeof ParallelConfigSchema>;

/**
 * A layout checked against the run: dp x tp x pp must be the world size, tp must divide the heads
 * (and the KV heads), pp at most the layers, ep must divide dp, and the global batch must split
 * evenly over dp. `source` names the config (or "kiln plan" for a planned layout).
 */
export function checkParallelLayout(l: ParallelLayout, worldSize: number, cfg: Pick<TrainConfig, "model" | "train">, source: string): ParallelLayout {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  const product = l.dp * l.tp * l.pp;
  if (product !== worldSize) {
    fail(`parallel.dp ${l.dp} x parallel.tp ${l.tp} x parallel.pp ${l.pp} = ${product}, but the world size is ${worldSize} (WORLD_SIZE, or 1 without a launcher): they must be equal`);
  }
  const m = cfg.model;
  const kvHeads = m.nKvHeads ?? m.nHeads;
  if (m.nHeads % l.tp !== 0 || kvHeads % l.tp !== 0) fail(`parallel.tp ${l.tp} must divide model.nHeads (${m.nHeads}) and the KV heads (${kvHeads})`);
  if (l.pp > m.nLayers) fail(`parallel.pp ${l.pp} is more stages than model.nLayers (${m.nLayers})`);
  if (l.dp % l.ep !== 0) fail(`parallel.ep ${l.ep} must divide parallel.dp ${l.dp} (expert parallel is carved out of data parallel)`);
  if (cfg.train.batchSize % l.dp !== 0) fail(`train.batchSize ${cfg.train.batchSize} must be a multiple of parallel.dp ${l.dp} (each replica takes an equal share of the rows)`);
  if (l.pp > 1) {
    const m = pipelineMicroBatches(l);
    const rows = cfg.train.batchSize / l.dp;
    if (rows % m !== 0) fail(`parallel.microBatches ${m}${l.microBatches === undefined ? ` (the default, 2 x parallel.pp)` : ""} must divide each replica's ${rows} rows of train.batchSize ${cfg.train.batchSize} (over parallel.dp ${l.dp})`);
  }
  if (l.zero > 0 && l.dp === 1) fail(`parallel.zero ${l.zero} shards over data-parallel replicas, but parallel.dp is 1`);
  return l;
}

/** The pipeline's micro-batches per batch: parallel.microBatches, default 2 x pp (1 without a pipeline). */
export function pipelineMicroBatches(l: ParallelLayout): number {
  return l.pp > 1 ? (l.microBatches ?? 2 * l.pp) : 1;
}

/** "dp=2 tp=1 pp=1 ep=1 zero=1" (and the micro-batches with a pipeline) */
export function describeParallel(l: ParallelLayout): string {
  return `dp=${l.dp} tp=${l.tp} pp=${l.pp} ep=${l.ep} zero=${l.zero}${l.pp > 1 ? ` microBatches=${pipelineMicroBatches(l)}` : ""}`;
}
