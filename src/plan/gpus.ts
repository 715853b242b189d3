// gpus.ts: the accelerators the planner knows: memory, HBM bandwidth, dense bf16/fp8 tensor FLOP/s,
// link bandwidths and an assumed hourly price, and custom ones read from a JSON file. Sources and
// assumptions are listed in docs/planning.md ("The GPU table"). It owns the numbers, not their use.
//
// NOTE: every FLOP/s figure is DENSE (datasheets often print the 2:4-sparsity number, twice as big),
// and every bandwidth is per GPU and per direction (NVLink's "900 GB/s" is 450 GB/s each way).

import { readFileSync } from "node:fs";
import { PlanInputError } from "./units.js";

export interface GpuSpec {
  readonly name: string;
  readonly description: string;
  readonly memoryBytes: number;
  /** HBM (or GDDR) bandwidth, bytes/s. */
  readonly memoryBytesPerS: number;
  /** Dense bf16 tensor-core FLOP/s. */
  readonly bf16Flops: number;
  /** Dense fp8 tensor-core FLOP/s; null where the GPU has no fp8 tensor cores. */
  readonly fp8Flops: number | null;
  /** Between GPUs of one node (NVLink or Infinity Fabric; PCIe where there is neither), per GPU per direction. */
  readonly nodeLinkBytesPerS: number;
  /** What connects a node's link: "NVLink", "PCIe", ... (for tables). */
  readonly nodeLinkName: string;
  /** Between nodes (the GPU's NIC share), per GPU per direction. */
  readonly networkBytesPerS: number;
  /** GPU <-> host memory, per direction (offloaded optimizer states travel here). */
  readonly hostBytesPerS: number;
  /** GPUs that share the node link (8 in an HGX box, 72 in a GB200 NVL72 rack). */
  readonly gpusPerNode: number;
  /** Assumed price per GPU-hour, USD. */
  readonly pricePerHour: number;
}

const T = 1e12;
const G = 1e9;

const GPUS: readonly GpuSpec[] = [
  { name: "h100", description: "NVIDIA H100 SXM5 80GB", memoryBytes: 80 * G, memoryBytesPerS: 3.35 * T, bf16Flops: 989.4 * T, fp8Flops: 1978.9 * T,
    nodeLinkBytesPerS: 450 * G, nodeLinkName: "NVLink 4", networkBytesPerS: 50 * G, hostBytesPerS: 64 * G, gpusPerNode: 8, pricePerHour: 3.0 },
  { name: "h100-pcie", description: "NVIDIA H100 PCIe 80GB", memoryBytes: 80 * G, memoryBytesPerS: 2.0 * T, bf16Flops: 756.5 * T, fp8Flops: 1513 * T,
    nodeLinkBytesPerS: 64 * G, nodeLinkName: "PCIe 5", networkBytesPerS: 25 * G, hostBytesPerS: 64 * G, gpusPerNode: 8, pricePerHour: 2.5 },
  { name: "h200", description: "NVIDIA H200 SXM 141GB", memoryBytes: 141 * G, memoryBytesPerS: 4.8 * T, bf16Flops: 989.4 * T, fp8Flops: 1978.9 * T,
    nodeLinkBytesPerS: 450 * G, nodeLinkName: "NVLink 4", networkBytesPerS: 50 * G, hostBytesPerS: 64 * G, gpusPerNode: 8, pricePerHour: 3.8 },
  { name: "gb200", description: "NVIDIA GB200 NVL72 (per Blackwell GPU)", memoryBytes: 186 * G, memoryBytesPerS: 8.0 * T, bf16Flops: 2500 * T, fp8Flops: 5000 * T,
    nodeLinkBytesPerS: 900 * G, nodeLinkName: "NVLink 5", networkBytesPerS: 50 * G, hostBytesPerS: 450 * G, gpusPerNode: 72, pricePerHour: 6.0 },
  { name: "a100-40", description: "NVIDIA A100 SXM4 40GB", memoryBytes: 40 * G, memoryBytesPerS: 1.555 * T, bf16Flops: 312 * T, fp8Flops: null,
    nodeLinkBytesPerS: 300 * G, nodeLinkName: "NVLink 3", networkBytesPerS: 25 * G, hostBytesPerS: 32 * G, gpusPerNode: 8, pricePerHour: 1.3 },
  { name: "a100-80", description: "NVIDIA A100 SXM4 80GB", memoryBytes: 80 * G, memoryBytesPerS: 2.039 * T, bf16Flops: 312 * T, fp8Flops: null,
    nodeLinkBytesPerS: 300 * G, nodeLinkName: "NVLink 3", networkBytesPerS: 25 * G, hostBytesPerS: 32 * G, gpusPerNode: 8, pricePerHour: 1.8 },
  { name: "l40s", description: "NVIDIA L40S 48GB", memoryBytes: 48 * G, memoryBytesPerS: 0.864 * T, bf16Flops: 362 * T, fp8Flops: 733 * T,
    nodeLinkBytesPerS: 32 * G, nodeLinkName: "PCIe 4", networkBytesPerS: 12.5 * G, hostBytesPerS: 32 * G, gpusPerNode: 8, pricePerHour: 1.0 },
  { name: "mi300x", description: "AMD Instinct MI300X 192GB", memoryBytes: 192 * G, memoryBytesPerS: 5.3 * T, bf16Flops: 1307.4 * T, fp8Flops: 2614.9 * T,
    nodeLinkBytesPerS: 448 * G, nodeLinkName: "Infinity Fabric", networkBytesPerS: 50 * G, hostBytesPerS: 64 * G, gpusPerNode: 8, pricePerHour: 2.5 },
];

const GPU_ALIASES: Readonly<Record<string, string>> = { "h100-sxm": "h100", "a100": "a100-80", "a100-80gb": "a100-80", "a100-40gb": "a100-40", "h200-sxm": "h200" };

export const GPU_NAMES: readonly string[] = GPUS.map((g) => g.name);

const NUMBER_FIELDS = ["memoryBytes", "memoryBytesPerS", "bf16Flops", "nodeLinkBytesPerS", "networkBytesPerS", "hostBytesPerS", "gpusPerNode", "pricePerHour"] as const;

/** A GPU from plain data (a JSON file's contents): every GpuSpec field, fp8Flops may be null. */
export function customGpu(spec: Record<string, unknown>, source: string): GpuSpec {
  for (const k of NUMBER_FIELDS) {
    const v = spec[k];
    if (typeof v !== "number" || !(v > 0)) throw new PlanInputError(`${source}: ${k} must be a positive number, got ${JSON.stringify(v)} (fields: name, ${NUMBER_FIELDS.join(", ")}, fp8Flops)`);
  }
  const fp8 = spec.fp8Flops ?? null;
  if (fp8 !== null && !(typeof fp8 === "number" && fp8 > 0)) throw new PlanInputError(`${source}: fp8Flops must be a positive number or null, got ${JSON.stringify(fp8)}`);
  if (!Number.isInteger(spec.gpusPerNode)) throw new PlanInputError(`${source}: gpusPerNode must be a whole number, got ${String(spec.gpusPerNode)}`);
  const n = (k: (typeof NUMBER_FIELDS)[number]): number => spec[k] as number;
  return {
    name: typeof spec.name === "string" ? spec.name : "custom",
    description: typeof spec.description === "string" ? spec.description : `custom GPU from ${source}`,
    memoryBytes: n("memoryBytes"), memoryBytesPerS: n("memoryBytesPerS"), bf16Flops: n("bf16Flops"), fp8Flops: fp8 as number | null,
    nodeLinkBytesPerS: n("nodeLinkBytesPerS"), nodeLinkName: typeof spec.nodeLinkName === "string" ? spec.nodeLinkName : "node link",
    networkBytesPerS: n("networkBytesPerS"), hostBytesPerS: n("hostBytesPerS"), gpusPerNode: n("gpusPerNode"), pricePerHour: n("pricePerHour"),
  };
}

/** The GPU a name (or alias) means, or a custom one from a .json file; unknown names list the known ones. */
export function findGpu(nameOrFile: string): GpuSpec {
  const key = nameOrFile.toLowerCase();
  const gpu = GPUS.find((g) => g.name === (GPU_ALIASES[key] ?? key));
  if (gpu) return gpu;
  if (nameOrFile.endsWith(".json")) {
    let spec: Record<string, unknown>;
    try {
      spec = JSON.parse(readFileSync(nameOrFile, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new PlanInputError(`${nameOrFile}: cannot read a custom GPU: ${(err as Error).message}`);
    }
    return customGpu(spec, nameOrFile);
  }
  const aliases = Object.entries(GPU_ALIASES).map(([a, c]) => `${a} = ${c}`).join(", ");
  throw new PlanInputError(`unknown GPU '${nameOrFile}' (known: ${GPU_NAMES.join(", ")}; aliases: ${aliases}; or a .json file describing a custom GPU)`);
}

export function listGpus(): readonly GpuSpec[] {
  return GPUS;
}
