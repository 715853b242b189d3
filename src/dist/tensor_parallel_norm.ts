// tensor_parallel_norm.ts: the global gradient norm of a tensor-parallel model, for clipping: each rank's
// flat gradient holds its slices of the split parameters and the whole of the replicated ones (the same
// values on every rank), so the norm's square is the all-reduced (tp) sum of the split slices' squares plus
// the replicated parameters' squares counted once. Give it to the trainer as TrainerOptions.gradNorm; it is
// part of the step's graph (an all-reduce node), so the captured step replays it.
// NOTE: with data parallel too, the flat gradient it sees is already the dp mean (the gradient hook runs
// first), so the tp all-reduce is the only one it needs.

import type { Tensor } from "../index.js";
import { tensor } from "../index.js";
import { allReduce } from "./graph_collectives.js";
import type { TpShardable } from "./tensor_parallel_shard.js";

/** A parameter's place in the flat gradient (train/param_layout.ts's slots, restated: dist does not import train). */
export interface FlatSlot {
  readonly name: string;
  readonly offset: number;
  readonly numel: number;
}

/** The trainer's gradNorm for `model`: sqrt(tp-sum of split squares + replicated squares). */
export function tensorParallelGradNorm(model: TpShardable): (flatGrad: Tensor, slots: readonly FlatSlot[]) => Tensor {
  const splits = model.tpSplits();
  let mask: Tensor | undefined;
  return (flatGrad, slots) => {
    const size = flatGrad.numel;
    if (!mask || mask.numel !== size || mask.backend !== flatGrad.backend) {
      const m = new Float32Array(size);
      for (const s of slots) if (splits.get(s.name)?.kind === "split") m.fill(1, s.offset, s.offset + s.numel);
      mask = tensor(m, { backend: flatGrad.backend, dtype: "f32", shape: [size] });
    }
    const sq = flatGrad.mul(flatGrad);
    const split = allReduce(sq.mul(mask).sum().reshape([1]), model.tp); // (1,)
    const replicated = sq.mul(mask.rsub(1)).sum().reshape([1]);
    return split.add(replicated).reshape([]).sqrt();
  };
}

/**
 * The same norm as host hooks (the Trainer's hostGradientNorm), for a step that computes its norm on the host
 * (ZeRO's sharded update, a pipeline's gradient source): `counted` keeps a replicated parameter on tp rank 0
 * only, `sum` adds the tp ranks' sums of squares (after `inner`, the sum over whoever else shares the norm
 * first: the pipeline's stages). Every rank gets the same number: the all-reduces sum in rank order.
 */
export function tensorParallelHostNorm(model: TpShardable, inner?: { counted?: (name: string) => boolean; sum: (squares: number) => Promise<number> }): {
  counted: (name: string) => boolean;
  sum: (squares: number) => Promise<number>;
} {
  const splits = model.tpSplits();
  const tp = model.tp;
  return {
    counted: (name) => (splits.get(name)?.kind === "split" || tp.rank === 0) && (inner?.counted?.(name) ?? true),
    sum: async (squares) => {
      const mine = inner ? await inner.sum(squares) : squares;
      return (await tp.allReduce(Float32Array.of(mine), "sum"))[0]!;
    },
  };
}
