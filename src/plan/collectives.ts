// collectives.ts: how long a collective takes on a link, bandwidth terms only (the ring algorithms
// NCCL uses for large messages), and which link a group of GPUs talks over. Training and serving
// plans add these up; they do not decide what is communicated.

import type { GpuSpec } from "./gpus.js";

/** The link a group of ranks uses and its per-GPU, per-direction bandwidth. */
export interface Link {
  /** "NVLink 4", "network", or "-" for a group of one. */
  readonly name: string;
  readonly bytesPerS: number;
}

/**
 * The link of a parallel group of `size` ranks whose members are `stride` ranks apart, ranks being laid
 * out node by node: the group stays inside one node when stride x size <= gpusPerNode; otherwise the
 * ring crosses nodes and each GPU's share of the network is the bottleneck.
 */
export function groupLink(gpu: GpuSpec, stride: number, size: number): Link {
  if (size <= 1) return { name: "-", bytesPerS: Infinity };
  return stride * size <= gpu.gpusPerNode ? { name: gpu.nodeLinkName, bytesPerS: gpu.nodeLinkBytesPerS } : { name: "network", bytesPerS: gpu.networkBytesPerS };
}

/** Ring all-reduce of `bytes` over n ranks: each sends and receives 2(n-1)/n x bytes. */
export function ringAllReduceSeconds(bytes: number, n: number, bytesPerS: number): number {
  return n <= 1 ? 0 : ((2 * (n - 1)) / n) * (bytes / bytesPerS);
}

/** Ring all-gather (or reduce-scatter) where `bytes` is the full, gathered size: (n-1)/n x bytes each. */
export function allGatherSeconds(bytes: number, n: number, bytesPerS: number): number {
  return n <= 1 ? 0 : ((n - 1) / n) * (bytes / bytesPerS);
}

export const reduceScatterSeconds = allGatherSeconds;

/** All-to-all where each rank holds `bytes` and keeps 1/n of them: (n-1)/n x bytes leave each rank. */
export function allToAllSeconds(bytes: number, n: number, bytesPerS: number): number {
  return n <= 1 ? 0 : ((n - 1) / n) * (bytes / bytesPerS);
}

/** One point-to-point send. */
export function p2pSeconds(bytes: number, bytesPerS: number): number {
  return bytes / bytesPerS;
}
