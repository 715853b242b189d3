// launch_train_dp_pp.test.ts: `kiln launch --nproc 4 -- kiln train` with `parallel: { dp: 2, pp: 2 }` on a GPT-2, real
// processes and sockets: a (pp, dp) device mesh, each replica a 2-stage pipeline (cut evenly, alike in both) over its
// half of every batch in 4 micro-batches, each stage's gradient averaged with the other replica's same stage;
// the loss curve equals the single-process `kiln train` of the same config. Processes bounded and killed in
// afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxLossDiff, startParams, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** Data parallel's and the pipeline's reordered f32 sums together (launch_train.test.ts, launch_train_pp.test.ts). Measured (cpu, 4 ranks, 10 steps, 2026-12-07): 2.4e-7. */
const TOL = 2e-6;
const ITERS = 10;

describe("kiln train with parallel dp x pp under kiln launch", () => {
  it("GPT-2, dp 2 x pp 2 on 4 ranks: the single-process loss curve", async () => {
    const noCheckpoint = (c: Record<string, unknown>) => delete c.checkpoint;
    const single = editedRun({ iters: ITERS, every: 100 }, noCheckpoint);
    const mesh = editedRun({ iters: ITERS, every: 100 }, (c) => (noCheckpoint(c), (c.parallel = { dp: 2, pp: 2 })));
    const [one, four] = await Promise.all([trainOnce(single.config, 80_000), trainLaunched(4, mesh.config, 80_000)]);
    expect(one.code, one.stderr).toBe(0);
    expect(four.code, four.stderr).toBe(0);
    expect(four.stderr).toMatch(/parallel dp=2 tp=1 pp=2 ep=1 zero=0 microBatches=4/);
    const ref = lossCurve(one.stdout);
    expect(ref.size).toBe(ITERS);
    const diff = maxLossDiff(ref, lossCurve(four.stdout));
    console.log(`GPT-2 dp 2 x pp 2 vs one process: max |loss difference| over ${ITERS} steps ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(TOL);
    expect(startParams(four.stdout)).toBeLessThan(0.8 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 110_000);
});
