// figures.ts: the capacity figures of kiln's seed requirements (as issues 6 and 15 quote them), each
// recomputed by the planner, with the verdict and, where they differ, what the seed assumed and why
// it is wrong (serving, cost and scaling rows are seed_figures.ts's). docs/planning.md embeds the markdown this
// renders, and test/unit/plan_docs.test.ts fails when the two drift apart. The explanations are
// written here, next to the numbers they explain; every number in them is computed.

import { countParams, kvBytesPerToken, matmulParams, prefillFlops, trainingFlopsPerToken } from "./accounting.js";
import { findGpu } from "./gpus.js";
import type { PlanModel } from "./plan_model.js";
import { findPreset } from "./presets.js";
import type { FigureRow } from "./figure_row.js";
import { figureRow } from "./figure_row.js";
import { seedRows } from "./seed_figures.js";
import type { TrainLayout, TrainPrecision } from "./train_memory.js";
import { trainMemoryPerGpu } from "./train_memory.js";
import { formatBytes, formatCount, formatFlops, formatInt, formatSeconds } from "./units.js";

export type { FigureRow } from "./figure_row.js";

/** The sequence length of the memory rows: Llama 2's context, the length its models train on (the seed states none). */
export const FIGURE_SEQ_LEN = 4096;
/** The assumptions: H100 at "990 TFLOP/s effective at 50% MFU", $3 per GPU-hour. */
export const PUBLISHED_PRICE = 3;
/** The H100's bf16 figure with 2:4 sparsity (twice the dense 989.4): the peak the seed's prefill times match. */
export const SPARSE_BF16_FLOPS = 1979e12;

const preset = (name: string): PlanModel => findPreset(name)!;
const layout = (o: Partial<TrainLayout>): TrainLayout => ({
  tp: 1, pp: 1, dp: 1, ep: 1, zero: 0, checkpointing: false, offload: false, microBatch: 1, microBatches: 1, seqLen: FIGURE_SEQ_LEN, ...o,
});
const kib = (bytes: number): string => `${formatInt(bytes / 1024)} KiB (${(bytes / 2 ** 20).toFixed(2)} MiB)`;
const ratio = (a: number, b: number): string => `${a / b < 0.01 ? (a / b).toPrecision(2) : (a / b).toFixed(2)}x`;
const row = figureRow;

function memoryRows(): FigureRow[] {
  const m7 = preset("llama2-7b");
  const m70 = preset("llama2-70b");
  const mem = (m: PlanModel, l: Partial<TrainLayout>, p: TrainPrecision = "bf16") => trainMemoryPerGpu(m, layout(l), p);
  const states = (x: { weights: number; grads: number; optimizer: number }) => x.weights + x.grads + x.optimizer;
  const P7 = countParams(m7).total;
  const P70 = countParams(m70).total;
  const split = (x: { activations: number }, s: number) => `${formatBytes(s)} of states + ${formatBytes(x.activations)} of activations`;
  // NOTE: without pipeline stages activations (and the logits) grow linearly with the sequence, so
  // the length a seed figure implies is what its bytes leave for activations over their bytes per token.
  const impliedSeq = (published: number, seedStates: number, x: { activations: number }): string => {
    const left = published - seedStates;
    return left <= 0 ? `is less than those states alone` : `leaves ${formatBytes(left)} of activations: ${formatInt((left / x.activations) * FIGURE_SEQ_LEN)}-token sequences, a length the seed does not state`;
  };
  const f32 = mem(m7, {}, "fp32");
  const b7 = mem(m7, {});
  const z7 = mem(m7, { dp: 8, zero: 3 });
  const b70 = mem(m70, {});
  const z70 = mem(m70, { dp: 64, zero: 3 });
  const g = `Training memory per GPU (Adam; Llama 2's ${FIGURE_SEQ_LEN}-token sequences, microbatch 1, no checkpointing)`;
  return [
    row(g, "7B FP32", "122 GB", 122e9, formatBytes(f32.total), f32.total,
      `fp32 weights, gradients, Adam m and v: 16 B/param x ${formatCount(P7)} = ${split(f32, states(f32))}. ` +
      `The seed's states are the same 16 B/param; its 122 GB ${impliedSeq(122e9, 16 * P7, f32)}.`),
    row(g, "7B BF16", "89 GB", 89e9, formatBytes(b7.total), b7.total,
      `Mixed precision keeps bf16 weights, an fp32 master copy, fp32 m and v, and (as Megatron-LM, with bf16) an fp32 gradient buffer: 2 + 4 + 4 + 4 + 4 = 18 B/param, more states than FP32's 16 (${split(b7, states(b7))}). ` +
      `The seed counts 12 B/param (no master copy): ${formatBytes(12 * P7)}; its 89 GB ${impliedSeq(89e9, 12 * P7, b7)}.`),
    row(g, "7B BF16 + ZeRO-3, N=8", "~6 GB", 6e9, formatBytes(z7.total), z7.total,
      `ZeRO-3 divides the 18 B/param of states by 8 (${formatBytes(states(z7))} with two gathered layers) but not the activations (${formatBytes(z7.activations)}). ` +
      `No reading reaches ~6 GB: even the seed's 12 B/param states alone are ${formatBytes((P7 * 12) / 8)} per GPU.`),
    row(g, "70B BF16", "890 GB", 890e9, formatBytes(b70.total), b70.total,
      `${split(b70, states(b70))} (Llama-2-70B, ${formatCount(P70)}). The seed counts 12 B/param (no master copy): ${formatBytes(12 * P70)}; its 890 GB ${impliedSeq(890e9, 12 * P70, b70)}.`),
    row(g, "70B BF16 + ZeRO-3, N=64", "~65 GB", 65e9, formatBytes(z70.total), z70.total,
      `${split(z70, states(z70))}: 18 B/param / 64 = ${formatBytes((18 * P70) / 64)} plus two gathered layers, and ZeRO does not shard activations. ` +
      `The seed assumed another split: its 12 B/param over 64 GPUs is ${formatBytes((12 * P70) / 64)}, and its 65 GB ${impliedSeq(65e9, (12 * P70) / 64, z70)} ` +
      `(this row once read "reproduced" because this file chose 2048-token sequences). It is wrong twice: the master copy is missing, and at the model's own ${FIGURE_SEQ_LEN} tokens the activations alone are over 65 GB. ` +
      `With checkpointing the same layout needs ${formatBytes(mem(m70, { dp: 64, zero: 3, checkpointing: true }).total)}.`),
  ];
}

function kvRows(): FigureRow[] {
  const g = "KV cache per token (bf16) and for a 4096-token context";
  const cases = [["7B", "llama2-7b", "512 KB", 524288, "2 GB", 2e9], ["70B", "llama2-70b", "5.2 MB", 5.2e6, "21 GB", 21e9], ["405B", "llama3-405b", "32 MB", 32e6, "131 GB", 131e9]] as const;
  const rows: FigureRow[] = [];
  for (const [label, name, pub, pubValue, pub4k, pub4kValue] of cases) {
    const m = preset(name);
    const kv = kvBytesPerToken(m, 2);
    const mha = kvBytesPerToken({ ...m, nKvHeads: m.nHeads }, 2);
    const why = m.nKvHeads === m.nHeads
      ? `${m.nLayers} layers x ${m.nKvHeads} KV heads x ${m.headDim} x 2 (K, V) x 2 bytes: multi-head attention, no grouping.`
      : `${m.nLayers} layers x ${m.nKvHeads} KV heads x ${m.headDim} x 2 x 2 bytes: grouped-query attention keeps ${m.nKvHeads} KV heads for ${m.nHeads} query heads. ` +
        `The published figure ignores it: with all ${m.nHeads} heads (multi-head) it would be ${kib(mha)}, and the published figure is ${ratio(pubValue, mha)} that again ` +
        (pubValue / mha < 3 ? "(4-byte elements, or K and V counted twice)." : "(4-byte elements and K and V counted twice would make 4x; the source does not say).");
    rows.push(row(g, `${label} per token`, pub, pubValue, kib(kv), kv, why));
    rows.push(row(g, `${label} at 4K context`, pub4k, pub4kValue, formatBytes(kv * 4096), kv * 4096,
      m.nKvHeads === m.nHeads ? `4096 x ${kib(kv)}.` : `4096 x ${kib(kv)}; the published ${pub4k} is 4096 x its ${pub} per token and carries the same error.`));
  }
  return rows;
}

/** The seed's decode formula: bandwidth / (2 x P x 2 bytes) with the nominal P (7e9, 70e9). */
export const seedDecodeTokensPerS = (bytesPerS: number, nominalParams: number): number => bytesPerS / (2 * nominalParams * 2);

function decodeRows(): FigureRow[] {
  const h100 = findGpu("h100");
  const g = "Decode tokens/s at batch 1 on one H100 (3.35 TB/s), bf16 weights";
  return ([["7B", "llama2-7b", 120, 7e9], ["70B", "llama2-70b", 12, 70e9]] as const).map(([label, name, pub, nominal]) => {
    const m = preset(name);
    const weights = countParams(m).total * 2;
    const bound = h100.memoryBytesPerS / weights;
    const at4k = h100.memoryBytesPerS / (weights + 4096 * kvBytesPerToken(m, 2));
    const fit = weights > h100.memoryBytes ? ` A bf16 ${label} does not fit one H100 (${formatBytes(weights)}); on tp GPUs the bound is tp times higher.` : "";
    return row(g, label, String(pub), pub, `${bound.toFixed(0)} tokens/s`, bound,
      `Each token reads every weight once: 3.35 TB/s / ${formatBytes(weights)} (${at4k.toFixed(0)} with a 4K-token KV cache to read too). ` +
      `The seed's formula is bandwidth / (2 x P x 2 bytes) = 3.35e12 / (2 x ${label.replace("B", "")}e9 x 2) = ${seedDecodeTokensPerS(h100.memoryBytesPerS, nominal).toFixed(0)}: bf16's 2 bytes are there, and so is a stray factor of 2 that nothing in a decode step reads twice.${fit}`);
  });
}

function prefillRows(): FigureRow[] {
  const h100 = findGpu("h100");
  const g = "Prefill time on one H100 at 100% of the 989 TFLOP/s dense bf16 peak";
  const cases = [["7B 1K tokens", "llama2-7b", 1024, "7 ms", 7e-3, 7e9], ["7B 8K tokens", "llama2-7b", 8192, "56 ms", 56e-3, 7e9], ["70B 1K tokens", "llama2-70b", 1024, "70 ms", 70e-3, 70e9], ["70B 8K tokens", "llama2-70b", 8192, "560 ms", 560e-3, 70e9]] as const;
  return cases.map(([label, name, tokens, pub, pubValue, nominal]) => {
    const m = preset(name);
    const flops = prefillFlops(m, tokens);
    const s = flops / h100.bf16Flops;
    const attention = flops - 2 * matmulParams(m) * tokens;
    return row(g, label, pub, pubValue, formatSeconds(s), s,
      `2 FLOPs per weight per token (${formatFlops(2 * matmulParams(m) * tokens)}) + causal attention 2 x layers x T^2 x d_attn (${formatFlops(attention)}, ${((attention / flops) * 100).toFixed(0)}%). ` +
      `The seed states the same 2·P·T FLOPs, but its times match a ${(SPARSE_BF16_FLOPS / 1e12).toFixed(0)} TFLOP/s peak: 2 x ${formatCount(nominal)} x ${tokens} / ${(SPARSE_BF16_FLOPS / 1e12).toFixed(0)} TFLOP/s = ${formatSeconds((2 * nominal * tokens) / SPARSE_BF16_FLOPS)}. ` +
      `That is the datasheet's bf16 figure with 2:4 sparsity, which dense prefill never gets; and the seed leaves attention out. At the 60-70% of peak real kernels reach, add half again.`);
  });
}

function computeRows(): FigureRow[] {
  const h100 = findGpu("h100");
  const effective = 0.5 * h100.bf16Flops;
  const g = "Training compute 6·N·D, H100 GPU-hours at 50% MFU (494.7 TFLOP/s) and cost at $3/GPU-hour";
  const cases = [
    ["7B on 2T", "llama2-7b", 2e12, "8.4e22", 8.4e22, "~10,000", 1e4],
    ["70B on 2T", "llama2-70b", 2e12, "8.4e23", 8.4e23, "100,000", 1e5],
    ["405B on 15T", "llama3-405b", 15e12, "3.6e25", 3.6e25, "~4,000,000", 4e6],
    ["1T MoE on 15T", "moe-1t", 15e12, "9e25", 9e25, "~10,000,000", 1e7],
  ] as const;
  const rows: FigureRow[] = [];
  for (const [label, name, tokens, pubFlops, pubFlopsValue, pubHours, pubHoursValue] of cases) {
    const m = preset(name);
    const c = countParams(m);
    const sixND = 6 * c.active * tokens;
    const withAttention = trainingFlopsPerToken(m, Math.min(m.maxSeqLen, 8192)) * tokens;
    const hours = sixND / effective / 3600;
    const moe = m.moe
      ? `Only the active ${formatCount(c.active)} of ${formatCount(c.total)} parameters work on each token (top-${m.moe.topK} of ${m.moe.experts} experts); the published figure multiplies all ${formatCount(c.total)} by 6·D. `
      : "";
    rows.push(row(g, `${label}: FLOPs`, pubFlops, pubFlopsValue, formatFlops(sixND), sixND,
      `${moe}6 x ${formatCount(c.active)} x ${formatCount(tokens)}; with attention at ${Math.min(m.maxSeqLen, 8192)}-token sequences, ${formatFlops(withAttention)}.`));
    rows.push(row(g, `${label}: GPU-hours`, pubHours, pubHoursValue, formatInt(hours), hours,
      `${formatFlops(sixND)} / 494.7 TFLOP/s = ${formatInt(hours)} h ($${formatCount(hours * PUBLISHED_PRICE)}). ` +
      `Reading "990 TFLOP/s effective" literally gives ${formatInt(sixND / 990e12 / 3600)} h; the published ${pubHours} implies ${formatFlops(pubFlopsValue / (pubHoursValue * 3600))} FLOP/s per GPU.`));
    rows.push(row(g, `${label}: cost`, `$${formatCount(pubHoursValue * PUBLISHED_PRICE)} (its GPU-hours x $3)`, pubHoursValue * PUBLISHED_PRICE, `$${formatCount(hours * PUBLISHED_PRICE)}`, hours * PUBLISHED_PRICE,
      `${formatInt(hours)} h x $${PUBLISHED_PRICE}; the seed's cost carries its GPU-hours' error (the row above). At the 33-39% MFU that Meta's reported GPU-hours imply (below the table), it is 1.3-1.5x more.`));
  }
  return rows;
}

function assumptionRows(): FigureRow[] {
  const h100 = findGpu("h100");
  const half = 0.5 * h100.bf16Flops;
  return [row("The GPU-hour assumption", "H100 FLOP/s \"effective at 50% MFU\"", "990 TFLOP/s", 990e12, `${(half / 1e12).toFixed(1)} TFLOP/s`, half,
    `${(h100.bf16Flops / 1e12).toFixed(1)} TFLOP/s is the H100 SXM's dense bf16 PEAK, so 50% MFU is half of it. 990 TFLOP/s "at 50%" would need a ${((2 * 990e12) / 1e12).toFixed(0)} TFLOP/s peak: ` +
    `the datasheet's bf16 figure with 2:4 sparsity, or dense fp8 (${(h100.fp8Flops! / 1e12).toFixed(1)}), neither of which dense bf16 training gets.`)];
}

/** Every published figure with kiln's. */
export function publishedFigures(): FigureRow[] {
  return [...memoryRows(), ...kvRows(), ...decodeRows(), ...prefillRows(), ...assumptionRows(), ...computeRows(), ...seedRows()];
}

const cell = (s: string): string => s.replace(/\|/g, "\\|");

/** The docs table: one section per group. */
export function figuresMarkdown(): string {
  const out: string[] = [];
  let group = "";
  for (const r of publishedFigures()) {
    if (r.group !== group) {
      group = r.group;
      out.push("", `**${group}**`, "", "| Figure | Seed | kiln | Verdict | Why |", "|---|---|---|---|---|");
    }
    const verdict = r.verdict === "differs" ? `differs (${ratio(r.publishedValue!, r.kilnValue)})` : r.verdict;
    out.push(`| ${cell(r.figure)} | ${cell(r.published)} | ${cell(r.kiln)} | ${verdict} | ${cell(r.why)} |`);
  }
  return out.join("\n").trim();
}
