// launch_train_zero_resume.test.ts: a ZeRO-2 `kiln train` on 2 ranks under kiln launch (real processes, sockets and
// files), stopped at step 4 (--max-iters) and resumed (--resume) from its distributed checkpoint (each rank reads
// its part): the two halves together equal the single-process run of the same config. Processes bounded and
// killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import { editedRun, lossCurve, maxLossDiff, trainLaunched, trainOnce } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** As launch_train_zero.test.ts's (which says why): measured 2.4e-7 (cpu, 2 ranks, 8 steps, 2026-12-07). */
const TOL = 2e-6;
const ITERS = 8;

describe("kiln train with parallel.zero: stop and resume", () => {
  it("ZeRO-2 (dp 2) stopped at step 4 resumes from its distributed checkpoint on the single-process curve", async () => {
    const single = editedRun({ iters: ITERS, every: 4 }, () => {});
    const zero = editedRun({ iters: ITERS, every: 4 }, (c) => (c.parallel = { dp: 2, zero: 2 }));
    const [one, first] = await Promise.all([trainOnce(single.config, 50_000), trainLaunched(2, zero.config, 50_000, "--max-iters", "4")]);
    expect(one.code, one.stderr).toBe(0);
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(join(zero.dir, "ck"))).toEqual(["step-000004"]);
    const second = await trainLaunched(2, zero.config, 50_000, "--resume");
    expect(second.code, second.stderr).toBe(0);
    expect(events(second.stdout).find((e) => e.kind === "resume")).toMatchObject({ step: 4 });
    const got = new Map([...lossCurve(first.stdout), ...lossCurve(second.stdout)]);
    expect([...lossCurve(second.stdout).keys()]).toEqual([5, 6, 7, 8]);
    const diff = maxLossDiff(lossCurve(one.stdout), got);
    console.log(`ZeRO-2 dp 2, stopped at 4 and resumed, vs one process: max |loss difference| over ${ITERS} steps ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 120_000);
});
