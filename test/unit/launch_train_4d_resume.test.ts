// launch_train_4d_resume.test.ts: the 4D run and its checkpoints. `kiln train` with parallel: { dp: 2,
// tp: 2, pp: 2, zero: 1 } (8 real rank processes under kiln launch, on a (pp, dp, tp) device mesh: each pipeline
// stage built from the tensor-parallel model's pieces, the last stage's loss vocab-parallel, 1F1B over 4
// micro-batches of each replica's half batch, each stage-slice's AdamW state sharded over its dp pair, the clipping
// norm summed over dp parts, tp slices (replicated parameters once) and stages (the tied embedding's second copy
// left out)) follows the single-process run's loss curve for 3 steps and stops, writing its checkpoint in the
// single process's form (ZeRO's AdamW parts gathered over dp, the tp slices joined, the stages joined, the tied
// embedding once); it resumes both as a single process (no parallel: section) and as the same 4D layout (each
// rank cutting its stage, its slices and its ZeRO part back out): both continue the straight single-process run's
// curve, and the 4D run's final weights and AdamW state equal the straight run's. (One file for both: each
// 8-process run costs tens of seconds on 2 cores.) Processes bounded and killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxArrayDiff, maxLossDiff, newestCheckpointArrays, resumeBothWays, startParams, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** f32 summation orders only (dp's mean, tp's split matmuls, the stages' and the norm's sums). Measured: docs/distributed.md "## 4D". */
const TOL = 1e-6;
const WEIGHT_TOL = 2e-5;
const ITERS = 6;
const FOUR_D = { dp: 2, tp: 2, pp: 2, zero: 1 };

describe("kiln train 4D: checkpoints in the single process's form", () => {
  it("dp 2 x tp 2 x pp 2 + ZeRO-1 follows one process, stops at step 3, resumes as one process and as 4D on the straight run's curve and weights", async () => {
    const straight = editedRun({ iters: ITERS, every: 3 }, () => {});
    const fourD = editedRun({ iters: ITERS, every: 3 }, (c) => (c.parallel = FOUR_D));
    const [ref, first] = await Promise.all([trainOnce(straight.config, 150_000), trainLaunched(8, fourD.config, 150_000, "--max-iters", "3")]);
    expect(ref.code, ref.stderr).toBe(0);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/parallel dp=2 tp=2 pp=2 ep=1 zero=1 microBatches=4/);
    // A rank holds one stage's tp slices: well under half the model.
    expect(startParams(first.stdout)).toBeLessThan(0.5 * startParams(ref.stdout));
    expect(readdirSync(join(fourD.dir, "ck", "step-000003")).sort()).toEqual(["manifest.json", "model.safetensors", "optimizer.safetensors", "state.json"]);
    const again = editedRun({ iters: ITERS, every: 3 }, (c) => (c.parallel = FOUR_D));
    const [one, eight] = await resumeBothWays(fourD, again, 8, 150_000);
    expect(one.code, one.stderr).toBe(0);
    expect(eight.code, eight.stderr).toBe(0);
    const want = lossCurve(ref.stdout);
    const after3 = new Map([...want].filter(([s]) => s > 3));
    for (const [who, out] of [["one process", one.stdout], ["dp 2 x tp 2 x pp 2 + ZeRO-1", eight.stdout]] as const) {
      expect(events(out).find((e) => e.kind === "resume")).toMatchObject({ step: 3 });
      expect([...lossCurve(out).keys()]).toEqual([4, 5, 6]);
      const diff = maxLossDiff(after3, lossCurve(out));
      console.log(`4D checkpoint (step 3) resumed as ${who}: max |loss difference| to the straight run over steps 4-6 ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(TOL);
    }
    expect(maxLossDiff(new Map([...want].filter(([s]) => s <= 3)), lossCurve(first.stdout))).toBeLessThan(TOL);
    const a = newestCheckpointArrays(join(straight.dir, "ck"));
    const b = newestCheckpointArrays(join(again.dir, "ck"));
    expect([a.step, b.step]).toEqual([ITERS, ITERS]);
    const w = maxArrayDiff(a.arrays, b.arrays);
    console.log(`4D (resumed at step 3) vs one process: final weights and AdamW state (step ${ITERS}) ${w.diff.toExponential(2)} (in ${w.name})`);
    expect(w.diff).toBeLessThan(WEIGHT_TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 400_000);
});
