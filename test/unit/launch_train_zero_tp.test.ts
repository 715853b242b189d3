// launch_train_zero_tp.test.ts: `kiln launch --nproc 4 -- kiln train` with `parallel: { dp: 2, tp: 2, zero: 1 }` on a
// GPT-2, real processes and sockets: each tp slice's AdamW state sharded over its dp pair, the clipping norm summed
// over the dp parts and the tp slices (replicated parameters once). The loss curve and the final weights and AdamW
// state (written in the single process's form: the dp parts and tp slices gathered) equal the single-process
// `kiln train` of the same config. Processes bounded and killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, rankPids } from "../helpers/launch_train.js";
import { launchedMatchesSingleWeights, startParams } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** f32 summation orders only (dp's mean, tp's split matmuls, the norm's sums). Measured: see docs/distributed.md "## 4D". */
const TOL = 2e-6;
const WEIGHT_TOL = 2e-5;
const ITERS = 8;

describe("kiln train with parallel dp x tp and ZeRO-1 under kiln launch", () => {
  it("GPT-2, dp 2 x tp 2 + ZeRO-1 on 4 ranks: the single-process loss curve and final weights", async () => {
    const { one, two } = await launchedMatchesSingleWeights({
      iters: ITERS, every: ITERS, edit: () => {}, parallel: { dp: 2, tp: 2, zero: 1 }, nproc: 4,
      layout: /parallel dp=2 tp=2 pp=1 ep=1 zero=1/, label: "GPT-2 dp 2 x tp 2 + ZeRO-1", tol: TOL, weightTol: WEIGHT_TOL, limitMs: 120_000,
    });
    // A tp rank holds about half the parameters (its slices and the replicated norms and position embedding).
    expect(startParams(two.stdout)).toBeLessThan(0.7 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 150_000);
});
