// seed_figures.ts: the rest of the seed's capacity section (issue 15, bug 6), recomputed: weights by
// precision, memory per request and max batch, decode with batching and on GB200, cost per generated
// token, and the scaling projections. figures.ts holds the training-memory, KV, decode, prefill and
// compute rows and renders them all. Where neither issue quotes the seed's number the row gives
// kiln's alone ("not quoted"): kiln's repository does not hold the seed text.

import { countParams, kvBytesPerToken } from "./accounting.js";
import type { FigureRow } from "./figure_row.js";
import { NOT_QUOTED, figureRow as row } from "./figure_row.js";
import { findGpu } from "./gpus.js";
import { findPreset } from "./presets.js";
import { precisionInfo } from "./precision.js";
import { sizeServing } from "./auto_config.js";
import { formatBytes, formatCount, formatInt } from "./units.js";

/** The seed's price and its requests' length: $3 per H100-hour, 4096-token requests (Llama 2's context). */
const PRICE = 3;
const REQUEST_TOKENS = 4096;
/** Bytes per parameter a training checkpoint keeps: bf16 weights (2) and fp32 master, m and v (12). */
export const CHECKPOINT_BYTES_PER_PARAM = 14;

const model = (n: string) => findPreset(n)!;
const tps = (x: number): string => `${formatInt(x)} tokens/s`;

function precisionRows(): FigureRow[] {
  const g = "Weights by precision (weights only: no KV cache, activations or workspace)";
  return ([["7B", "llama2-7b"], ["70B", "llama2-70b"], ["405B", "llama3-405b"]] as const).map(([label, name]) => {
    const p = countParams(model(name)).total;
    const by = (bytes: number) => formatBytes(p * bytes);
    const int4 = precisionInfo("int4").weightBytes;
    return row(g, label, NOT_QUOTED, null, `fp32 ${by(4)}, bf16 ${by(2)}, fp8/int8 ${by(1)}, int4 ${by(int4)}`, p * 2,
      `${formatCount(p)} parameters x 4, 2, 1 and ${int4 * 8}/8 bytes (int4 keeps a 16-bit scale and zero per 128 weights: 4.25 bits). ` +
      `The real count is ${((p / (Number(label.replace("B", "")) * 1e9) - 1) * 100).toFixed(1)}% from a nominal ${label.replace("B", "")}e9.`);
  });
}

function requestRows(): FigureRow[] {
  const h100 = findGpu("h100");
  const g = `Memory per request and max batch (bf16, ${REQUEST_TOKENS}-token requests, H100 80 GB, 90% usable)`;
  const m7 = model("llama2-7b");
  const kv7 = kvBytesPerToken(m7, 2) * REQUEST_TOKENS;
  const w7 = countParams(m7).total * 2;
  const sized = sizeServing({ config: m7, deviceMemoryBytes: h100.memoryBytes, kvBytesPerElement: 2, weightsBytes: w7, maxModelLen: REQUEST_TOKENS });
  if (!sized.ok) throw new Error(`seed figures: 7B does not fit an H100: ${sized.message}`);
  const batch7 = Math.floor(sized.plan.kvTokens / REQUEST_TOKENS);
  const all80 = Math.floor((h100.memoryBytes - w7) / kv7);
  const m70 = model("llama2-70b");
  const tp = 8;
  const kv70 = kvBytesPerToken(m70, 2) * REQUEST_TOKENS;
  const free70 = 0.9 * h100.memoryBytes - (countParams(m70).total * 2) / tp;
  const batch70 = Math.floor(free70 / (kv70 / tp));
  return [
    row(g, "7B max batch on one H100", "3-4", 3.5, `${batch7} (${all80} in all 80 GB)`, batch7,
      `A request holds ${REQUEST_TOKENS} x 512 KiB = ${formatBytes(kv7)} of KV. 0.9 x 80 GB less ${formatBytes(w7)} of weights and ${formatBytes(sized.plan.workspaceBytes)} of step workspace holds ${batch7} of them (kiln serve's own sizing). ` +
      `The seed's 3-4 would need ${formatBytes((0.9 * h100.memoryBytes - w7) / 3.5)} per request, ${(((0.9 * h100.memoryBytes - w7) / 3.5) / kv7).toFixed(0)}x what one holds.`),
    row(g, "70B max batch on 8 H100s (tp=8)", NOT_QUOTED, null, `${formatInt(batch70)} (kiln serve caps at 256)`, batch70,
      `tp=8 puts one of the 8 KV heads on each GPU, so a GPU holds 1/8 of a request's ${formatBytes(kv70)}: ${formatBytes(free70)} free per GPU / ${formatBytes(kv70 / tp)}. ` +
      `The seed forgets that KV is split by TP: the whole request's KV against one GPU's free memory gives ${Math.floor(free70 / kv70)}, 8x too few.`),
  ];
}

function decodeRows(): FigureRow[] {
  const h100 = findGpu("h100");
  const gb200 = findGpu("gb200");
  const g = "Decode tokens/s, bandwidth bound, bf16: on GB200 (8 TB/s) at batch 1, and batched";
  const rows: FigureRow[] = [];
  for (const [label, name, pub, nominal] of [["7B", "llama2-7b", 285, 7e9], ["70B", "llama2-70b", 29, 70e9]] as const) {
    const w = countParams(model(name)).total * 2;
    const bound = gb200.memoryBytesPerS / w;
    rows.push(row(g, `${label} on GB200, batch 1`, String(pub), pub, tps(bound), bound,
      `8 TB/s / ${formatBytes(w)} of bf16 weights. The seed's 8e12 / (2 x ${nominal / 1e9}e9 x 2) = ${(gb200.memoryBytesPerS / (4 * nominal)).toFixed(0)} repeats its H100 row's stray factor of 2.`));
  }
  for (const [label, name, tp] of [["7B", "llama2-7b", 1], ["70B", "llama2-70b", 8]] as const) {
    const m = model(name);
    const w = countParams(m).total * 2;
    const kv = kvBytesPerToken(m, 2) * REQUEST_TOKENS;
    const batched = (8 * tp * h100.memoryBytesPerS) / (w + 8 * kv);
    const empty = (8 * tp * h100.memoryBytesPerS) / w;
    rows.push(row(g, `${label} batch 8 on ${tp === 1 ? "one H100" : `${tp} H100s (tp=${tp})`}`, NOT_QUOTED, null, tps(batched), batched,
      `One step reads the weights once for all 8 tokens, plus each request's KV: 8 x ${tp > 1 ? `${tp} x ` : ""}3.35 TB/s / (${formatBytes(w)} + 8 x ${formatBytes(kv)}) at ${REQUEST_TOKENS}-token contexts; ${tps(empty)} with empty caches. ` +
      `Batching multiplies the bound by the batch only while the KV read is small beside the weights.`));
  }
  return rows;
}

function costRows(): FigureRow[] {
  const h100 = findGpu("h100");
  const m = model("llama2-7b");
  const w = countParams(m).total * 2;
  const batched = (8 * h100.memoryBytesPerS) / (w + 8 * kvBytesPerToken(m, 2) * REQUEST_TOKENS);
  const perMillion = (tokensPerS: number) => (PRICE / 3600 / tokensPerS) * 1e6;
  return [row("Cost per generated token ($3 per H100-hour)", "7B, per 1M output tokens on one H100", "$0.0008", 0.0008, `$${perMillion(batched).toFixed(2)}`, perMillion(batched),
    `$3 per hour is $${(PRICE / 3600).toFixed(5)} per second. At the batch-8 bound above (${tps(batched)}) 1M tokens take ${formatInt(1e6 / batched)} s: $${perMillion(batched).toFixed(2)}; at 1,000 tokens/s, $${perMillion(1000).toFixed(2)}. ` +
    `The seed's $0.0008 is the price of one H100-second, what 1K tokens cost at 1,000 tokens/s, not 1M: about 1000x low.`)];
}

function scalingRows(): FigureRow[] {
  const m70 = model("llama2-70b");
  const p70 = countParams(m70).total;
  const kv = kvBytesPerToken(m70, 2) * REQUEST_TOKENS;
  const ckpt = p70 * CHECKPOINT_BYTES_PER_PARAM;
  const g = "Scaling projections";
  return [
    row(g, `70B KV per ${REQUEST_TOKENS}-token request`, "21 GB", 21e9, formatBytes(kv), kv,
      `${REQUEST_TOKENS} x 320 KiB: grouped-query attention keeps 8 KV heads of 64. The seed's 21 GB repeats its KV table's error (all 64 heads, and 2x again).`),
    row(g, "70B training checkpoint with optimizer state", "280 GB", 280e9, formatBytes(ckpt), ckpt,
      `bf16 weights (2 B) + fp32 master copy, Adam m and v (12 B) = ${CHECKPOINT_BYTES_PER_PARAM} B/param x ${formatCount(p70)} (what Megatron-LM and DeepSpeed save to resume; gradients are not saved). ` +
      `The seed's 280 GB is 4 B x 70e9: fp32 weights alone, with no optimizer state.`),
  ];
}

/** The seed rows issue 15 adds, in the order of the seed's capacity section. */
export function seedRows(): FigureRow[] {
  return [...precisionRows(), ...requestRows(), ...decodeRows(), ...costRows(), ...scalingRows()];
}
