// launch_hung.test.ts: a hung rank in `kiln launch --nproc 2 -- kiln train`, made with SIGSTOP (its sockets
// stay open and nothing exits, so only heartbeats can tell): rank 1, whose counter in the health store stands
// still, and rank 0, whose thread hosts the health store, which then answers nobody. Either way the other
// rank's watcher finds it within seconds (limit 2 s here), aborts its collective naming the rank and how long
// it was silent, the launcher names the hung rank (not the one that noticed) and exits non-zero, and no rank
// is left. Processes are bounded (launch_procs.ts start) and killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { start, waitDead, waitFor } from "../helpers/launch_procs.js";
import { childRanks, kilnArgs, lossCurve, cleanUpLaunches, rankPids, tempDirs, tinyTrainDir } from "../helpers/launch_train.js";

const [dirs, pids] = [tempDirs, rankPids];
afterEach(cleanUpLaunches);

describe("a hung rank (SIGSTOP) under kiln launch", () => {
  for (const [hung, other, detail] of [[1, 0, ""], [0, 1, " \\(its health store answered no heartbeat\\)"]] as const) {
    it(`rank ${hung} is found by rank ${other}'s heartbeat watcher within seconds and named; no rank is left`, async () => {
      const { dir, config } = tinyTrainDir({ iters: 5000, every: 1000 });
      dirs.push(dir);
      const run = start(process.execPath, kilnArgs("launch", "--nproc", "2", "--heartbeat-timeout", "2", "--grace", "1", "--",
        process.execPath, ...kilnArgs("train", "--config", config, "--json")), 120_000);
      const seen = setInterval(() => childRanks(run.child.pid!).forEach((r) => pids.add(r.pid)), 100);
      try {
        await waitFor(() => lossCurve(run.out.stdout).has(3) || run.child.exitCode !== null, 90_000, () => `step 3: ${run.out.stdout}${run.out.stderr}`);
        const victim = childRanks(run.child.pid!).find((r) => r.rank === hung);
        expect(victim, run.out.stderr).toBeDefined();
        const stopped = Date.now();
        process.kill(victim!.pid, "SIGSTOP");
        const end = await run.ended;
        const took = Date.now() - stopped;
        console.log(`SIGSTOP of rank ${hung} -> launcher exit: ${took} ms (heartbeat limit 2 s)`);
        expect(end.code).not.toBe(0);
        expect(end.stderr).toMatch(new RegExp(`kiln launch: rank ${hung} sent no heartbeat for \\d+\\.\\d s \\(hung or dead; reported by rank ${other}\\); stopping the other 1 rank\\(s\\)`));
        expect(end.stderr).toMatch(new RegExp(`\\[rank ${other}\\] kiln: Error: allReduce \\(collective #\\d+\\) on rank ${other}: rank ${hung}${detail} sent no heartbeat for \\d+\\.\\d s \\(limit 2 s\\): it is hung or dead`));
        expect(end.stderr).toMatch(new RegExp(`kiln launch: failed: rank ${hung} sent no heartbeat`));
        // Within seconds, not the 60 s collective timeout: 2 s of silence, then the stop.
        expect(took).toBeLessThan(15_000);
        expect(lossCurve(end.stdout).has(5000)).toBe(false);
      } finally {
        clearInterval(seen);
      }
      expect(await waitDead([...pids])).toEqual([]);
    }, 150_000);
  }
});
