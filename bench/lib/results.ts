// results.ts is the plain-data shape of a kernel benchmark run (what bench/results/*.json hold) and
// its check when read back (--from). Rendering lives in markdown.ts, measuring in suite.ts.

import type { BackendInfo, BackendName, DType } from "../../src/index.js";
import type { CaseOp, SizeProfile, Unit } from "./cases.js";
import type { MachineInfo } from "./machine.js";

/** routine: the hand-written kernel; primitive: the same math from primitive ops; naive-js: a plain JS triple loop. */
export type Variant = "routine" | "primitive" | "naive-js";

export interface CaseResult {
  readonly name: string;
  readonly op: CaseOp;
  readonly backend: BackendName;
  readonly dtype: DType;
  readonly shapes: readonly (readonly number[])[];
  readonly variant: Variant;
  /** Run on a software emulation of a GPU (SwiftShader, llvmpipe): for correctness, not performance. */
  readonly software: boolean;
  /** Kernels launched per run (1 for the naive JS loop). */
  readonly kernels: number;
  /** The first run, which compiles. */
  readonly firstMs: number;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly reps: number;
  /** Flops or bytes moved per run. */
  readonly work: number;
  readonly unit: Unit;
  /** work / median time, in `unit`. */
  readonly throughput: number;
  /** Largest |difference| from the primitive path (routine rows) or from the routine (naive-js row). */
  readonly maxAbsDiff?: number;
}

/** A variant that could not run, and why (no routine for the spec, or an error). */
export interface SkippedVariant {
  readonly name: string;
  readonly dtype: DType;
  readonly variant: Variant;
  readonly reason: string;
}

export interface KernelResults {
  readonly suite: "kernels";
  readonly version: 1;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly backend: BackendInfo;
  readonly profile: SizeProfile["name"];
  readonly quick: boolean;
  readonly cases: readonly CaseResult[];
  readonly skipped: readonly SkippedVariant[];
}

/** Base name of a run's files: kernels-<backend>-<machine tag>. */
export const resultsBaseName = (r: KernelResults): string => `kernels-${r.backend.name}-${r.machine.tag}`;

/** Parse a results file, checking the fields the markdown needs; errors name the file and the field. */
export function parseResults(text: string, source: string): KernelResults {
  const data = JSON.parse(text) as Partial<KernelResults>;
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${source}: not a kernel benchmark result (${what})`);
  };
  need(data.suite === "kernels" && data.version === 1, "suite must be 'kernels', version 1");
  need(typeof data.machine?.tag === "string" && typeof data.backend?.name === "string", "machine.tag and backend.name");
  need(Array.isArray(data.cases) && Array.isArray(data.skipped), "cases and skipped must be arrays");
  data.cases!.forEach((c, i) => need(typeof c.name === "string" && Number.isFinite(c.medianMs) && Number.isFinite(c.throughput), `cases[${i}]`));
  return data as KernelResults;
}
