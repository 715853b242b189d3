// launch_local.test.ts: `kiln launch` on one host, run as a user runs it (bin/kiln.mjs), with real
// child processes (`node -e` scripts) as ranks: the variables each rank gets, the [rank I] prefixes,
// a failing rank stopping the others (SIGTERM, then SIGKILL after --grace, its own children too), a
// SIGTERM to the launcher passed on, and bad flags. Every rank prints its pid, and each test checks
// that none outlived the launcher; afterEach kills whatever a failed test left.

import { afterEach, describe, expect, it } from "vitest";
import { rankEnvFromTorchrun } from "../../src/dist/index.js";
import { KILN_BIN } from "../helpers/kiln_cli.js";
import { alive, killGroup, killGroups, start, waitDead, waitFor } from "../helpers/launch_procs.js";

const VARS = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"];
/** A rank that prints its variables as JSON, then a last line without a newline. */
const PRINT_ENV = `console.log(JSON.stringify(Object.fromEntries(${JSON.stringify(VARS)}.map((k) => [k, process.env[k]])))); process.stdout.write("last");`;

const seenPids = new Set<number>();

/** `kiln launch ARGS`, bounded to 30 s. */
const kilnLaunch = (...args: string[]) => start(process.execPath, [KILN_BIN, "launch", ...args], 30_000);

/** The pids the ranks printed as "pid=N" lines (any prefix). */
function pidsIn(stdout: string): number[] {
  const pids = [...stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
  for (const p of pids) seenPids.add(p);
  return pids;
}

afterEach(() => {
  killGroups();
  // NOTE: each rank leads a group that may outlive it (a child it started); kill the groups and the pids.
  for (const p of seenPids) {
    killGroup(p);
    if (alive(p)) process.kill(p, "SIGKILL");
  }
  seenPids.clear();
});

describe("kiln launch on one host", () => {
  it("starts --nproc ranks with torchrun's variables and a free master port, output prefixed by rank", async () => {
    const { code, stdout, stderr } = await kilnLaunch("--nproc", "3", "--", process.execPath, "-e", PRINT_ENV).ended;
    expect(code, stderr).toBe(0);
    const port = Number(/master 127\.0\.0\.1:(\d+) \(no --master given: a free port on this host\)/.exec(stderr)?.[1]);
    expect(port).toBeGreaterThan(0);
    for (const rank of [0, 1, 2]) {
      const line = stdout.split("\n").find((l) => l.startsWith(`[rank ${rank}] {`));
      expect(line, stdout).toBeDefined();
      const vars = JSON.parse(line!.slice(`[rank ${rank}] `.length)) as Record<string, string>;
      expect(vars).toEqual({
        RANK: `${rank}`, LOCAL_RANK: `${rank}`, WORLD_SIZE: "3", LOCAL_WORLD_SIZE: "3", GROUP_RANK: "0", MASTER_ADDR: "127.0.0.1", MASTER_PORT: `${port}`,
      });
      // What a rank reads back with env.ts is the same place in the job.
      expect(rankEnvFromTorchrun(vars)).toMatchObject({ rank, localRank: rank, worldSize: 3, nodeRank: 0, masterPort: port, source: "torchrun" });
      // A last line without a newline still gets its prefix.
      expect(stdout).toContain(`[rank ${rank}] last\n`);
    }
    expect(stdout.split("\n").filter((l) => l !== "").every((l) => /^\[rank [0-2]\] /.test(l)), stdout).toBe(true);
  });

  it("--nnodes/--node-rank/--master: this node's ranks are node_rank*nproc + i of the whole job", async () => {
    const { code, stdout, stderr } = await kilnLaunch("--nproc", "2", "--nnodes", "3", "--node-rank", "1", "--master", "10.1.2.3:29999",
      "--", process.execPath, "-e", PRINT_ENV).ended;
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/free port/);
    const vars = stdout.split("\n").filter((l) => l.includes("{")).map((l) => JSON.parse(l.slice(l.indexOf("{"))) as Record<string, string>);
    expect(vars.map((v) => [v.RANK, v.LOCAL_RANK]).sort()).toEqual([["2", "0"], ["3", "1"]]);
    for (const v of vars) expect(v).toMatchObject({ WORLD_SIZE: "6", LOCAL_WORLD_SIZE: "2", GROUP_RANK: "1", MASTER_ADDR: "10.1.2.3", MASTER_PORT: "29999" });
  });

  it("a rank that fails stops the others and the launch exits with its code, naming it", async () => {
    const script = `console.log("pid=" + process.pid); if (process.env.RANK === "1") setTimeout(() => process.exit(7), 500); else setInterval(() => {}, 1000);`;
    const t0 = Date.now();
    const { code, stdout, stderr } = await kilnLaunch("--nproc", "3", "--grace", "3", "--", process.execPath, "-e", script).ended;
    expect(code, stderr).toBe(7);
    expect(stderr).toMatch(/rank 1 exited with code 7; stopping the other 2 rank\(s\) \(SIGTERM, SIGKILL after 3000 ms\)/);
    expect(stderr).toMatch(/failed: rank 1 exited with code 7/);
    // SIGTERM was enough: no wait for the grace period.
    expect(stderr).not.toMatch(/SIGKILL$/m);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const pids = pidsIn(stdout);
    expect(pids).toHaveLength(3);
    expect(await waitDead(pids)).toEqual([]);
  });

  it("a rank that ignores SIGTERM is killed after --grace, and so is what it started", async () => {
    // Rank 0 ignores SIGTERM and starts a child of its own that sleeps; rank 1 fails.
    const script = `
      const { spawn } = require("node:child_process");
      console.log("pid=" + process.pid);
      if (process.env.RANK === "0") {
        process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
        const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
        console.log("grandchild pid=" + c.pid);
        setInterval(() => {}, 1000);
      } else setTimeout(() => process.exit(5), 800);`;
    const { code, stdout, stderr } = await kilnLaunch("--nproc", "2", "--grace", "0.5", "--", process.execPath, "-e", script).ended;
    expect(code, stderr).toBe(5);
    expect(stdout).toContain("[rank 0] ignoring SIGTERM");
    expect(stderr).toMatch(/1 rank\(s\) still running 500 ms after SIGTERM: SIGKILL/);
    const pids = pidsIn(stdout);
    expect(pids).toHaveLength(3);
    expect(await waitDead(pids)).toEqual([]);
  });

  // Ctrl-C in a terminal: SIGINT to the whole foreground process group (kiln.mjs and the command it runs).
  for (const [sig, code, how] of [["SIGTERM", 143, "to kiln launch"], ["SIGINT", 130, "to its process group, as Ctrl-C"]] as const) {
    it(`${sig} ${how} reaches every rank once; it exits 128+n and leaves none behind`, async () => {
      const script = `console.log("pid=" + process.pid); for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => { console.log("got " + s); setTimeout(() => process.exit(0), 200); }); setInterval(() => {}, 1000);`;
      const run = kilnLaunch("--nproc", "2", "--", process.execPath, "-e", script);
      await waitFor(() => pidsIn(run.out.stdout).length === 2, 20_000, () => `two ranks to start: ${run.out.stdout}${run.out.stderr}`);
      process.kill(sig === "SIGINT" ? -run.child.pid! : run.child.pid!, sig);
      const { code: exit, stdout, stderr } = await run.ended;
      expect(exit, stderr).toBe(code);
      expect(stderr).toMatch(new RegExp(`got ${sig}: passing it on to 2 rank\\(s\\)`));
      // Each rank got the signal once, and no other.
      expect(stdout.split("\n").filter((l) => l.includes("got ")).sort()).toEqual([`[rank 0] got ${sig}`, `[rank 1] got ${sig}`]);
      expect(await waitDead(pidsIn(stdout))).toEqual([]);
    });
  }

  it("a command that cannot start fails with 127, naming the rank and the program", async () => {
    const { code, stderr } = await kilnLaunch("--nproc", "2", "--", "/nonexistent/kiln-no-such-program").ended;
    expect(code).toBe(127);
    expect(stderr).toMatch(/rank [01] could not start "\/nonexistent\/kiln-no-such-program": spawn \/nonexistent\/kiln-no-such-program ENOENT/);
  });

  it("bad flags are usage errors (exit 2) that say what was wrong", async () => {
    const cases: [string[], RegExp][] = [
      [["--nproc", "0", "--", "true"], /--nproc "0" is not an integer >= 1/],
      [["--nproc", "two", "--", "true"], /--nproc "two" is not an integer >= 1/],
      [["--", "true"], /missing --nproc N/],
      [["--nproc", "2"], /no command to launch: give it after --/],
      [["--nproc", "2", "--nnodes", "2", "--", "true"], /--nnodes 2 needs --master ADDR:PORT/],
      [["--nproc", "2", "--nnodes", "2", "--node-rank", "2", "--master", "h:1", "--", "true"], /--node-rank 2 is not in 0 \.\. 1 \(--nnodes 2\)/],
      [["--nproc", "2", "--master", "node01", "--", "true"], /--master "node01" is not ADDR:PORT/],
      [["--nproc", "2", "--master", "node01:70000", "--", "true"], /port 70000 is not a TCP port/],
      [["--nproc", "2", "--grace", "soon", "--", "true"], /--grace "soon" is not a number of seconds/],
      [["--nproc", "2", "--image", "x", "--", "true"], /--image is for --emit k8s\|slurm only/],
    ];
    const runs = await Promise.all(cases.map(([args]) => kilnLaunch(...args).ended));
    for (const [i, r] of runs.entries()) {
      expect(r.code, `${cases[i]![0].join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stderr).toMatch(/Usage: kiln launch/);
    }
  });
});
