// launch_train_pp_resume.test.ts: a pipeline-parallel `kiln train` (GPT-2 with its tied head, parallel: { pp: 2 },
// real processes under kiln launch) writes its checkpoints in the single process's form (the stages' parameters and
// AdamW state gathered, the tied embedding once): stopped at step 5, its checkpoint resumes both as a single process
// (no parallel: section) and as pp 2 again (each stage copying its parameters out), and both continue the straight
// single-process run's loss curve. Processes bounded and killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxLossDiff, resumeBothWays, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** As launch_train_pp.test.ts's (which says why). Measured (cpu, pp 2, 10 steps, 2026-12-07): 0 on both resumes over steps 6-10. */
const TOL = 2e-6;
const ITERS = 10;

describe("kiln train with parallel.pp: checkpoints in the single process's form", () => {
  it("GPT-2 pp 2 stopped at step 5 resumes as one process and as pp 2 on the straight run's curve", async () => {
    const straight = editedRun({ iters: ITERS, every: 5 }, () => {});
    const pp = editedRun({ iters: ITERS, every: 5 }, (c) => (c.parallel = { pp: 2 }));
    const [ref, first] = await Promise.all([trainOnce(straight.config, 50_000), trainLaunched(2, pp.config, 50_000, "--max-iters", "5")]);
    expect(ref.code, ref.stderr).toBe(0);
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(join(pp.dir, "ck", "step-000005")).sort()).toEqual(["manifest.json", "model.safetensors", "optimizer.safetensors", "state.json"]);
    // The same checkpoint twice: one copy for a single process (the config without its parallel: section), one for pp 2.
    const again = editedRun({ iters: ITERS, every: 5 }, (c) => (c.parallel = { pp: 2 }));
    const [one, two] = await resumeBothWays(pp, again, 2, 50_000);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    const want = lossCurve(ref.stdout);
    const after5 = new Map([...want].filter(([s]) => s > 5));
    for (const [who, out] of [["one process", one.stdout], ["pp 2", two.stdout]] as const) {
      expect(events(out).find((e) => e.kind === "resume")).toMatchObject({ step: 5 });
      expect([...lossCurve(out).keys()]).toEqual([6, 7, 8, 9, 10]);
      const diff = maxLossDiff(after5, lossCurve(out));
      console.log(`pp 2 checkpoint resumed as ${who}: max |loss difference| to the straight run over steps 6-10 ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(TOL);
    }
    expect(maxLossDiff(new Map([...want].filter(([s]) => s <= 5)), lossCurve(first.stdout))).toBeLessThan(TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 120_000);
});
