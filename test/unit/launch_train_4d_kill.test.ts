// launch_train_4d_kill.test.ts: process hygiene of the 4D run. `kiln launch --nproc 8 --grace 1 -- kiln train` with
// parallel: { dp: 2, tp: 2, pp: 2, zero: 1 }; once rank 0 has reported step 2, rank 5 (the second stage of the
// first replica, tp rank 1) is killed with SIGKILL from outside, mid-run, while its tp partner, its pipeline
// neighbours and its ZeRO partner wait on it. The launcher names it, stops the other seven and exits non-zero, and
// no rank process of the job is left. Processes bounded and killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { start, waitDead, waitFor } from "../helpers/launch_procs.js";
import { childRanks, cleanUpLaunches, kilnArgs, lossCurve, rankPids } from "../helpers/launch_train.js";
import { editedRun } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

describe("kiln train 4D: a rank that dies stops the job", () => {
  it("kill -9 of rank 5 of 8 mid-run: the launcher names it, stops the other 7, exits non-zero, no rank left", async () => {
    const run4d = editedRun({ iters: 40, every: 100 }, (c) => (delete c.checkpoint, (c.parallel = { dp: 2, tp: 2, pp: 2, zero: 1 })));
    const run = start(process.execPath, kilnArgs("launch", "--nproc", "8", "--grace", "1", "--", process.execPath, ...kilnArgs("train", "--config", run4d.config, "--json")), 150_000);
    const seen = setInterval(() => childRanks(run.child.pid!).forEach((r) => rankPids.add(r.pid)), 50);
    try {
      await waitFor(() => lossCurve(run.out.stdout).has(2) || run.child.exitCode !== null, 140_000, () => `step 2: ${run.out.stdout}${run.out.stderr}`);
      const ranks = childRanks(run.child.pid!);
      expect(ranks.map((r) => r.rank).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      process.kill(ranks.find((r) => r.rank === 5)!.pid, "SIGKILL");
      const end = await run.ended;
      expect(end.code).not.toBe(0);
      expect(end.stderr).toMatch(/kiln launch: rank 5 was killed by SIGKILL; stopping the other 7 rank\(s\)/);
      // It stopped well before its 40 steps.
      expect(lossCurve(end.stdout).has(40)).toBe(false);
      expect(await waitDead(ranks.map((r) => r.pid))).toEqual([]);
    } finally {
      clearInterval(seen);
    }
  }, 180_000);
});
