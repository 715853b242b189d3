// launch_train_pp.test.ts: `kiln launch --nproc 2 -- kiln train` with `parallel: { pp: 2 }` on a GPT-2 (tied head:
// both end stages hold the token embedding), real processes and sockets: each rank trains one stage of the single
// run's model over 4 micro-batches per step (the default, 2 x pp) in 1F1B order, the held-out loss goes through
// both stages, and the loss curve and held-out loss equal the single-process `kiln train` of the same config.
// Processes bounded and killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxLossDiff, startParams, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/**
 * The stages sum their 4 micro-batches' gradients on the host where one process takes one mean of the batch,
 * and the loss is the mean of the micro-batches' means: the same terms in another f32 order (dist_pipeline.test.ts
 * bounds 50 library steps by 2e-5). Measured (cpu, pp 2, 10 steps, 2026-12-07): 2.4e-7.
 */
const TOL = 2e-6;
const ITERS = 10;

describe("kiln train with parallel.pp under kiln launch", () => {
  it("GPT-2, pp 2 with 4 micro-batches: the single-process loss curve and held-out loss", async () => {
    const noCheckpoint = (c: Record<string, unknown>) => delete c.checkpoint;
    const single = editedRun({ iters: ITERS, every: 100 }, noCheckpoint);
    const pp = editedRun({ iters: ITERS, every: 100 }, (c) => (noCheckpoint(c), (c.parallel = { pp: 2 })));
    const [one, two] = await Promise.all([trainOnce(single.config, 50_000), trainLaunched(2, pp.config, 50_000)]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stderr).toMatch(/parallel dp=1 tp=1 pp=2 ep=1 zero=0 microBatches=4/);
    const ref = lossCurve(one.stdout);
    expect(ref.size).toBe(ITERS);
    const diff = maxLossDiff(ref, lossCurve(two.stdout));
    console.log(`GPT-2 pp 2 vs one process: max |loss difference| over ${ITERS} steps ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(TOL);
    expect(ref.get(ITERS)!).toBeLessThan(ref.get(1)! - 0.2); // it trained
    // Rank 0 is the first stage: the embedding and some blocks, not the whole model.
    expect(startParams(two.stdout)).toBeLessThan(0.8 * startParams(one.stdout));
    const held = (out: string) => (events(out).find((e) => e.kind === "eval") as { loss: number }).loss;
    expect(Math.abs(held(two.stdout) - held(one.stdout))).toBeLessThan(TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 90_000);
});
