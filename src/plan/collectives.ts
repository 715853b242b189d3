// collectives.ts: how long a collective takes on a link (the ring algorithms NCCL uses for large
// messages): a bandwidth term at the share of the nominal link bandwidth NCCL reaches, plus NCCL's
// latency term per ring step; and which link a group of GPUs talks over. Training and serving plans
// add these up; they do not decide what is communicated.
//
// The defaults (COMM_DEFAULTS) come from published NCCL figures, each named where it is set, and a
// plan can override them (TrainRequest.comm, `kiln plan --node-link-efficiency ...`). IDEAL_COMM is
// the nominal bandwidth with no latency, what the planner assumed before issue 15 (bug 10).

import type { GpuSpec } from "./gpus.js";

/** Link efficiencies and NCCL's latency model for ring collectives. */
export interface CommModel {
  /** Share of the node link's nominal per-direction bandwidth a large ring collective reaches (NVLink, Infinity Fabric, PCIe). */
  readonly nodeLinkEfficiency: number;
  /** Share of the network's nominal per-GPU bandwidth (the NIC's line rate) a large ring collective reaches. */
  readonly networkEfficiency: number;
  /** Fixed cost of launching one collective. */
  readonly baseLatencyS: number;
  /** Cost of each ring step between GPUs of one node: over NVLink (or Infinity Fabric), and over PCIe. */
  readonly nvlinkStepLatencyS: number;
  readonly pcieStepLatencyS: number;
  /** Cost of each ring step that crosses nodes. */
  readonly networkStepLatencyS: number;
}

/**
 * Published NCCL figures:
 * - NVLink: "450GB/s is the line rate. With the protocol overhead (~20%) NCCL can get an effective
 *   NVLink bandwidth of 370GB/s" (S. Jeaugey, NCCL maintainer, NVIDIA/nccl-tests issue 212,
 *   2024-05-06): 370 / 450 = 0.82 of the nominal H100 NVLink 4 bandwidth, applied to every node link.
 * - Network: "For NDR @ 400Gbps you should see 46-48GB/s per NIC" (NVIDIA, nccl-tests issue 290,
 *   2025-03-03): 47 / 50 = 0.94 of the line rate.
 * - Latency: NCCL's own cost model (src/graph/tuning.cc, ring algorithm, Simple protocol, the one it
 *   picks for large messages): 8.4 us per collective, plus 3.4 us per ring step over NVLink, 5.7 us
 *   over PCIe and 9.6 us across the network; an all-reduce of n ranks has 2(n - 1) steps, an
 *   all-gather or reduce-scatter n - 1.
 */
export const COMM_DEFAULTS: CommModel = {
  nodeLinkEfficiency: 370 / 450,
  networkEfficiency: 47 / 50,
  baseLatencyS: 8.4e-6,
  nvlinkStepLatencyS: 3.4e-6,
  pcieStepLatencyS: 5.7e-6,
  networkStepLatencyS: 9.6e-6,
};

/** Nominal bandwidth, no latency: the planner's model before bug 10, for comparison. */
export const IDEAL_COMM: CommModel = { nodeLinkEfficiency: 1, networkEfficiency: 1, baseLatencyS: 0, nvlinkStepLatencyS: 0, pcieStepLatencyS: 0, networkStepLatencyS: 0 };

/** The link a group of ranks uses: its nominal per-GPU, per-direction bandwidth and what NCCL gets from it. */
export interface Link {
  /** "NVLink 4", "network", or "-" for a group of one. */
  readonly name: string;
  /** Nominal bandwidth, bytes/s. */
  readonly bytesPerS: number;
  /** Share of bytesPerS a large collective reaches. */
  readonly efficiency: number;
  /** Nodes the group spans (1 inside a node). */
  readonly nodes: number;
  /** Latency of a ring step inside a node and across nodes, and of launching a collective. */
  readonly intraStepLatencyS: number;
  readonly interStepLatencyS: number;
  readonly baseLatencyS: number;
}

/**
 * The link of a parallel group of `size` ranks whose members are `stride` ranks apart, ranks being laid
 * out node by node: the group stays inside one node when stride x size <= gpusPerNode; otherwise the
 * ring crosses nodes and each GPU's share of the network is the bottleneck.
 */
export function groupLink(gpu: GpuSpec, stride: number, size: number, comm: CommModel = COMM_DEFAULTS): Link {
  const intra = /pcie/i.test(gpu.nodeLinkName) ? comm.pcieStepLatencyS : comm.nvlinkStepLatencyS;
  const lat = { intraStepLatencyS: intra, interStepLatencyS: comm.networkStepLatencyS, baseLatencyS: comm.baseLatencyS };
  if (size <= 1) return { name: "-", bytesPerS: Infinity, efficiency: 1, nodes: 1, ...lat };
  if (stride * size <= gpu.gpusPerNode) return { name: gpu.nodeLinkName, bytesPerS: gpu.nodeLinkBytesPerS, efficiency: comm.nodeLinkEfficiency, nodes: 1, ...lat };
  // NOTE: members per node: gpusPerNode / stride of them share one node (at least one).
  const perNode = Math.max(1, Math.floor(gpu.gpusPerNode / stride));
  return { name: "network", bytesPerS: gpu.networkBytesPerS, efficiency: comm.networkEfficiency, nodes: Math.ceil(size / perNode), ...lat };
}

/**
 * NCCL's latency of a ring collective of `steps` steps over n ranks, `interSteps` of them crossing
 * nodes (tuning.cc: base + (steps - interSteps) x intra + interSteps x inter).
 */
function ringLatency(link: Link, steps: number, interSteps: number): number {
  return link.baseLatencyS + (steps - interSteps) * link.intraStepLatencyS + interSteps * link.interStepLatencyS;
}

const seconds = (bytes: number, link: Link): number => bytes / (link.bytesPerS * link.efficiency);

/** Ring all-reduce of `bytes` over n ranks: each sends and receives 2(n-1)/n x bytes, in 2(n-1) steps. */
export function allReduceTime(bytes: number, n: number, link: Link): number {
  return n <= 1 || bytes === 0 ? 0 : ringLatency(link, 2 * (n - 1), 2 * (link.nodes - 1)) + ((2 * (n - 1)) / n) * seconds(bytes, link);
}

/** Ring all-gather (or reduce-scatter) where `bytes` is the full, gathered size: (n-1)/n x bytes each, n - 1 steps. */
export function allGatherTime(bytes: number, n: number, link: Link): number {
  return n <= 1 || bytes === 0 ? 0 : ringLatency(link, n - 1, link.nodes - 1) + ((n - 1) / n) * seconds(bytes, link);
}

export const reduceScatterTime = allGatherTime;

/** All-to-all where each rank holds `bytes` and keeps 1/n of them: (n-1)/n x bytes leave each rank, n - 1 exchanges. */
export function allToAllTime(bytes: number, n: number, link: Link): number {
  return n <= 1 || bytes === 0 ? 0 : ringLatency(link, n - 1, link.nodes - 1) + ((n - 1) / n) * seconds(bytes, link);
}

/** One point-to-point send (pipeline stages): one step. */
export function p2pTime(bytes: number, link: Link): number {
  return bytes === 0 ? 0 : ringLatency(link, 1, link.nodes > 1 ? 1 : 0) + seconds(bytes, link);
}

// The bandwidth terms alone at a given bandwidth (no efficiency, no latency): the textbook formulas.

/** Ring all-reduce of `bytes` over n ranks: each sends and receives 2(n-1)/n x bytes. */
export function ringAllReduceSeconds(bytes: number, n: number, bytesPerS: number): number {
  return n <= 1 ? 0 : ((2 * (n - 1)) / n) * (bytes / bytesPerS);
}

/** Ring all-gather (or reduce-scatter) where `bytes` is the full, gathered size: (n-1)/n x bytes each. */
export function allGatherSeconds(bytes: number, n: number, bytesPerS: number): number {
  return n <= 1 ? 0 : ((n - 1) / n) * (bytes / bytesPerS);
}

/** All-to-all where each rank holds `bytes` and keeps 1/n of them: (n-1)/n x bytes leave each rank. */
export function allToAllSeconds(bytes: number, n: number, bytesPerS: number): number {
  return n <= 1 ? 0 : ((n - 1) / n) * (bytes / bytesPerS);
}

/** One point-to-point send. */
export function p2pSeconds(bytes: number, bytesPerS: number): number {
  return bytes / bytesPerS;
}
