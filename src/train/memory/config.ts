// config.ts: the `memory` section of a training config (zod): which blocks recompute their
// activations in the backward, and where checkpointed blocks' inputs wait for it.
//   activationCheckpointing: "none" | "layer" (every block) | { every: k } (blocks 0, k, 2k, ...) |
//                            "attention" (selective: only each block's attention is recomputed)
//   offload: { to: "host" | "disk", dir?, hostBytes? }: checkpointed blocks' inputs leave the device
//            between forward and backward; "host" spills to files in `dir` past `hostBytes`.

import { z } from "zod";

export const ActivationCheckpointingSchema = z.union([
  z.enum(["none", "layer", "attention"]),
  z.strictObject({ every: z.number().int().positive() }),
], { error: () => `must be "none", "layer", "attention" or { "every": k } with k a positive integer` });

export const OffloadSchema = z.strictObject({
  /** host: kept in host memory up to hostBytes, then in files; disk: always files (the NVMe case). */
  to: z.enum(["host", "disk"]),
  /** Folder for the files (default: a fresh folder in the OS temp dir), relative to the config file's folder. */
  dir: z.string().min(1).optional(),
  /** Host memory the offloaded activations may use before they spill to disk (to: host; default unlimited). */
  hostBytes: z.number().int().nonnegative().optional(),
});

export const MemoryConfigSchema = z.strictObject({
  activationCheckpointing: ActivationCheckpointingSchema.default("none"),
  offload: OffloadSchema.optional(),
});

export type ActivationCheckpointing = z.infer<typeof ActivationCheckpointingSchema>;
export type OffloadConfig = z.infer<typeof OffloadSchema>;
export type MemoryConfig = z.infer<typeof MemoryConfigSchema>;

/** Whether block `layer` is checkpointed as a whole under this policy. */
export function checkpointsLayer(policy: ActivationCheckpointing, layer: number): boolean {
  if (typeof policy === "object") return layer % policy.every === 0;
  return policy === "layer";
}

/** A short name for reports and benchmarks: none, layer, every-2, attention. */
export function policyName(policy: ActivationCheckpointing): string {
  return typeof policy === "object" ? `every-${policy.every}` : policy;
}
