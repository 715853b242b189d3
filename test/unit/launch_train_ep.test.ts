// launch_train_ep.test.ts: `kiln launch --nproc 2 -- kiln train` with `parallel: { dp: 2, ep: 2 }` on a Mixtral-style
// Llama (model.moe: 4 experts, top 2), real processes and sockets: each rank holds 2 of every layer's 4 experts and
// trains on its rows, tokens go to their experts' rank by all-to-all, and the loss curve (load-balancing loss
// included) equals the single-process `kiln train` of the same config. No capacityFactor: capacity is per rank
// (GShard's), so with one the dropped tokens would differ from one process's (src/dist/expert_parallel.ts).
// Processes bounded and killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxLossDiff, startParams, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/**
 * The gradient is data parallel's mean over the ranks' rows (another f32 order than one mean) and the router's
 * balance statistics are averaged over the ranks: the single run's sums reordered. Measured (cpu, dp 2 x ep 2,
 * 10 steps, 2026-12-07): 0 (the same bits); the bound is data parallel's.
 */
const TOL = 2e-6;
const ITERS = 10;

describe("kiln train with parallel.ep under kiln launch", () => {
  it("a MoE Llama, dp 2 x ep 2: the single-process loss curve, each rank holding half the experts", async () => {
    const moe = (c: Record<string, unknown>) => {
      delete c.checkpoint;
      c.model = { arch: "llama", nLayers: 2, nHeads: 2, dim: 32, blockSize: 16, moe: { numExperts: 4, topK: 2 } };
    };
    const single = editedRun({ iters: ITERS, every: 100 }, moe);
    const ep = editedRun({ iters: ITERS, every: 100 }, (c) => (moe(c), (c.parallel = { dp: 2, ep: 2 })));
    const [one, two] = await Promise.all([trainOnce(single.config, 50_000), trainLaunched(2, ep.config, 50_000)]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stderr).toMatch(/parallel dp=2 tp=1 pp=1 ep=2 zero=0/);
    const ref = lossCurve(one.stdout);
    expect(ref.size).toBe(ITERS);
    const diff = maxLossDiff(ref, lossCurve(two.stdout));
    console.log(`MoE Llama dp 2 x ep 2 vs one process: max |loss difference| over ${ITERS} steps ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(TOL);
    expect(ref.get(ITERS)!).toBeLessThan(ref.get(1)! - 0.2); // it trained
    // Rank 0 holds 2 of 4 experts per layer: fewer parameters than the whole model (the dense ones stay whole).
    expect(startParams(two.stdout)).toBeLessThan(0.75 * startParams(one.stdout));
    // The held-out routing report covers every token (the ranks' all-to-all brought each to its experts).
    const evalOf = (out: string) => events(out).find((e) => e.kind === "eval") as { loss: number; moe: { assignments: number; dropped: number } };
    expect(evalOf(two.stdout).moe).toEqual(evalOf(one.stdout).moe);
    expect(Math.abs(evalOf(two.stdout).loss - evalOf(one.stdout).loss)).toBeLessThan(TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 90_000);
});
