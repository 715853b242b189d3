// launch_train_4d.test.ts: the 4D run. `kiln launch --nproc 8 -- kiln train` with
// `parallel: { dp: 2, tp: 2, pp: 2, zero: 1 }` on a tiny GPT-2 (tied head), real processes and sockets: a
// (pp, dp, tp) device mesh; each pipeline stage built from the tensor-parallel model's pieces (the last stage's
// loss vocab-parallel), 1F1B over 4 micro-batches of each replica's half batch; each stage-slice's AdamW state
// sharded over its dp pair (ZeRO-1); the clipping norm summed over dp parts, tp slices (replicated parameters
// once) and stages (the tied embedding's second copy left out). The loss curve and the final weights and AdamW
// state (gathered over dp, tp and pp into the single process's checkpoint form) equal the single-process
// `kiln train`. Processes bounded and killed in afterEach (the launcher stops every rank if one fails), temp
// dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, rankPids } from "../helpers/launch_train.js";
import { launchedMatchesSingleWeights, startParams } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** f32 summation orders only (dp's mean, tp's split matmuls, the stages' and the norm's sums). Measured: docs/distributed.md "## 4D". */
const TOL = 1e-6;
const WEIGHT_TOL = 2e-5;
const ITERS = 6;

describe("kiln train 4D: dp 2 x tp 2 x pp 2 + ZeRO-1 under kiln launch", () => {
  it("GPT-2 on 8 ranks: the single-process loss curve and final weights", async () => {
    const { one, two } = await launchedMatchesSingleWeights({
      iters: ITERS, every: ITERS, edit: () => {}, parallel: { dp: 2, tp: 2, pp: 2, zero: 1 }, nproc: 8,
      layout: /parallel dp=2 tp=2 pp=2 ep=1 zero=1 microBatches=4/, label: "GPT-2 dp 2 x tp 2 x pp 2 + ZeRO-1", tol: TOL, weightTol: WEIGHT_TOL, limitMs: 150_000,
    });
    // A rank holds one stage's tp slices: well under half the model.
    expect(startParams(two.stdout)).toBeLessThan(0.5 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 180_000);
});
