// launch_restart.test.ts: kiln launch --max-restarts with real processes. The test: a 4-rank
// `kiln train` (tiny GPT-2, a checkpoint every 4 steps) has rank 2 killed with SIGKILL from outside once
// rank 0 has reported step 6; the launcher stops the other ranks, starts all four again, kiln train resumes
// from the newest good checkpoint by itself, and every step the job reports, before the kill, replayed
// after the resume, and after, equals an uninterrupted 4-rank run's bit for bit (the same data-parallel
// arithmetic on the same state: rank-order f32 sums, a checkpoint holding every f32 exactly). The launcher
// prints the recovery time (failure to the first new step). And: restarts exhausted end the launch with the
// failing rank's code, naming it, with KILN_RESTART_COUNT counting 0, 1, 2. No process outlives a test.

import { afterEach, describe, expect, it } from "vitest";
import { launchCommand } from "../../src/cli/launch_command.js";
import { start, waitDead, waitFor } from "../helpers/launch_procs.js";
import { childRanks, events, kilnArgs, lossCurve, cleanUpLaunches, rankPids, tempDirs, tinyTrainDir } from "../helpers/launch_train.js";

const [dirs, pids] = [tempDirs, rankPids];
afterEach(cleanUpLaunches);

const ITERS = 40;

/** `kiln launch --nproc 4 ... -- kiln train --config C --json`, its ranks' pids collected as they come. */
function launchTrain(config: string, ...flags: string[]) {
  const run = start(process.execPath, kilnArgs("launch", "--nproc", "4", "--grace", "1", ...flags, "--", process.execPath, ...kilnArgs("train", "--config", config, "--json")), 120_000);
  const seen = setInterval(() => childRanks(run.child.pid!).forEach((r) => pids.add(r.pid)), 50);
  void run.ended.finally(() => clearInterval(seen)).catch(() => {});
  return run;
}

describe("kiln launch --max-restarts", () => {
  it("kill -9 of rank 2 in a 4-rank run: restarted, resumed from the checkpoint, the loss curve bit-equal to an uninterrupted run", async () => {
    const ref = tinyTrainDir({ iters: ITERS, every: 4 });
    const hit = tinyTrainDir({ iters: ITERS, every: 4 });
    dirs.push(ref.dir, hit.dir);
    const whole = await launchTrain(ref.config).ended;
    expect(whole.code, whole.stderr).toBe(0);
    const want = lossCurve(whole.stdout);
    expect(want.size).toBe(ITERS);

    const run = launchTrain(hit.config, "--max-restarts", "2");
    await waitFor(() => lossCurve(run.out.stdout).has(6) || run.child.exitCode !== null, 90_000, () => `step 6: ${run.out.stdout}${run.out.stderr}`);
    const victim = childRanks(run.child.pid!).find((r) => r.rank === 2 && r.restart === 0);
    expect(victim, run.out.stderr).toBeDefined();
    process.kill(victim!.pid, "SIGKILL");
    const end = await run.ended;
    expect(end.code, end.stderr).toBe(0);
    expect(end.stderr).toMatch(/kiln launch: rank 2 was killed by SIGKILL; stopping the other 3 rank\(s\)/);
    expect(end.stderr).toMatch(/kiln launch: restarting all 4 rank\(s\) after rank 2 failed \(restart 1 of 2\)/);
    const recovered = /kiln launch: recovered: the first step after restart 1 \(step (\d+)\) came (\d+) ms after rank 2 failed/.exec(end.stderr);
    expect(recovered, end.stderr).not.toBeNull();
    expect(end.stderr).not.toMatch(/restart 2 of 2/);
    // The run did resume (from a checkpoint at a multiple of 4 no later than the kill) and finished.
    const all = events(end.stdout);
    const resumed = all.filter((e) => e.kind === "resume");
    expect(resumed).toHaveLength(1);
    const from = resumed[0]!.step as number;
    // NOTE: the first attempt's last reported step, from the whole output (rank 0 may have run ahead of what
    // had reached the test when it killed rank 2).
    const killedAfter = Math.max(...all.slice(0, all.indexOf(resumed[0]!)).filter((e) => e.kind === "step").map((e) => e.step as number));
    expect(from % 4).toBe(0);
    expect(from).toBeGreaterThanOrEqual(4);
    expect(from).toBeLessThanOrEqual(killedAfter);
    expect(Number(recovered![1])).toBe(from + 1);
    console.log(`kill -9 after step ${killedAfter} (reported), resumed at step ${from}, recovery ${recovered![2]} ms (failure to first new step)`);
    // Every step report, the first attempt's and the replayed ones, equals the uninterrupted run's bit for bit.
    const steps = events(end.stdout).filter((e) => e.kind === "step");
    expect(steps.length).toBeGreaterThan(ITERS); // the steps after the checkpoint ran twice
    for (const e of steps) expect(e.loss, `step ${e.step}`).toBe(want.get(e.step as number));
    expect([...lossCurve(end.stdout).keys()]).toEqual([...want.keys()]);
    // Ranks of both attempts were seen, and none is left.
    expect(pids.size).toBeGreaterThanOrEqual(8);
    expect(await waitDead([...pids])).toEqual([]);
  }, 200_000);

  it("restarts exhausted: the launch ends with the failing rank's code, naming it; KILN_RESTART_COUNT counts the attempts", async () => {
    const script = `console.error("pid=" + process.pid + " restart=" + process.env.KILN_RESTART_COUNT + "/" + process.env.KILN_MAX_RESTARTS + " torch=" + process.env.TORCHELASTIC_RESTART_COUNT);
      if (process.env.RANK === "1") setTimeout(() => process.exit(3), 300); else setInterval(() => {}, 1000);`;
    const { code, stderr } = await start(process.execPath, kilnArgs("launch", "--nproc", "2", "--max-restarts", "2", "--grace", "1", "--", process.execPath, "-e", script), 60_000).ended;
    for (const m of stderr.matchAll(/pid=(\d+)/g)) pids.add(Number(m[1]));
    expect(code, stderr).toBe(3);
    for (const r of [0, 1]) {
      expect([...stderr.matchAll(new RegExp(`\\[rank ${r}\\] pid=\\d+ restart=(\\d)/2 torch=(\\d)`, "g"))].map((m) => [m[1], m[2]])).toEqual([["0", "0"], ["1", "1"], ["2", "2"]]);
    }
    expect(stderr).toMatch(/restarting all 2 rank\(s\) after rank 1 failed \(restart 1 of 2\)/);
    expect(stderr).toMatch(/restarting all 2 rank\(s\) after rank 1 failed \(restart 2 of 2\)/);
    expect(stderr).toMatch(/kiln launch: failed: rank 1 exited with code 3 \(restarts exhausted: 2 of 2 made\); exit code 3/);
    expect(pids.size).toBe(6);
    expect(await waitDead([...pids])).toEqual([]);
  }, 60_000);

  it("bad --max-restarts and --heartbeat-timeout values are usage errors naming them", async () => {
    const bad = (...flags: string[]) => launchCommand.run([...flags, "--nproc", "1", "--", "true"]);
    await expect(bad("--max-restarts", "1.5")).rejects.toThrow('launch: --max-restarts "1.5" is not an integer >= 0');
    await expect(bad("--heartbeat-timeout", "soon")).rejects.toThrow('launch: --heartbeat-timeout "soon" is not a number of seconds > 0');
    await expect(bad("--max-restarts", "1", "--nnodes", "2", "--master", "127.0.0.1:29999")).rejects.toThrow("--max-restarts needs --nnodes 1 for now (got --nnodes 2)");
    await expect(bad("--emit", "k8s", "--max-restarts", "1")).rejects.toThrow("--max-restarts is for running here, not with --emit");
  });
});
