// zero3_regather.ts: ZeRO-3's memory-saving schedule for the transformer blocks: each block's forward
// gathers its own group's weights (fresh gather nodes) inside an activation checkpoint (autograd
// checkpoint()), so the backward's recompute of the block gathers them again instead of keeping the
// forward's. The forward's gathered weights then have no reader after the block's forward (realize frees
// them there), and the recompute's live from the block's recompute to its weight gradients: a step holds
// about one block's gathered weights at a time, besides the groups outside the blocks (embeddings, the
// output norm), which stay gathered for the step (a tied embedding is read at both ends anyway).
// The price: the blocks' forward runs twice and their weights are gathered twice per step.
// NOTE: wraps the instance's forward (as memory/checkpointing.ts does), so the model class is unchanged.

import type { Tensor } from "../index.js";
import { checkpoint } from "../index.js";
import type { Module } from "../nn/index.js";
import type { ShardGroup } from "./zero3_layout.js";

type BlockForward = (x: Tensor, ...rest: unknown[]) => Tensor;
interface Block extends Module { forward: BlockForward }

/**
 * Wraps every block of `model.blocks` so that its forward first loads `gather(g)` (group g's weights by
 * the block's own parameter names) into the block, inside a checkpoint. Returns the groups so handled
 * (the step need not gather them for the model as a whole). Throws, naming it, when a block's parameters
 * are not exactly one group's.
 */
export function regatherBlocks(model: Module, groups: readonly ShardGroup[], gather: (g: ShardGroup) => Map<string, Tensor>): Set<ShardGroup> {
  const blocks = (model as { blocks?: unknown }).blocks;
  if (!blocks || typeof (blocks as Iterable<unknown>)[Symbol.iterator] !== "function") {
    throw new Error(`ZeRO-3 regather: the model (${model.constructor.name}) has no 'blocks' list`);
  }
  const handled = new Set<ShardGroup>();
  [...(blocks as Iterable<Block>)].forEach((block, i) => {
    const keys = [...block.parameters().keys()].sort();
    const g = groups.find((c) => c.name.endsWith(`.${i}`) && c.slots.map((s) => s.name.slice(c.name.length + 1)).sort().join() === keys.join());
    if (!g) throw new Error(`ZeRO-3 regather: block ${i}'s parameters (${keys.join(", ")}) are not one parameter group's`);
    handled.add(g);
    const own: BlockForward = block.forward.bind(block);
    const prefix = g.name.length + 1;
    block.forward = (x, ...rest) =>
      checkpoint((x2) => {
        const named = gather(g);
        block.loadStateDict(new Map([...named].map(([k, t]) => [k.slice(prefix), t])));
        return own(x2!, ...rest);
      }, [x]);
  });
  return handled;
}
