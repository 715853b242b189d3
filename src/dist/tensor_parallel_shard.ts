// tensor_parallel_shard.ts: moving weights between a whole model and its tensor-parallel ranks. A
// tensor-parallel model (tensor_parallel_gpt2.ts, _llama.ts) has the single-process model's parameter names
// and says how each is cut (TpSplit); shardArray cuts a whole array into rank r's slice, unshardArrays
// joins the ranks' slices back. loadShards fills a tensor-parallel model from a whole model's (or a
// checkpoint's) state; gatherShards all-gathers every split parameter (for a checkpoint, or a comparison
// with the single-process run): every rank gets the whole state.
// It owns no layout of its own: the TpSplit of each name is the model's.

import type { Tensor } from "../index.js";
import { tensor } from "../index.js";
import type { Module } from "../nn/module.js";
import type { Communicator } from "./comm.js";
import type { TpSplit } from "./tensor_parallel_layers.js";
import { REPLICATED } from "./tensor_parallel_layers.js";

/** A module whose parameters are cut over tp ranks: each name's cut (replicated unless listed). */
export interface TpShardable extends Module {
  readonly tp: Communicator;
  tpSplits(): ReadonlyMap<string, TpSplit>;
}

/** A whole parameter on the host: row-major values and shape. */
export interface HostArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Checks a split against a whole shape; returns the axis's geometry. */
function geometry(name: string, shape: readonly number[], split: TpSplit & { kind: "split" }, tp: number) {
  const { axis, parts } = split;
  const d = shape[axis];
  if (d === undefined) throw new Error(`tensor parallel: '${name}' (${shape.join(", ")}) has no axis ${axis} to split`);
  if (parts.reduce((a, b) => a + b, 0) !== d) throw new Error(`tensor parallel: '${name}': blocks ${parts.join(" + ")} do not add up to dim ${axis} (${d}) of (${shape.join(", ")})`);
  for (const p of parts) if (p % tp !== 0) throw new Error(`tensor parallel: '${name}': a block of ${p} along dim ${axis} does not divide by tp ${tp}`);
  const outer = prod(shape.slice(0, axis));
  const inner = prod(shape.slice(axis + 1));
  const local = d / tp;
  return { outer, inner, d, local, localShape: shape.map((s, i) => (i === axis ? local : s)) };
}

/** Rank `rank`'s slice of a whole array (a copy; the array itself when replicated). */
export function shardArray(name: string, whole: HostArray, split: TpSplit, rank: number, tp: number): HostArray {
  if (split.kind === "replicated" || tp === 1) return whole;
  const { outer, inner, d, local, localShape } = geometry(name, whole.shape, split, tp);
  const out = new Float32Array(outer * local * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    let partStart = 0;
    for (const p of split.parts) {
      const k = p / tp;
      const from = (o * d + partStart + rank * k) * inner;
      out.set(whole.data.subarray(from, from + k * inner), at);
      at += k * inner;
      partStart += p;
    }
  }
  return { shape: localShape, data: out };
}

/** The whole array from every rank's slice (rank order): the inverse of shardArray. */
export function unshardArrays(name: string, wholeShape: readonly number[], slices: readonly Float32Array[], split: TpSplit): HostArray {
  const tp = slices.length;
  if (split.kind === "replicated" || tp === 1) return { shape: wholeShape, data: slices[0]! };
  const { outer, inner, d, local } = geometry(name, wholeShape, split, tp);
  const out = new Float32Array(outer * d * inner);
  slices.forEach((s, rank) => {
    if (s.length !== outer * local * inner) throw new Error(`tensor parallel: rank ${rank}'s slice of '${name}' has ${s.length} values, expected ${outer * local * inner}`);
    let at = 0;
    for (let o = 0; o < outer; o++) {
      let partStart = 0;
      for (const p of split.parts) {
        const k = p / tp;
        out.set(s.subarray(at, at + k * inner), (o * d + partStart + rank * k) * inner);
        at += k * inner;
        partStart += p;
      }
    }
  });
  return { shape: wholeShape, data: out };
}

/** The whole shape of a parameter whose local (this rank's) shape is `local`. */
export function wholeShape(local: readonly number[], split: TpSplit, tp: number): number[] {
  return split.kind === "replicated" ? [...local] : local.map((s, i) => (i === split.axis ? s * tp : s));
}

/** Fills `model` with its rank's slices of a whole model's state (name -> whole tensor or host array). */
export async function loadShards(model: TpShardable, whole: ReadonlyMap<string, Tensor | HostArray>): Promise<void> {
  const splits = model.tpSplits();
  const { rank, size } = model.tp;
  const state = new Map<string, Tensor>();
  for (const [name, p] of model.parameters()) {
    const w = whole.get(name);
    if (!w) throw new Error(`tensor parallel: the whole model has no '${name}' (rank ${rank} of tp ${size})`);
    const host: HostArray = "data" in w && w.data instanceof Float32Array
      ? (w as HostArray)
      : { shape: (w as Tensor).shape, data: Float32Array.from((await (w as Tensor).data()) as Float32Array) };
    const split = splits.get(name) ?? REPLICATED;
    const mine = shardArray(name, host, split, rank, size);
    if (mine.shape.join() !== p.shape.join()) {
      throw new Error(`tensor parallel: '${name}' (${host.shape.join(", ")}) cut for rank ${rank} of ${size} is (${mine.shape.join(", ")}), the model's slice is (${p.shape.join(", ")})`);
    }
    state.set(name, tensor(mine.data, { backend: p.backend, dtype: p.dtype, shape: [...mine.shape] }));
  }
  for (const name of whole.keys()) {
    if (!state.has(name)) throw new Error(`tensor parallel: the whole model's '${name}' has no place in the tensor-parallel model`);
  }
  model.loadStateDict(state);
}

/** Every parameter whole, on every rank: split ones all-gathered over tp and joined (a collective: every rank calls it). */
export async function gatherShards(model: TpShardable): Promise<Map<string, HostArray>> {
  const splits = model.tpSplits();
  const tp = model.tp;
  const out = new Map<string, HostArray>();
  for (const [name, p] of model.parameters()) {
    const split = splits.get(name) ?? REPLICATED;
    const local = Float32Array.from((await p.data()) as Float32Array);
    if (split.kind === "replicated" || tp.size === 1) {
      out.set(name, { shape: [...p.shape], data: local });
      continue;
    }
    const all = await tp.allGather(local);
    const slices = Array.from({ length: tp.size }, (_, r) => all.subarray(r * local.length, (r + 1) * local.length));
    out.set(name, unshardArrays(name, wholeShape(p.shape, split, tp.size), slices, split));
  }
  return out;
}
