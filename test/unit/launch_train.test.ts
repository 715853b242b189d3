// launch_train.test.ts: `kiln launch --nproc 2 -- kiln train` as a user runs it, with real processes, real
// TCP sockets and real checkpoint files: the data-parallel job's loss curve equals the single-process run's
// on the same config (within the f32 summation order's tolerance), only rank 0 prints and writes
// checkpoints; and a rank stopped with SIGSTOP (hung: its sockets stay open, nothing exits) is found by the
// heartbeats within seconds, named by the launcher with how long it was silent, and every rank is gone
// afterwards. Processes are bounded (launch_procs.ts start) and killed in afterEach, temp dirs removed.

import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { alive, killGroups, start, waitDead, waitFor } from "../helpers/launch_procs.js";
import { childRanks, events, kilnArgs, lossCurve, tinyTrainDir } from "../helpers/launch_train.js";

const dirs: string[] = [];
const pids = new Set<number>();

afterEach(() => {
  killGroups();
  for (const p of pids) if (alive(p)) process.kill(p, "SIGKILL");
  pids.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

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

  it("a rank stopped with SIGSTOP is found by the heartbeats within seconds and named; no rank is left", async () => {
    const { dir, config } = tinyTrainDir({ iters: 5000, every: 1000 });
    dirs.push(dir);
    const run = start(process.execPath, kilnArgs("launch", "--nproc", "2", "--heartbeat-timeout", "2", "--grace", "1", "--",
      process.execPath, ...kilnArgs("train", "--config", config, "--json")), 120_000);
    const seen = setInterval(() => childRanks(run.child.pid!).forEach((r) => pids.add(r.pid)), 100);
    try {
      await waitFor(() => lossCurve(run.out.stdout).has(3) || run.child.exitCode !== null, 90_000, () => `step 3: ${run.out.stdout}${run.out.stderr}`);
      const rank1 = childRanks(run.child.pid!).find((r) => r.rank === 1);
      expect(rank1, run.out.stderr).toBeDefined();
      const stopped = Date.now();
      process.kill(rank1!.pid, "SIGSTOP");
      const end = await run.ended;
      const took = Date.now() - stopped;
      console.log(`SIGSTOP of rank 1 -> launcher exit: ${took} ms (heartbeat limit 2 s)`);
      expect(end.code).not.toBe(0);
      expect(end.stderr).toMatch(/kiln launch: rank 1 sent no heartbeat for \d+\.\d s \(hung or dead; reported by rank 0\)/);
      expect(end.stderr).toMatch(/\[rank 0\] kiln: Error: allReduce \(collective #\d+\) on rank 0: rank 1 sent no heartbeat for \d+\.\d s \(limit 2 s\): it is hung or dead/);
      expect(end.stderr).toMatch(/kiln launch: failed: rank 1 sent no heartbeat/);
      // Within seconds, not the 60 s collective timeout: 2 s of silence, then the stop.
      expect(took).toBeLessThan(15_000);
      expect(lossCurve(end.stdout).has(5000)).toBe(false);
    } finally {
      clearInterval(seen);
    }
    expect(await waitDead([...pids])).toEqual([]);
  }, 150_000);
});
