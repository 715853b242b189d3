// zero3_layout.ts: how ZeRO-3 cuts the flat layout (param_layout.ts) over the data-parallel ranks. The
// parameters are grouped by layer (a group is a run of the flat layout: "blk.3.*" together, the embeddings
// and the output norm each their own), and every group is cut into `size` equal chunks (rounded up to the
// backend's view alignment): rank r keeps chunk r of every group, one after another in its shard buffer.
// Gathering a group's chunks in rank order gives the group's run of the flat layout back (then padding), so
// the step gathers one group at a time, just before its layer uses it (zero3_trainer.ts).
// NOTE: equal chunks per group, not one contiguous range of the whole buffer (ZeRO-1/2's part): a layer's
// gather is then an all-gather where every rank sends as much, not a broadcast from the one rank owning it.
// Plain data only: no tensors here.

import type { ParamLayout, ParamSlot } from "./param_layout.js";
import { ParamLayout as Layout } from "./param_layout.js";

export interface ShardGroup {
  /** The group's name: the slots' common prefix ("blk.0", "token_embd"). */
  readonly name: string;
  /** The group's run [lo, hi) of the flat layout (slots and the padding between them). */
  readonly lo: number;
  readonly hi: number;
  /** Each rank's chunk of it (size * chunk >= hi - lo; a multiple of the view alignment). */
  readonly chunk: number;
  /** Where this rank's chunk sits in its shard buffer. */
  readonly at: number;
  /** The group's slots. */
  readonly slots: readonly ParamSlot[];
}

/** The group a parameter belongs to: up to its first numeric part ("blk.3.attn_qkv.weight" -> "blk.3"), else its first part. */
export function groupName(param: string): string {
  const parts = param.split(".");
  const k = parts.findIndex((p) => /^\d+$/.test(p));
  return k > 0 ? parts.slice(0, k + 1).join(".") : parts[0]!;
}

export class Zero3Layout {
  readonly groups: readonly ShardGroup[];
  /** Elements in this rank's shard buffer (its chunk of every group). */
  readonly shardSize: number;
  /** The shard buffer as a layout of its own (the optimizer's: weight decay on the decaying slots' elements). */
  readonly shard: ParamLayout;

  constructor(readonly layout: ParamLayout, readonly size: number, readonly rank: number) {
    if (!(Number.isInteger(size) && size >= 1 && Number.isInteger(rank) && rank >= 0 && rank < size)) throw new Error(`Zero3Layout: rank ${rank} of ${size} is not a rank of the group`);
    const align = layout.align;
    const groups: ShardGroup[] = [];
    let at = 0;
    for (const s of layout.slots) {
      const name = groupName(s.name);
      const last = groups.at(-1);
      if (last && last.name === name) {
        (last.slots as ParamSlot[]).push(s);
        continue;
      }
      if (groups.some((g) => g.name === name)) throw new Error(`Zero3Layout: the parameters of '${name}' are not one after another in the layout ('${s.name}')`);
      groups.push({ name, lo: s.offset, hi: 0, chunk: 0, at: 0, slots: [s] });
    }
    const placed = groups.map((g) => {
      const hi = g.slots.at(-1)!.offset + g.slots.at(-1)!.numel;
      const chunk = Math.ceil(Math.ceil((hi - g.lo) / size) / align) * align;
      const out = { ...g, hi, chunk, at };
      at += chunk;
      return out;
    });
    this.groups = placed;
    this.shardSize = at;
    const slots = placed.flatMap((g) => {
      const [a, b] = this.ownRun(g, rank);
      if (a >= b) return [];
      return layout.range(a, b).slots.map((s) => ({ ...s, offset: s.offset + g.at }));
    });
    this.shard = new Layout({ slots, size: at }, 1);
  }

  /** The run [a, b) of the flat layout that rank r's chunk of group g holds (empty past the group's end). */
  ownRun(g: ShardGroup, r: number): [number, number] {
    const a = Math.min(g.hi, g.lo + r * g.chunk);
    return [a, Math.min(g.hi, a + g.chunk)];
  }

  /** This rank's shard of a whole flat buffer (layout.size): its chunk of every group, zeros past a group's end. */
  own(flat: Float32Array): Float32Array {
    if (flat.length !== this.layout.size) throw new Error(`Zero3Layout.own: ${flat.length} values for a layout of ${this.layout.size}`);
    const out = new Float32Array(this.shardSize);
    for (const g of this.groups) {
      const [a, b] = this.ownRun(g, this.rank);
      out.set(flat.subarray(a, b), g.at);
    }
    return out;
  }

  /**
   * From group g's gathered chunks (size * chunk, rank order), the elements of the flat layout's [start, end)
   * that the group holds, written into `out` (which holds [start, end)).
   */
  place(g: ShardGroup, gathered: Float32Array, start: number, end: number, out: Float32Array): void {
    const [a, b] = [Math.max(start, g.lo), Math.min(end, g.hi)];
    if (a < b) out.set(gathered.subarray(a - g.lo, b - g.lo), a - start);
  }
}
