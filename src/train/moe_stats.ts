// moe_stats.ts: what a run reports of a mixture-of-experts model's routing at each evaluation: on one
// held-out batch, how many (token, expert choice) assignments the experts' capacity dropped (those tokens
// pass through the block's residual), out of how many, and the load-balancing loss (Switch's, 1 when the
// router spreads tokens evenly). One extra forward, not captured; a dense model reports nothing.

import type { Tensor } from "../index.js";
import { noGrad, tensor } from "../index.js";
import type { Batch } from "./batches.js";
import type { TrainableModel } from "./loss.js";

export interface MoeEvalStats {
  readonly dropped: number;
  readonly assignments: number;
  /** Mean over the MoE layers. */
  readonly auxLoss: number;
}

/** Routing statistics of `model` on `batch` ((B, T) ids), or undefined for a model without MoE layers. */
export async function moeEvalStats(model: TrainableModel, batch: Batch, batchSize: number, blockSize: number): Promise<MoeEvalStats | undefined> {
  const moe = model.config.arch === "llama" ? model.config.moe : undefined;
  if (!moe || !model.forwardWithAux) return undefined;
  const backend = [...model.parameters().values()][0]!.backend;
  const ids = tensor(batch.inputs, { backend, dtype: "i32", shape: [batchSize, blockSize] });
  const out = noGrad(() => model.forwardWithAux!(ids)) as { auxLoss?: Tensor; dropped?: Tensor };
  try {
    if (!out.auxLoss || !out.dropped) return undefined;
    return {
      dropped: await out.dropped.item(),
      assignments: batchSize * blockSize * moe.topK * model.config.nLayers,
      auxLoss: await out.auxLoss.item(),
    };
  } finally {
    ids.dispose();
  }
}
