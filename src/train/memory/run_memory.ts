// run_memory.ts: the memory side of a configured run (run.ts): the backend wrapped for accounting,
// the trainer's memory options from the config's `memory` section (the offload store made here, so
// its folder is relative to the config file), and the per-category numbers a run reports.

import type { Backend, MemorySnapshot } from "../../index.js";
import { MEMORY_CATEGORIES, trackMemory } from "../../index.js";
import { configPath } from "../run_data.js";
import type { MemoryConfig } from "./config.js";
import type { ActivationStore } from "./store.js";
import { DiskStore, HostStore, TieredStore } from "./store.js";
import type { TrainingMemoryOptions } from "./training_memory.js";

/** The run's backend with its allocations accounted (core/memory.ts). */
export const accountedBackend = (backend: Backend): Backend => trackMemory(backend);

/** The offload store a config asks for (undefined: none). */
export function offloadStore(cfg: MemoryConfig | undefined, baseDir: string): ActivationStore | undefined {
  const o = cfg?.offload;
  if (!o) return undefined;
  const dir = o.dir === undefined ? undefined : configPath(o.dir, baseDir);
  if (o.to === "disk") return new DiskStore(dir);
  return o.hostBytes === undefined ? new HostStore() : new TieredStore(new HostStore(), new DiskStore(dir), o.hostBytes);
}

export function trainingMemoryOptions(cfg: MemoryConfig | undefined, baseDir: string): TrainingMemoryOptions {
  const offload = offloadStore(cfg, baseDir);
  return { activationCheckpointing: cfg?.activationCheckpointing ?? "none", ...(offload ? { offload } : {}) };
}

/** Flat metrics for tracking: mem_peak_<category>_bytes, mem_live_<category>_bytes, mem_peak_total_bytes. */
export function memoryMetrics(s: MemorySnapshot): Record<string, number> {
  const out: Record<string, number> = { mem_peak_total_bytes: s.peakTotal, mem_live_total_bytes: s.liveTotal };
  for (const c of MEMORY_CATEGORIES) {
    out[`mem_peak_${c}_bytes`] = s.peak[c];
    out[`mem_live_${c}_bytes`] = s.live[c];
  }
  return out;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

/** "peak 12.3 MiB (parameters 1.2 MiB, gradients ..., ...)": one line for the terminal. */
export function describeMemory(s: MemorySnapshot): string {
  return `peak ${mib(s.peakTotal)} (${MEMORY_CATEGORIES.map((c) => `${c} ${mib(s.peak[c])}`).join(", ")}); live ${mib(s.liveTotal)}`;
}
