// pipeline_state.ts: a pipeline stage's flat arrays (parameters, AdamW's m and v, SGD's momentum, each laid out by
// the stage's own flat layout of its parameters) turned into the single-process run's flat arrays and back, so a
// pipeline-parallel run writes and reads the same checkpoints as one process. Whole: every stage's arrays
// all-gathered over the pipeline group (padded to the longest stage), each parameter taken from the first stage
// holding it (a tied embedding's copies are equal: pipeline.ts sums their gradients). Part: each stage copies its
// parameters out of the whole by name. Plain arrays in and out (dist does not import train).

import type { PipelineGroup } from "./pipeline.js";
import type { FlatLayout } from "./tensor_parallel_state.js";

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const sizeOf = (layout: FlatLayout) => layout.reduce((n, s) => Math.max(n, s.offset + numel(s.shape)), 0);

/**
 * Each of `arrays` (this stage's, laid out as stages[group.rank]) as the whole model's array laid out as `whole`.
 * `stages`: every stage's flat layout, in rank order. A collective over `group`: every stage calls it alike.
 */
export async function pipelineWholeArrays(group: Pick<PipelineGroup, "rank" | "size" | "allGather">, stages: readonly FlatLayout[], whole: FlatLayout, arrays: readonly Float32Array[]): Promise<Float32Array[]> {
  if (stages.length !== group.size) throw new Error(`pipeline checkpoint: ${stages.length} stage layouts for ${group.size} stages`);
  const longest = Math.max(...stages.map(sizeOf));
  const out: Float32Array[] = [];
  for (const a of arrays) {
    if (a.length === 0) {
      out.push(a);
      continue;
    }
    if (a.length !== sizeOf(stages[group.rank]!)) throw new Error(`pipeline checkpoint on stage ${group.rank}: ${a.length} values for a stage layout of ${sizeOf(stages[group.rank]!)}`);
    const padded = new Float32Array(longest);
    padded.set(a);
    const all = await group.allGather(padded);
    const result = new Float32Array(sizeOf(whole));
    for (const slot of whole) {
      const r = stages.findIndex((l) => l.some((s) => s.name === slot.name));
      if (r < 0) throw new Error(`pipeline checkpoint: no stage holds '${slot.name}'`);
      const s = stages[r]!.find((x) => x.name === slot.name)!;
      const n = numel(slot.shape);
      if (numel(s.shape) !== n) throw new Error(`pipeline checkpoint: stage ${r}'s '${slot.name}' is (${s.shape.join(", ")}), the whole model's (${slot.shape.join(", ")})`);
      result.set(all.subarray(r * longest + s.offset, r * longest + s.offset + n), slot.offset);
    }
    out.push(result);
  }
  return out;
}

/** This stage's part (laid out as `local`) of each whole array (laid out as `whole`). */
export function pipelinePartArrays(whole: FlatLayout, local: FlatLayout, arrays: readonly Float32Array[]): Float32Array[] {
  return arrays.map((a) => {
    if (a.length === 0) return a;
    const out = new Float32Array(sizeOf(local));
    for (const s of local) {
      const w = whole.find((x) => x.name === s.name);
      if (!w || numel(w.shape) !== numel(s.shape)) throw new Error(`pipeline checkpoint: the whole state has no '${s.name}' of (${s.shape.join(", ")})`);
      out.set(a.subarray(w.offset, w.offset + numel(s.shape)), s.offset);
    }
    return out;
  });
}

/**
 * The slots of `whole` (the single-process layout) a stage holding `names` trains, packed from offset 0: a
 * tensor-parallel stage's arrays gathered over tp (wholeArrays) are laid out so, then pipelineWholeArrays
 * joins the stages. A tensor-parallel Llama's fused blk.N.attn_qkv stands for the file layout's attn_q, k, v.
 */
export function stageWholeLayout(whole: FlatLayout, names: readonly string[]): FlatLayout {
  const mine = new Set(names);
  const out: { name: string; shape: readonly number[]; offset: number }[] = [];
  let at = 0;
  for (const s of whole) {
    const qkv = /^blk\.(\d+)\.attn_[qkv]\.weight$/.exec(s.name);
    if (!mine.has(s.name) && !(qkv && mine.has(`blk.${qkv[1]}.attn_qkv.weight`))) continue;
    out.push({ name: s.name, shape: s.shape, offset: at });
    at += numel(s.shape);
  }
  return out;
}
