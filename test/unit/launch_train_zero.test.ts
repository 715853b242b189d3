// launch_train_zero.test.ts: `kiln launch --nproc 2 -- kiln train` with `parallel: { dp: 2, zero: 1|2 }`, real
// processes, sockets and checkpoint files: the loss curve equals the single-process `kiln train` of the same
// config; the optimizer state is sharded (rank 0's optimizer bytes are half the single run's); checkpoints are
// distributed ones (one shard file per rank, two-phase commit); one single-process run (beforeAll) is both stages'
// reference. Stopping and resuming: launch_train_zero_resume.test.ts.
// Processes bounded and killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import type { SharedSingle } from "../helpers/launch_parallel_train.js";
import { editedRun, launchedMatchesSingle, sharedSingle, trainLaunched } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/**
 * As data parallel's (launch_train.test.ts): the ranks' gradients are averaged in another f32 order than the
 * single process's mean, and the reported loss is the mean of the ranks' means. Measured (cpu, 2 ranks, 8 steps,
 * 2026-12-07): 2.4e-7 for both stages.
 */
const TOL = 2e-6;
const ITERS = 8;

const optimizerBytes = (stdout: string) => (events(stdout).find((e) => e.kind === "memory")?.memory as { live: { optimizer: number } }).live.optimizer;

describe("kiln train with parallel.zero under kiln launch", () => {
  // One single-process run (the same config) is the reference of both stages.
  let reference: SharedSingle;
  beforeAll(() => {
    reference = sharedSingle({ iters: ITERS, every: 4 }, () => {});
  });

  it("ZeRO-1 (dp 2) gives the single-process curve with half the optimizer state per rank and sharded checkpoints", async () => {
    const { one, two, parallel: zero } = await launchedMatchesSingle({
      iters: ITERS, every: 4, edit: () => {}, parallel: { dp: 2, zero: 1 }, nproc: 2, reference,
      layout: /parallel dp=2 tp=1 pp=1 ep=1 zero=1/, label: "ZeRO-1 dp 2", tol: TOL,
    });
    // Rank 0's optimizer holds its half of AdamW's m and v (27840 parameters split in 2: exactly half).
    expect(optimizerBytes(two.stdout)).toBe(optimizerBytes(one.stdout) / 2);
    expect(events(two.stdout).filter((e) => e.kind === "checkpoint").map((e) => e.step)).toEqual([4, 8]);
    expect(readdirSync(join(zero.dir, "ck", "step-000008")).sort()).toEqual(["manifest.json", "shard-00000-of-00002.safetensors", "shard-00001-of-00002.safetensors", "state.json"]);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 90_000);

  it("ZeRO-3 (dp 2) gives the single-process curve with half the parameters and optimizer state per rank between steps", async () => {
    const { one, two, parallel: zero } = await launchedMatchesSingle({
      iters: ITERS, every: 4, edit: () => {}, parallel: { dp: 2, zero: 3 }, nproc: 2, reference,
      layout: /parallel dp=2 tp=1 pp=1 ep=1 zero=3/, label: "ZeRO-3 dp 2", tol: TOL,
    });
    // Each group of parameters is cut into 2 equal chunks (a group padded by at most one element): about half.
    const [o1, o2] = [optimizerBytes(one.stdout), optimizerBytes(two.stdout)];
    expect(o2).toBeGreaterThanOrEqual(o1 / 2);
    expect(o2).toBeLessThan(o1 / 2 + 1024);
    expect(events(two.stdout).filter((e) => e.kind === "checkpoint").map((e) => e.step)).toEqual([4, 8]);
    expect(readdirSync(join(zero.dir, "ck", "step-000008")).filter((f) => f.startsWith("shard-")).length).toBe(2);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 90_000);

  it("refuses ZeRO-3 with what its trainer does not run yet, naming it, before any rank trains", async () => {
    const bad = editedRun({ iters: ITERS, every: 4 }, (c) => {
      c.parallel = { dp: 2, zero: 3 };
      c.precision = "bf16";
    });
    const r = await trainLaunched(2, bad.config, 40_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not yet: .*parallel\.zero 3 with precision bf16/);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 60_000);
});
