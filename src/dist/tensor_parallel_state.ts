// tensor_parallel_state.ts: a tensor-parallel trainer's flat arrays (parameters, AdamW's m and v, SGD's momentum,
// each laid out by the rank's own flat layout of its slices) turned into the single-process run's flat arrays and
// back, so a tensor-parallel run writes and reads the same checkpoints as one process (which then resume on any
// layout). Whole: every split slot all-gathered over tp and joined (unshardArrays); a Llama's fused attn_qkv split
// back into the file layout's attn_q, attn_k, attn_v. Part: the inverse, q/k/v joined then each rank's slice cut
// (shardArray). Plain arrays in and out: the trainer's state is train's business (dist does not import train).

import type { TpLanguageModel } from "./tensor_parallel_model.js";
import type { HostArray } from "./tensor_parallel_shard.js";
import { shardArray, unshardArrays, wholeShape } from "./tensor_parallel_shard.js";
import { REPLICATED } from "./tensor_parallel_layers.js";
import { joinQkv } from "./tensor_parallel_train.js";

/** A flat layout as plain data (train/param_layout.ts describe()): each slot's name, shape and offset. */
export type FlatLayout = readonly { readonly name: string; readonly shape: readonly number[]; readonly offset: number }[];

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const sizeOf = (layout: FlatLayout) => layout.reduce((n, s) => Math.max(n, s.offset + numel(s.shape)), 0);

/**
 * Each of `arrays` (laid out as `local`, this rank's tensor-parallel layout) as the whole model's array laid out
 * as `whole` (the single-process layout). A collective over model.tp: every tp rank calls it with its arrays, in
 * the same order. An empty array (SGD without momentum) stays empty.
 */
export async function wholeArrays(model: TpLanguageModel, local: FlatLayout, whole: FlatLayout, arrays: readonly Float32Array[]): Promise<Float32Array[]> {
  const splits = model.tpSplits();
  const tp = model.tp;
  const out: Float32Array[] = [];
  for (const a of arrays) {
    if (a.length === 0) {
      out.push(a);
      continue;
    }
    const byName = new Map<string, HostArray>();
    for (const s of local) {
      const mine = a.slice(s.offset, s.offset + numel(s.shape));
      const split = splits.get(s.name) ?? REPLICATED;
      if (split.kind === "replicated" || tp.size === 1) {
        byName.set(s.name, { shape: [...s.shape], data: mine });
        continue;
      }
      const all = await tp.allGather(mine);
      const slices = Array.from({ length: tp.size }, (_, r) => all.subarray(r * mine.length, (r + 1) * mine.length));
      byName.set(s.name, unshardArrays(s.name, wholeShape(s.shape, split, tp.size), slices, split));
    }
    splitQkv(byName, whole);
    out.push(pack(byName, whole, "the whole model"));
  }
  return out;
}

/** The inverse of wholeArrays on one rank: this rank's slices of each whole array (laid out as `whole`), laid out as `local`. */
export function partArrays(model: TpLanguageModel, whole: FlatLayout, local: FlatLayout, arrays: readonly Float32Array[]): Float32Array[] {
  const splits = model.tpSplits();
  const { rank, size } = model.tp;
  return arrays.map((a) => {
    if (a.length === 0) return a;
    const byName = new Map<string, HostArray>(whole.map((s) => [s.name, { shape: [...s.shape], data: a.subarray(s.offset, s.offset + numel(s.shape)) }]));
    // NOTE: a Llama's file layout keeps q, k and v apart; its tensor-parallel layer holds them fused.
    if (whole.some((s) => /\.attn_q\.weight$/.test(s.name))) joinQkv(byName, model.config.nLayers);
    const mine = new Map<string, HostArray>();
    for (const s of local) {
      const w = byName.get(s.name);
      if (!w) throw new Error(`tensor parallel: the whole state has no '${s.name}' (rank ${rank} of tp ${size})`);
      mine.set(s.name, shardArray(s.name, w, splits.get(s.name) ?? REPLICATED, rank, size));
    }
    return pack(mine, local, `rank ${rank}'s slices`);
  });
}

/** blk.N.attn_qkv.weight (q rows, then k, then v) split into the `whole` layout's attn_q/k/v, when it has them. */
function splitQkv(byName: Map<string, HostArray>, whole: FlatLayout): void {
  const shapes = new Map(whole.map((s) => [s.name, s.shape]));
  for (const [name, fused] of [...byName]) {
    const m = /^blk\.(\d+)\.attn_qkv\.weight$/.exec(name);
    if (!m || shapes.has(name)) continue;
    const parts = ["q", "k", "v"].map((p) => `blk.${m[1]}.attn_${p}.weight`);
    let at = 0;
    for (const p of parts) {
      const shape = shapes.get(p);
      if (!shape) throw new Error(`tensor parallel: the whole layout has neither '${name}' nor '${p}'`);
      const n = numel(shape);
      byName.set(p, { shape: [...shape], data: fused.data.slice(at, at + n) });
      at += n;
    }
    if (at !== fused.data.length) throw new Error(`tensor parallel: '${name}' has ${fused.data.length} values, its q, k and v ${at}`);
    byName.delete(name);
  }
}

/** The arrays by name laid out as `layout` (each slot's shape checked). */
function pack(byName: ReadonlyMap<string, HostArray>, layout: FlatLayout, what: string): Float32Array {
  const out = new Float32Array(sizeOf(layout));
  for (const s of layout) {
    const x = byName.get(s.name);
    if (!x || x.data.length !== numel(s.shape)) throw new Error(`tensor parallel: ${what}: '${s.name}' (${s.shape.join(", ")}) is ${x ? `${x.data.length} values` : "missing"}`);
    out.set(x.data, s.offset);
  }
  return out;
}
