// launch_train_4d_resume.test.ts: the 4D run's checkpoints. `kiln train` with parallel: { dp: 2, tp: 2, pp: 2, zero: 1 }
// (8 real rank processes under kiln launch) stopped at step 3 writes its checkpoint in the single process's form
// (ZeRO's AdamW parts gathered over dp, the tp slices joined, the stages joined, the tied embedding once); it
// resumes both as a single process (no parallel: section) and as the same 4D layout (each rank cutting its stage,
// its slices and its ZeRO part back out), and both continue the straight single-process run's loss curve.
// Processes bounded and killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxLossDiff, resumeBothWays, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** As launch_train_4d.test.ts's. Measured: docs/distributed.md "## 4D". */
const TOL = 1e-6;
const ITERS = 6;
const FOUR_D = { dp: 2, tp: 2, pp: 2, zero: 1 };

describe("kiln train 4D: checkpoints in the single process's form", () => {
  it("dp 2 x tp 2 x pp 2 + ZeRO-1 stopped at step 3 resumes as one process and as 4D on the straight run's curve", async () => {
    const straight = editedRun({ iters: ITERS, every: 3 }, () => {});
    const fourD = editedRun({ iters: ITERS, every: 3 }, (c) => (c.parallel = FOUR_D));
    const [ref, first] = await Promise.all([trainOnce(straight.config, 150_000), trainLaunched(8, fourD.config, 150_000, "--max-iters", "3")]);
    expect(ref.code, ref.stderr).toBe(0);
    expect(first.code, first.stderr).toBe(0);
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
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 400_000);
});
