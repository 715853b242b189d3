// zero3.ts: ZeRO stage 3 (Rajbhandari et al.; PyTorch's FSDP) as the parameter sharding the ZeRO-3 trainer
// sees generically (train/zero3_trainer.ts ParameterSharding; it never learns who the other ranks are). Each
// rank keeps 1/size of every parameter group (train/zero3_layout.ts cuts them); the step gathers a group's
// whole weights with `gather`, a graph all-gather whose gradient is the reduce-scatter (sum) of the group's
// gradient into this rank's chunk (parallel_regions.ts gatherFromSequence), so forward, backward, the global
// norm (`sum`, a graph all-reduce) and the update are one graph that jit captures and replays.
// The host collectives (`range`, `gatherHost`) are for checkpoints only: a distributed checkpoint stores
// the parts of the flat layout that ZeRO-1/2 own (zero.ts shardRange), so ZeRO-3 runs write and load the same
// checkpoints, on any world size and stage.

import type { Tensor } from "../index.js";
import type { Communicator } from "./comm.js";
import { allReduce } from "./graph_collectives.js";
import { gatherFromSequence } from "./parallel_regions.js";
import { shardRange } from "./zero.js";

/** What the ZeRO-3 trainer's sharding option is (train/zero3_trainer.ts ParameterSharding), restated: dist does not import train. */
export interface GroupSharding {
  readonly rank: number;
  readonly size: number;
  gather(piece: Tensor): Tensor;
  sum(x: Tensor): Tensor;
  range(n: number, align: number): readonly [number, number];
  gatherHost(x: Float32Array): Promise<Float32Array>;
}

/** ZeRO-3 on `comm`: give it to the ZeRO-3 trainer as its `sharding` option (every rank does). */
export function zero3Sharding(comm: Communicator): GroupSharding {
  const { rank, size } = comm;
  return {
    rank,
    size,
    gather(piece) {
      if (piece.ndim !== 1) throw new Error(`ZeRO-3 on rank ${rank}: gather takes a 1-D chunk, got ${piece}`);
      return gatherFromSequence(piece, comm, 0);
    },
    sum: (x) => allReduce(x, comm, "sum"),
    range: (n, align) => shardRange(n, align, size, rank),
    gatherHost: (x) => comm.allGather(x),
  };
}
