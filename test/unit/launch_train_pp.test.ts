// launch_train_pp.test.ts: `kiln launch -- kiln train` with pipeline parallelism on a GPT-2 (tied head: both end
// stages hold the token embedding), real processes and sockets: `parallel: { pp: 2 }` on 2 ranks, each training
// one stage of the single run's model over 4 micro-batches per step (the default, 2 x pp) in 1F1B order, the
// held-out loss going through both stages; and `parallel: { dp: 2, pp: 2 }` on 4 ranks, a (pp, dp) device mesh,
// each replica a 2-stage pipeline (cut evenly, alike in both) over its half of every batch, each stage's gradient
// averaged with the other replica's same stage. The loss curves (and pp 2's held-out loss) equal the one
// single-process `kiln train` of the same config (started once, in beforeAll). Checkpoints:
// launch_train_pp_resume.test.ts. Processes bounded and killed in afterEach, temp dirs removed.

import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import type { SharedSingle } from "../helpers/launch_parallel_train.js";
import { launchedMatchesSingle, sharedSingle, startParams } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/**
 * The stages sum their 4 micro-batches' gradients on the host where one process takes one mean of the batch,
 * and the loss is the mean of the micro-batches' means: the same terms in another f32 order (dist_pipeline.test.ts
 * bounds 50 library steps by 2e-5); dp 2 adds data parallel's reordered mean (launch_train.test.ts). Measured
 * (cpu, pp 2 and dp 2 x pp 2, 10 steps, 2026-12-07): 2.4e-7.
 */
const TOL = 2e-6;
const ITERS = 10;
const noCheckpoint = (c: Record<string, unknown>) => delete c.checkpoint;

describe("kiln train with parallel.pp under kiln launch", () => {
  let reference: SharedSingle;
  beforeAll(() => {
    reference = sharedSingle({ iters: ITERS, every: 100 }, noCheckpoint);
  });

  it("GPT-2, pp 2 with 4 micro-batches: the single-process loss curve and held-out loss", async () => {
    const { one, two, ref } = await launchedMatchesSingle({
      iters: ITERS, every: 100, edit: noCheckpoint, parallel: { pp: 2 }, nproc: 2, reference,
      layout: /parallel dp=1 tp=1 pp=2 ep=1 zero=0 microBatches=4/, label: "GPT-2 pp 2", tol: TOL,
    });
    expect(ref.get(ITERS)!).toBeLessThan(ref.get(1)! - 0.2); // it trained
    // Rank 0 is the first stage: the embedding and some blocks, not the whole model.
    expect(startParams(two.stdout)).toBeLessThan(0.8 * startParams(one.stdout));
    const held = (out: string) => (events(out).find((e) => e.kind === "eval") as { loss: number }).loss;
    expect(Math.abs(held(two.stdout) - held(one.stdout))).toBeLessThan(TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 90_000);

  it("GPT-2, dp 2 x pp 2 on 4 ranks: the single-process loss curve", async () => {
    const { one, two: four } = await launchedMatchesSingle({
      iters: ITERS, every: 100, edit: noCheckpoint, parallel: { dp: 2, pp: 2 }, nproc: 4, reference, limitMs: 80_000,
      layout: /parallel dp=2 tp=1 pp=2 ep=1 zero=0 microBatches=4/, label: "GPT-2 dp 2 x pp 2", tol: TOL,
    });
    expect(startParams(four.stdout)).toBeLessThan(0.8 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 110_000);
});
