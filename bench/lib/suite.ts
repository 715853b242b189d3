// suite.ts runs the kernel benchmark on one backend: for every case of the profile, the routine and the
// primitive path (and the plain JS triple loop on cpu), timed with realize + synchronize per run, checked
// against each other once, and returned as plain data. It does not parse arguments or write files
// (bench/kernels.ts), and it draws no conclusions (markdown.ts shows the ratios).

import { naiveMatmul } from "../naive_matmul.js";
import type { Backend, Tensor } from "../../src/index.js";
import { withRoutines } from "../../src/index.js";
// NOTE: the schedule is read (not run) to count a variant's kernels and to see whether the routine was
// really picked: a spec the backend cannot build falls back to primitives, which must not be timed as "routine".
import { schedule } from "../../src/core/schedule.js";
import type { BenchCase, SizeProfile } from "./cases.js";
import { PROFILES, benchCases, hostValues } from "./cases.js";
import type { MachineInfo } from "./machine.js";
import type { CaseResult, KernelResults, SkippedVariant, Variant } from "./results.js";
import type { TimingPolicy, Timing } from "./timing.js";
import { measure } from "./timing.js";

export interface SuiteOptions {
  readonly profile: SizeProfile;
  readonly policy: TimingPolicy;
  readonly quick: boolean;
  readonly machine: MachineInfo;
  /** Called after each timed row (progress output). */
  readonly onResult?: (r: CaseResult) => void;
}

/** The profile a backend gets: small sizes on a software GPU, full sizes otherwise. */
export function profileFor(backend: Backend): SizeProfile {
  return isSoftwareGpu(backend) ? PROFILES.software : PROFILES.full;
}

/** A GPU backend running on a CPU emulation. NOTE: the cpu backend also says software (it ranks below hardware), but its numbers are real CPU numbers. */
export const isSoftwareGpu = (backend: Backend): boolean => backend.name !== "cpu" && backend.info.software;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`check: outputs differ in length (${a.length} and ${b.length})`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

interface Measured {
  readonly timing: Timing;
  readonly kernels: number;
  readonly values: ArrayLike<number>;
}

/** Time one variant of a case, or say why not: the routine path of a spec the backend cannot build. */
async function measureVariant(backend: Backend, build: () => Tensor, variant: Variant, policy: TimingPolicy): Promise<Measured | string> {
  const graph = () => withRoutines(variant === "routine", build);
  const probe = graph();
  const items = schedule([probe.node]);
  probe.dispose();
  if (variant === "routine" && !items.some((it) => it.kind === "routine")) {
    return `${backend.name} has no routine for this spec (the graph falls back to primitives)`;
  }
  const timing = await measure(async () => {
    const out = graph();
    await out.realize();
    await backend.synchronize();
    out.dispose();
  }, policy);
  const out = graph();
  const values = await out.data();
  out.dispose();
  return { timing, kernels: items.length, values };
}

function row(c: BenchCase, backend: Backend, variant: Variant, m: { timing: Timing; kernels: number }, diff?: number): CaseResult {
  const { firstMs, medianMs, minMs, maxMs, reps } = m.timing;
  return {
    name: c.name, op: c.op, backend: backend.name, dtype: c.dtype, shapes: c.shapes, variant,
    software: isSoftwareGpu(backend), kernels: m.kernels, firstMs, medianMs, minMs, maxMs, reps,
    work: c.work, unit: c.unit, throughput: c.work / (medianMs * 1e6), // 10^9 flops or bytes per second
    ...(diff === undefined ? {} : { maxAbsDiff: diff }),
  };
}

/** The plain JS triple loop on the same host values as the case's inputs (seeds 0 and 1). */
async function measureNaive(c: BenchCase, size: number, policy: TimingPolicy): Promise<Measured> {
  if (c.shapes[0]![0] !== size) throw new Error(`naive-js: case ${c.name} is not ${size}^3`);
  const a = hostValues(size * size, 0);
  const b = hostValues(size * size, 1);
  let values: Float32Array = new Float32Array(0);
  const timing = await measure(() => void (values = naiveMatmul(a, b, size, size, size)), policy);
  return { timing, kernels: 1, values };
}

/** Run every case of the profile on one backend. */
export async function runSuite(backend: Backend, opts: SuiteOptions): Promise<KernelResults> {
  const cases: CaseResult[] = [];
  const skipped: SkippedVariant[] = [];
  const add = (r: CaseResult) => (cases.push(r), opts.onResult?.(r));
  const skip = (c: BenchCase, variant: Variant, reason: string) => skipped.push({ name: c.name, dtype: c.dtype, variant, reason });
  const naiveName = `matmul ${opts.profile.naive}x${opts.profile.naive}x${opts.profile.naive}`;

  for (const c of benchCases(opts.profile, backend)) {
    const prepared = c.setup(backend);
    try {
      const done = new Map<Variant, Measured>();
      for (const variant of c.hasRoutine ? (["primitive", "routine"] as const) : (["primitive"] as const)) {
        try {
          const m = await measureVariant(backend, prepared.build, variant, opts.policy);
          if (typeof m === "string") skip(c, variant, m);
          else done.set(variant, m);
        } catch (err) {
          skip(c, variant, `failed: ${(err as Error).message}`);
        }
      }
      const prim = done.get("primitive");
      const routine = done.get("routine");
      if (routine) add(row(c, backend, "routine", routine, prim ? maxAbsDiff(routine.values, prim.values) : undefined));
      if (prim) add(row(c, backend, "primitive", prim));
      if (backend.name === "cpu" && c.name === naiveName && c.dtype === "f32") {
        const naive = await measureNaive(c, opts.profile.naive, opts.policy);
        const against = routine ?? prim;
        add(row(c, backend, "naive-js", naive, against ? maxAbsDiff(naive.values, against.values) : undefined));
      }
    } finally {
      prepared.dispose();
    }
  }
  return {
    suite: "kernels", version: 1, date: new Date().toISOString(), machine: opts.machine, backend: backend.info,
    profile: opts.profile.name, quick: opts.quick, cases, skipped,
  };
}
