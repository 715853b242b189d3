// nccl_launch.test.ts: `kiln launch --nproc 2 -- kiln train --comm nccl` on a machine where NCCL cannot run
// (no GPU here: no CUDA driver, no libnccl.so.2; or the addon not built). Real processes: the launcher, two
// training ranks, the TCP store rank 0 hosts. Every rank fails with one sentence naming both ranks and the
// missing pieces (the store tells each rank the others' answers), the launcher exits non-zero naming a rank,
// and no rank is left; in-process, createCommunicator("nccl") rejects with that sentence and frees the store's
// port. Processes are bounded (launch_procs.ts start) and killed in afterEach, temp dirs removed.

import { existsSync } from "node:fs";
import { createCommunicator, freePort } from "../../src/dist/index.js";
import { TCPStore } from "../../src/dist/store.js";
import { afterEach, describe, expect, it } from "vitest";
import { start, waitDead } from "../helpers/launch_procs.js";
import { childRanks, cleanUpLaunches, kilnArgs, rankPids, tempDirs, tinyTrainDir } from "../helpers/launch_train.js";
import { skipLabel } from "../helpers/skip_reasons.js";

afterEach(cleanUpLaunches);
// NOTE: with a GPU and NCCL this run would train instead: bench/gpu/nccl_check.ts checks that side.
const gpu = existsSync("/dev/nvidia0") ? "an NVIDIA GPU is present (/dev/nvidia0): NCCL may run here; bench/gpu/nccl_check.ts checks that" : undefined;

describe("kiln train --comm nccl without a GPU", () => {
  it.skipIf(!!gpu)(`fails on every rank naming the ranks and what is missing, and the launcher stops cleanly${skipLabel(gpu)}`, async () => {
    const { dir, config } = tinyTrainDir({ iters: 5, every: 1000 });
    tempDirs.push(dir);
    const run = start(process.execPath, kilnArgs("launch", "--nproc", "2", "--grace", "1", "--", process.execPath, ...kilnArgs("train", "--config", config, "--comm", "nccl")), 100_000);
    const seen = setInterval(() => childRanks(run.child.pid!).forEach((r) => rankPids.add(r.pid)), 100);
    const end = await run.ended.finally(() => clearInterval(seen));
    expect(end.code, end.stderr).not.toBe(0);
    // What this machine lacks: the addon (not built), or the driver; libnccl.so.2 in either case.
    const missing = "nccl: cannot run on this machine: (the native addon is not built .*|no CUDA driver \\(libcuda\\.so\\.1 not found: .*)no libnccl\\.so\\.2 found in \\[[^\\]]*\\]";
    // NOTE: the first rank to fail ends the job (the launcher stops the other), so one rank's line is certain:
    // the one the launcher names, which knows both ranks' answers.
    const failed = /kiln launch: failed: rank ([01]) exited with code 1/.exec(end.stderr);
    expect(failed, end.stderr).not.toBeNull();
    const rank = failed![1];
    expect(end.stderr).toMatch(new RegExp(`\\[rank ${rank}\\] kiln: Error: nccl communicator \\(rank ${rank} of 2\\): 2 of 2 ranks cannot use NCCL; ranks 0, 1: ${missing}`));
    expect(end.stdout).not.toMatch(/"kind":"step"|^\[rank 0\] step 1/m);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 120_000);

  it.skipIf(!!gpu)(`createCommunicator("nccl") rejects with that sentence and releases the store's port${skipLabel(gpu)}`, async () => {
    const port = await freePort("127.0.0.1");
    const opts = { rank: 0, size: 1, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: 5000 };
    await expect(createCommunicator({ backend: "nccl", ...opts })).rejects.toThrow(/^nccl communicator \(rank 0 of 1\): 1 of 1 ranks cannot use NCCL; rank 0: nccl: cannot run on this machine: .*no libnccl\.so\.2 found in \[/);
    // The store rank 0 hosted is closed: its port can be listened on again at once.
    const again = await TCPStore.create({ rank: 0, size: 1, host: "127.0.0.1", port, timeoutMs: 2000 });
    await again.close();
  }, 30_000);

  it("refuses an unknown --comm before any rank joins", async () => {
    const { dir, config } = tinyTrainDir({ iters: 5, every: 1000 });
    tempDirs.push(dir);
    const end = await start(process.execPath, kilnArgs("train", "--config", config, "--comm", "gloo"), 60_000).ended;
    expect(end.code).toBe(2);
    expect(end.stderr).toMatch("train: --comm (or KILN_COMM) must be one of local, nccl, got 'gloo'");
  }, 70_000);
});
