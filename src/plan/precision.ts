// precision.ts: what a serving precision means for memory and compute: bytes per weight, bytes per
// cached K/V element, and which tensor-core rate runs the matmuls. Training precision (bf16 mixed,
// or fp32) is train_memory.ts's.

import type { GpuSpec } from "./gpus.js";
import { PlanInputError } from "./units.js";

export const PRECISIONS = ["fp16", "bf16", "fp8", "int8", "int4"] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface PrecisionInfo {
  readonly weightBytes: number;
  readonly kvBytes: number;
  readonly compute: "bf16" | "fp8";
  readonly note: string;
}

// NOTE: int8 and int4 are weight-only (W8A16, W4A16): weights are dequantized to 16-bit for the
// matmul, so compute runs at the bf16 rate and the KV cache stays 16-bit. int4 carries a 16-bit scale
// and zero point per group of 128 weights: 4 + 32/128 = 4.25 bits. fp8 is W8A8 with an fp8 KV cache.
const INFO: Readonly<Record<Precision, PrecisionInfo>> = {
  fp16: { weightBytes: 2, kvBytes: 2, compute: "bf16", note: "16-bit weights and KV cache" },
  bf16: { weightBytes: 2, kvBytes: 2, compute: "bf16", note: "16-bit weights and KV cache" },
  fp8: { weightBytes: 1, kvBytes: 1, compute: "fp8", note: "fp8 weights, activations and KV cache (fp8 tensor cores)" },
  int8: { weightBytes: 1, kvBytes: 2, compute: "bf16", note: "int8 weight-only (W8A16), 16-bit KV cache" },
  int4: { weightBytes: 4.25 / 8, kvBytes: 2, compute: "bf16", note: "int4 weight-only with a scale and zero per 128 (4.25 bits), 16-bit KV cache" },
};

export function parsePrecision(text: string): Precision {
  const p = PRECISIONS.find((x) => x === text.toLowerCase());
  if (!p) throw new PlanInputError(`unknown precision '${text}' (known: ${PRECISIONS.join(", ")})`);
  return p;
}

export function precisionInfo(p: Precision): PrecisionInfo {
  return INFO[p];
}

/** Dense FLOP/s the precision's matmuls run at on `gpu` (fp8 needs fp8 tensor cores). */
export function computeFlops(gpu: GpuSpec, p: Precision): number {
  if (INFO[p].compute === "bf16") return gpu.bf16Flops;
  if (gpu.fp8Flops === null) throw new PlanInputError(`precision fp8: ${gpu.name} (${gpu.description}) has no fp8 tensor cores; use bf16, int8 or int4`);
  return gpu.fp8Flops;
}
