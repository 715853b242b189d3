// launch_train.test.ts: `kiln launch --nproc 2 -- kiln train` as a user runs it, with real processes, real
// TCP sockets and real checkpoint files: the data-parallel job's loss curve equals the single-process run's
// on the same config (within the f32 summation order's tolerance), only rank 0 prints and writes
// checkpoints (a hung rank: launch_hung.test.ts). Processes are bounded (launch_procs.ts start) and killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { start, waitDead } from "../helpers/launch_procs.js";
import { childRanks, events, kilnArgs, lossCurve, cleanUpLaunches, rankPids, tempDirs, tinyTrainDir } from "../helpers/launch_train.js";

const [dirs, pids] = [tempDirs, rankPids];
afterEach(cleanUpLaunches);

/**
 * The tolerance of dist_data_parallel.test.ts: the ranks' gradient is (mean of rows 0-3 + mean of rows 4-7) / 2
 * where the single process takes one mean of rows 0-7, the same terms summed in another f32 order; the reported
 * loss is likewise the mean of the ranks' means. Measured here (cpu, 2 ranks x 20 steps): 2.4e-7.
 */
const TOL = 2e-6;

describe("kiln train under kiln launch", () => {
  it("2 ranks give the single-process loss curve; rank 0 alone prints and writes checkpoints", async () => {
    const single = tinyTrainDir({ iters: 20, every: 10 });
    const dp = tinyTrainDir({ iters: 20, every: 10 });
    dirs.push(single.dir, dp.dir);
    const one = await start(process.execPath, kilnArgs("train", "--config", single.config, "--json"), 60_000).ended;
    expect(one.code, one.stderr).toBe(0);
    const run = start(process.execPath, kilnArgs("launch", "--nproc", "2", "--", process.execPath, ...kilnArgs("train", "--config", dp.config, "--json")), 90_000);
    const seen = setInterval(() => childRanks(run.child.pid!).forEach((r) => pids.add(r.pid)), 100);
    const two = await run.ended.finally(() => clearInterval(seen));
    expect(two.code, two.stderr).toBe(0);
    const ref = lossCurve(one.stdout);
    const got = lossCurve(two.stdout);
    expect([...got.keys()]).toEqual([...ref.keys()]);
    expect(ref.size).toBe(20);
    const diff = Math.max(...[...ref].map(([s, l]) => Math.abs(l - got.get(s)!)));
    console.log(`kiln launch --nproc 2 vs one process: max |loss difference| over 20 steps ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(TOL);
    expect(ref.get(20)!).toBeLessThan(ref.get(1)! - 0.3); // it trained
    // Rank 1 is quiet; rank 0's events are the single process's kinds, checkpoints included.
    expect(two.stdout.split("\n").filter((l) => l.startsWith("[rank 1]"))).toEqual([]);
    expect(events(two.stdout).filter((e) => e.kind === "checkpoint").map((e) => e.step)).toEqual([10, 20]);
    expect(readdirSync(join(dp.dir, "ck")).sort()).toEqual(["step-000010", "step-000020"]);
    expect(await waitDead([...pids])).toEqual([]);
  }, 150_000);
});
