// launch_train_zero_mesh.test.ts: ZeRO beside tp and beside pp, the 4D run's two halves on 4 ranks each (real processes
// and sockets under `kiln launch --nproc 4 -- kiln train`, GPT-2):
//   { dp: 2, tp: 2, zero: 1 }: each tp slice's AdamW state sharded over its dp pair, the clipping norm summed over the
//     dp parts and the tp slices (replicated parameters once);
//   { dp: 2, pp: 2, zero: 2 }: each stage's gradient reduce-scattered over its dp pair from the pipeline's gradient
//     source, the norm summed over the dp parts and the stages (the tied embedding's second copy left out).
// The loss curve and the final weights and AdamW state (written in the single process's form: the dp parts, tp
// slices and stages gathered) equal the single-process `kiln train` of the same config. Processes bounded and
// killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, rankPids } from "../helpers/launch_train.js";
import { launchedMatchesSingleWeights, startParams } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** f32 summation orders only (dp's mean, tp's split matmuls, the norm's sums). Measured: see docs/distributed.md "## 4D". */
const TOL = 2e-6;
const WEIGHT_TOL = 2e-5;
const ITERS = 8;

describe("kiln train with ZeRO beside tp or pp under kiln launch", () => {
  it("GPT-2, dp 2 x tp 2 + ZeRO-1 on 4 ranks: the single-process loss curve and final weights", async () => {
    const { one, two } = await launchedMatchesSingleWeights({
      iters: ITERS, every: ITERS, edit: () => {}, parallel: { dp: 2, tp: 2, zero: 1 }, nproc: 4,
      layout: /parallel dp=2 tp=2 pp=1 ep=1 zero=1/, label: "GPT-2 dp 2 x tp 2 + ZeRO-1", tol: TOL, weightTol: WEIGHT_TOL, limitMs: 120_000,
    });
    // A tp rank holds about half the parameters (its slices and the replicated norms and position embedding).
    expect(startParams(two.stdout)).toBeLessThan(0.7 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 150_000);

  it("GPT-2, dp 2 x pp 2 + ZeRO-2 on 4 ranks: the single-process loss curve and final weights", async () => {
    const { one, two } = await launchedMatchesSingleWeights({
      iters: ITERS, every: ITERS, edit: () => {}, parallel: { dp: 2, pp: 2, zero: 2 }, nproc: 4,
      layout: /parallel dp=2 tp=1 pp=2 ep=1 zero=2 microBatches=4/, label: "GPT-2 dp 2 x pp 2 + ZeRO-2", tol: TOL, weightTol: WEIGHT_TOL, limitMs: 120_000,
    });
    expect(startParams(two.stdout)).toBeLessThan(0.8 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 150_000);
});
