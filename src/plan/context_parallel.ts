// context_parallel.ts: the ring's traffic of context parallelism (ring attention, as Megatron-LM's
// context_parallel runs it): each of the cp GPUs of a sequence holds s / cp of its tokens and their
// K and V; attention passes those K/V chunks around the ring, cp - 1 hops per layer forward, and in
// backward the K/V chunks again plus their gradients (dK, dV) the other way: 3 (cp - 1) chunk sends
// per layer, 4 (cp - 1) when full recomputation repeats the forward. Each hop overlaps the attention
// of the chunk already there, so only what outlasts the layer's attention compute is exposed.
// Memory and compute splitting by cp are train_memory.ts's and train_step.ts's.

import type { GpuSpec } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import type { CommModel } from "./collectives.js";
import { groupLink, p2pTime } from "./collectives.js";
import type { TrainLayout } from "./train_memory.js";
import { bytesPerParam } from "./train_memory.js";
import { cpOf, precisionOf } from "./train_options.js";

/** Bytes of one GPU's K/V chunk of one layer for a microbatch: its s / cp tokens x its KV heads (split by tp, replicated past the KV head count). */
export function kvChunkBytes(m: PlanModel, l: TrainLayout): number {
  const kvHeadsPerGpu = Math.max(1, m.nKvHeads / l.tp);
  const tokens = (l.microBatch * l.seqLen) / cpOf(l);
  return tokens * 2 * kvHeadsPerGpu * m.headDim * bytesPerParam(precisionOf(l)).activation;
}

/**
 * One microbatch's ring traffic on the slowest stage: seconds it takes, and seconds exposed beyond
 * the attention compute that hides it (`attentionSecondsPerLayer`: one layer's attention, forward
 * and backward, on this GPU).
 */
export function contextParallelTime(m: PlanModel, gpu: GpuSpec, l: TrainLayout, attentionSecondsPerLayer: number, links: CommModel): { link: string; seconds: number; exposed: number } {
  const cp = cpOf(l);
  // ranks are laid out tp first, so a cp group's members are tp apart
  const link = groupLink(gpu, l.tp, cp, links);
  if (cp <= 1) return { link: link.name, seconds: 0, exposed: 0 };
  const sends = (l.checkpointing ? 4 : 3) * (cp - 1);
  const perLayer = sends * p2pTime(kvChunkBytes(m, l), link);
  const layers = Math.ceil(m.nLayers / l.pp);
  return { link: link.name, seconds: layers * perLayer, exposed: layers * Math.max(0, perLayer - attentionSecondsPerLayer) };
}
