// nccl_open.ts: what one rank of an NCCL communicator needs opened on its machine: the native addon, the
// CUDA driver with a GPU for this rank (LOCAL_RANK picks it, one process per GPU as torchrun does), and
// libnccl.so.2 (searched where probe.ts searches: KILN_CUDA_LIB_PATH, Python's nvidia/*/lib where
// PyTorch's wheels keep it, the system folders, the loader's path). Where a piece is missing it says
// which, all of them in one sentence, so `kiln train --comm nccl` on a machine without a GPU fails plainly.
// src/dist's nccl communicator reaches this through the package entry (src/index.ts), never directly.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { CUDA_LIBRARIES, probeCuda, type CudaProbe } from "./probe.js";
import type { CudaRuntime } from "./runtime.js";

export interface OpenedNccl {
  /** The addon, with the driver loaded, `device`'s primary context current, and NCCL loaded. */
  readonly rt: CudaRuntime;
  /** ncclGetVersion's code (e.g. 22703 for 2.27.3). */
  readonly version: number;
  /** The libnccl that was loaded. */
  readonly library: string;
  /** The GPU ordinal this rank uses. */
  readonly device: number;
}

/** Every missing piece for NCCL in one sentence, or undefined when all are there. */
export function ncclUnavailableReason(p: CudaProbe): string | undefined {
  const problems: string[] = [];
  if (p.addon.error) {
    problems.push(`the native addon is not built (${p.addon.path} did not load: ${p.addon.error}; run \`npm run build:cuda\`, which needs nvcc)`);
  } else {
    const driver = p.libraries.driver;
    if (!driver?.path) problems.push(`no CUDA driver (${CUDA_LIBRARIES.driver[0]} not found: ${driver?.error ?? "not looked for"})`);
    else if (p.driver?.error) problems.push(`the CUDA driver at ${driver.path} does not start: ${p.driver.error}`);
    else if (p.driver?.devices === 0) problems.push("the CUDA driver found no GPU");
  }
  // NOTE: without the addon nothing was dlopen'd, so only the folders can be looked in.
  const found = p.addon.error ? p.searched.flatMap((d) => CUDA_LIBRARIES.nccl.map((n) => join(d, n))).find(existsSync) : p.libraries.nccl?.path;
  if (!found) {
    const dlerror = p.addon.error ? "" : `; the loader's own search: ${p.libraries.nccl?.error ?? "not found"}`;
    problems.push(`no ${CUDA_LIBRARIES.nccl[0]} found in [${p.searched.join(", ")}]${dlerror} (PyTorch's CUDA wheels carry it as nvidia-nccl-cu12/cu13, or set KILN_CUDA_LIB_PATH)`);
  }
  return problems.length > 0 ? `nccl: cannot run on this machine: ${problems.join("; ")}` : undefined;
}

/** Opens the addon, the driver, GPU `localRank` and NCCL; throws ncclUnavailableReason's sentence where a piece is missing. */
export function openNcclNow(localRank: number): OpenedNccl {
  if (!Number.isInteger(localRank) || localRank < 0) throw new Error(`nccl: the local rank must be an integer >= 0 (LOCAL_RANK), got ${localRank}`);
  const probe = probeCuda();
  const reason = ncclUnavailableReason(probe);
  if (reason) throw new Error(reason);
  const rt = createRequire(import.meta.url)(probe.addon.path) as CudaRuntime;
  const { devices } = rt.loadDriver(probe.libraries.driver!.path!);
  if (localRank >= devices) throw new Error(`nccl: local rank ${localRank} needs GPU ${localRank}, but this machine has ${devices} (one rank per GPU: start at most ${devices} ranks per node)`);
  rt.context(localRank);
  const library = probe.libraries.nccl!.path!;
  return { rt, version: rt.loadNccl(library), library, device: localRank };
}
