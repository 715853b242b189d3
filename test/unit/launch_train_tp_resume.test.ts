// launch_train_tp_resume.test.ts: a tensor-parallel `kiln train` (Llama, parallel: { tp: 2 }, real processes under
// kiln launch) writes its checkpoints in the single process's form (the ranks' slices gathered, attn_qkv split back
// into attn_q, attn_k, attn_v): stopped at step 5, its checkpoint resumes both as a single process (no parallel:
// section) and as tp 2 again (each rank cutting its slices from it), and both continue the straight single-process
// run's loss curve. Processes bounded and killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxLossDiff, resumeBothWays, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** As launch_train_tp.test.ts's. Measured (cpu, tp 2, 10 steps, 2026-12-07): 0 on both resumes (the same bits). */
const TOL = 2e-6;
const ITERS = 10;

describe("kiln train with parallel.tp: checkpoints in the single process's form", () => {
  it("Llama tp 2 stopped at step 5 resumes as one process and as tp 2 on the straight run's curve", async () => {
    const llama = (c: Record<string, unknown>) => (c.model = { arch: "llama", nLayers: 2, nHeads: 2, dim: 32, blockSize: 16 });
    const straight = editedRun({ iters: ITERS, every: 5 }, llama);
    const tp = editedRun({ iters: ITERS, every: 5 }, (c) => (llama(c), (c.parallel = { tp: 2 })));
    const [ref, first] = await Promise.all([trainOnce(straight.config, 50_000), trainLaunched(2, tp.config, 50_000, "--max-iters", "5")]);
    expect(ref.code, ref.stderr).toBe(0);
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(join(tp.dir, "ck", "step-000005")).sort()).toEqual(["manifest.json", "model.safetensors", "optimizer.safetensors", "state.json"]);
    // The same checkpoint twice: one copy for a single process (the config without its parallel: section), one for tp 2.
    const again = editedRun({ iters: ITERS, every: 5 }, (c) => (llama(c), (c.parallel = { tp: 2 })));
    const [one, two] = await resumeBothWays(tp, again, 2, 50_000);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    const want = lossCurve(ref.stdout);
    const after5 = new Map([...want].filter(([s]) => s > 5));
    for (const [who, out] of [["one process", one.stdout], ["tp 2", two.stdout]] as const) {
      expect(events(out).find((e) => e.kind === "resume")).toMatchObject({ step: 5 });
      expect([...lossCurve(out).keys()]).toEqual([6, 7, 8, 9, 10]);
      const diff = maxLossDiff(after5, lossCurve(out));
      console.log(`tp 2 checkpoint resumed as ${who}: max |loss difference| to the straight run over steps 6-10 ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(TOL);
    }
    expect(maxLossDiff(new Map([...want].filter(([s]) => s <= 5)), lossCurve(first.stdout))).toBeLessThan(TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 120_000);
});
