// expert_parallel.ts: expert parallel (GShard's) for the MoE layers of nn/moe.ts over an ep group of R ranks
// inside a data-parallel group of P ranks (the device mesh's: ep consecutive dp members, R divides P; ep = dp
// is the plain case). Each rank holds E / R experts (ep rank r: [r E/R, (r+1) E/R)) and the whole rest of the
// model, and trains on its own rows of the global batch (data parallel's RankRows over dp). In each MoE layer a rank routes its own
// tokens into an (E, C, D) slot buffer; an all-to-all sends expert e's slots to e's rank, the experts run on
// the (E/R, R C, D) rows they received, and a second all-to-all brings the outputs home (collectives as graph
// nodes, src/dist/parallel_regions.ts: the backward is the same two all-to-alls reversed). The router's
// load-balancing statistics are averaged over the dp ranks, so the aux loss is the one of all tokens together.
// After backward, inside the step's one graph (the Trainer's reduceGradient): the dense parameters' gradients
// are averaged over dp (data parallel's all-reduce); an expert's gradient already holds its ep group's tokens'
// contributions (they came back through the all-to-all), so it is summed over the P / R ranks holding the
// same experts (the expert-data-parallel group) and divided by P. The gradient norm for clipping
// (gradientNorm) adds the squares of every ep rank's experts, another all-reduce in the graph.
// It does not place ranks on a mesh or combine with tensor/pipeline parallel (a communicator is the ep
// group), and it does not save checkpoints of the sharded experts (see docs/distributed.md).
// NOTE: capacity is per rank (C from the rank's own tokens, GShard's per-group capacity), so with a
// capacityFactor the drops differ from one process routing every token; without one nothing is dropped
// and expert parallel computes what one process does.

import type { Tensor } from "../index.js";
import { noGrad, tensor } from "../index.js";
import type { ExpertExchange } from "../nn/moe.js";
import type { Communicator } from "./comm.js";
import { allReduce } from "./graph_collectives.js";
import { allToAllParallel, copyToParallel, reduceFromParallel } from "./parallel_regions.js";

/** A parameter's place in the trainer's flat buffer (train/param_layout.ts ParamSlot, as plain data). */
export interface FlatSlot {
  readonly name: string;
  readonly offset: number;
  readonly numel: number;
}

/** Expert weights (stacked on dim 0: nn/moe.ts ExpertLinear) are named like GGUF's ffn_*_exps. */
export const isExpertParameter = (name: string): boolean => /\.ffn_(gate|up|down)_exps\.weight$/.test(name);

/** The experts rank `rank` of `size` holds: [first, first + count). */
export function expertShare(numExperts: number, rank: number, size: number): { first: number; count: number } {
  if (!(Number.isInteger(numExperts) && numExperts > 0 && numExperts % size === 0)) {
    throw new Error(`expert parallel: ${numExperts} experts do not divide over ${size} ranks (each rank holds as many)`);
  }
  const count = numExperts / size;
  return { first: rank * count, count };
}

/**
 * The ExpertExchange of the MoE layers over `comm` (the ep group): give it to the model (LlamaOptions.experts).
 * `tokens` is the group whose tokens the router's statistics average over (the dp group; default `comm`).
 */
export function expertExchange(comm: Communicator, numExperts: number, tokens: Communicator = comm): ExpertExchange {
  const { first, count } = expertShare(numExperts, comm.rank, comm.size);
  const r = comm.size;
  return {
    first,
    count,
    dispatch(x) {
      const [e, c, d] = x.shape as [number, number, number];
      if (x.ndim !== 3 || e !== numExperts) throw new Error(`expert parallel dispatch on rank ${comm.rank}: expected (${numExperts}, C, D) slots, got ${x}`);
      // (E, C, D): chunk s (experts of rank s) goes to rank s; back come every rank's slots of my experts.
      const got = allToAllParallel(x.contiguous(), comm); // (R * count, C, D), by source rank
      return got.reshape([r, count, c, d]).permute([1, 0, 2, 3]).reshape([count, r * c, d]);
    },
    combine(y) {
      const [n, rc, d] = y.shape as [number, number, number];
      if (y.ndim !== 3 || n !== count || rc % r !== 0) throw new Error(`expert parallel combine on rank ${comm.rank}: expected (${count}, R * C, D) outputs, got ${y}`);
      const c = rc / r;
      const back = y.reshape([count, r, c, d]).permute([1, 0, 2, 3]).reshape([r * count, c, d]).contiguous();
      return allToAllParallel(back, comm); // (E, C, D): my slots' outputs from every expert
    },
    // NOTE: all-reduce both ways (Megatron's g after f): every rank's loss uses the mean, so the gradient of
    // the ranks' mean loss with respect to this rank's statistic is the sum over ranks of theirs, / R.
    groupMean: (x) => reduceFromParallel(copyToParallel(x, tokens), tokens).div(tokens.size),
  };
}

/** Expert-parallel training's pieces for the Trainer's options (the ranks' rows: dataParallel's rows). */
export interface ExpertParallelTraining {
  /** The flat gradient of the global batch's mean loss from this rank's (a graph: TrainerOptions.reduceGradient). */
  readonly reduceGradient: (flatGrad: Tensor) => Tensor;
  /** Its global norm, every rank's experts included (TrainerOptions.gradientNorm). */
  readonly gradientNorm: (flatGrad: Tensor) => Tensor;
}

/** The process groups of expert parallel: dp (all the ranks of one model's data parallel) and ep inside it. */
export interface ExpertGroups {
  readonly dp: Communicator;
  /** ep consecutive members of dp (the device mesh's layout); the same communicator as dp when ep = dp. */
  readonly ep: Communicator;
}

/**
 * reduceGradient and gradientNorm of expert parallel for a trainer whose flat buffer is laid out as `slots`
 * (its layout's slots, in order; the expert ones found by name) in `size` elements. A single communicator
 * is ep = dp. With ep < dp every dp rank must call this at the same point (it makes the group of the ranks
 * that hold the same experts).
 */
export function expertParallelTraining(groups: Communicator | ExpertGroups, slots: readonly FlatSlot[], size: number): ExpertParallelTraining {
  const { dp, ep } = "dp" in groups ? groups : { dp: groups, ep: groups };
  const comm = dp;
  if (dp.size % ep.size !== 0 || ep.rank !== dp.rank % ep.size) {
    throw new Error(`expert parallel on rank ${dp.rank}: the ep group (rank ${ep.rank} of ${ep.size}) is not ep consecutive members of the dp group (rank ${dp.rank} of ${dp.size})`);
  }
  // The ranks of dp holding this rank's experts: one per ep group.
  const replicas = ep.size === dp.size ? undefined : dp.group(Array.from({ length: dp.size / ep.size }, (_, j) => j * ep.size + ep.rank));
  const experts = slots.filter((s) => isExpertParameter(s.name));
  if (experts.length === 0) throw new Error(`expert parallel on rank ${comm.rank}: the model has no expert parameters (ffn_*_exps)`);
  const mask = new Float32Array(size);
  for (const s of experts) {
    if (s.offset + s.numel > size) throw new Error(`expert parallel: '${s.name}' at ${s.offset} (+${s.numel}) is outside the flat gradient of ${size}`);
    mask.fill(1, s.offset, s.offset + s.numel);
  }
  let maskTensor: Tensor | undefined;
  const expertMask = (flat: Tensor): Tensor => {
    if (flat.ndim !== 1 || flat.numel !== size) throw new Error(`expert parallel on rank ${comm.rank}: a flat gradient of ${flat}, the layout has ${size}`);
    return (maskTensor ??= tensor(mask, { backend: flat.backend, dtype: "f32", shape: [size] }));
  };

  const reduceGradient = (flat: Tensor): Tensor =>
    noGrad(() => {
      const m = expertMask(flat);
      const own = flat.mul(m); // the ep group's tokens already summed in
      const experts = replicas ? allReduce(own.contiguous(), replicas) : own;
      // NOTE: the whole length is all-reduced with the experts' part zeroed (their offsets hold other experts
      // on other ranks): simpler than packing the dense slots, at the cost of sending the zeros.
      return allReduce(flat.sub(own).contiguous(), dp).add(experts).div(dp.size);
    });

  const gradientNorm = (flat: Tensor): Tensor =>
    noGrad(() => {
      const maskTensor = expertMask(flat);
      const sq = flat.mul(flat);
      const expertSq = sq.mul(maskTensor).sum().reshape([1]);
      const denseSq = sq.sub(sq.mul(maskTensor)).sum();
      // NOTE: every rank has the same dense part (just all-reduced) and its own experts: sum the ep group's.
      return denseSq.add(allReduce(expertSq, ep).reshape([])).sqrt();
    });

  return { reduceGradient, gradientNorm };
}

/**
 * This rank's state from a whole model's (every expert): the expert parameters' rows [first, first + count)
 * of dim 0, the rest as they are. For starting expert parallel from one process's initialization or weights.
 */
export function shardExperts(full: ReadonlyMap<string, Tensor>, share: { first: number; count: number }): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of full) {
    if (!isExpertParameter(name)) out.set(name, t);
    else if (share.first + share.count > t.shape[0]!) throw new Error(`shardExperts: '${name}' has ${t.shape[0]} experts, the share is [${share.first}, ${share.first + share.count})`);
    else out.set(name, t.slice(0, share.first, share.first + share.count).contiguous());
  }
  return out;
}
