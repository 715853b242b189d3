// dist_hetero.test.ts: data parallel over ranks of unequal speed (issue 11 item 11). Two real rank
// processes (dist_hetero_child.ts) over the `local` communicator, rank 1 made slower on purpose (a sleep
// per row it trains, as a slower device takes longer per row). After steps with equal rows the ranks
// measure their own work per row, agree on rows by speed, and go on with them:
//   - the fast rank gets more rows, both ranks compute the same shares;
//   - training still equals the single-process run of the whole global batch (the gradient is each
//     rank's mean weighted by its rows), with bit-identical replicas;
//   - the step time goes down against the equal rows of the first phase.
// In-process: the shares' arithmetic on known cases and bad input. Children are killed in afterEach.

import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { RankRows, dataParallel } from "../../src/dist/data_parallel.js";
import { medianMs, sharesBySpeed } from "../../src/dist/hetero_shares.js";
import { killRanks, maxAbsDiff as maxDiff, runRanks as runRankScript } from "../helpers/rank_processes.js";
import { RandomWindows } from "../../src/train/batches.js";
import { Trainer } from "../../src/train/trainer.js";
import { TOKENS, tinyRun, trainerOptions } from "./dist_data_parallel_setup.js";

const CHILD = fileURLToPath(new URL("./dist_hetero_child.ts", import.meta.url));
afterEach(killRanks);
const runRanks = (size: number, env: Record<string, string>) => runRankScript<RankOut>(CHILD, size, () => env);

interface Phase { losses: number[]; stepMs: number[] }
interface RankOut { rank: number; msPerRow: number; shares: number[]; equal: Phase; balanced: Phase; params: number[]; sha: string }


/** As dist_data_parallel.test.ts (the same f32 summation-order argument; measured here: see the log line). */
const TOL = { loss: 2e-6, param: 2e-4 };

describe("heterogeneous data parallel: rows by measured speed", () => {
  it("2 ranks, rank 1 slowed by 150 ms per row: more rows to rank 0, same training as one process, shorter steps", async () => {
    const [cal, steps, globalRows] = [6, 6, 8];
    const outs = await runRanks(2, { HET_GLOBAL: String(globalRows), HET_CAL_STEPS: String(cal), HET_STEPS: String(steps), HET_SLOW_RANK: "1", HET_SLOW_MS_PER_ROW: "150" });
    const [r0, r1] = outs as [RankOut, RankOut];
    expect(r1.shares).toEqual(r0.shares);
    const shares = r0.shares;
    expect(shares[0]! + shares[1]!).toBe(globalRows);
    expect(shares[0]!).toBeGreaterThan(shares[1]!);
    expect(r1.sha).toBe(r0.sha);

    // The single-process run of the whole global batch, seed 4 (rank 0's), as many steps.
    const { model } = await tinyRun(await getBackend("cpu"), 4);
    const ref = new Trainer(model, new RandomWindows(TOKENS, globalRows, 8, 7), trainerOptions(1));
    const refLosses: number[] = [];
    for (let i = 0; i < cal + steps; i++) refLosses.push((await ref.trainStep()).loss);
    const refParams = Array.from((await ref.state()).params);
    // The global batch's mean loss: equal rows, the mean of the ranks'; then weighted by each rank's rows.
    const losses = [
      ...r0.equal.losses.map((l, i) => (l + r1.equal.losses[i]!) / 2),
      ...r0.balanced.losses.map((l, i) => (l * shares[0]! + r1.balanced.losses[i]! * shares[1]!) / globalRows),
    ];
    const diffs = { loss: maxDiff(losses, refLosses), param: maxDiff(r0.params, refParams) };
    const time = (p: (o: RankOut) => Phase) => Math.max(...outs.map((o) => medianMs(p(o).stepMs)));
    const [equalMs, balancedMs] = [time((o) => o.equal), time((o) => o.balanced)];
    console.log(`heterogeneous dp: measured ms/row ${outs.map((o) => o.msPerRow.toFixed(1)).join(", ")} -> rows ${shares.join(", ")}; step median ${equalMs.toFixed(0)} ms (equal rows) -> ${balancedMs.toFixed(0)} ms (balanced); max |difference| to one process`, diffs);
    expect(diffs.loss).toBeLessThan(TOL.loss);
    expect(diffs.param).toBeLessThan(TOL.param);
    // Equal rows: the slow rank sleeps 4 x 150 ms each step and the other waits for it; balanced, it sleeps
    // 150 ms per row of its fewer rows. NOTE: a ratio with room for a busy machine's noise.
    expect(balancedMs).toBeLessThan(0.8 * equalMs);
  }, 120_000);
});

describe("the shares' arithmetic (in-process)", () => {
  it("minimises the slowest rank's time, at least one row each, ties to the lower rank", () => {
    // 10 and 30 ms per row over 8 rows: [6, 2] takes max(60, 60) ms; equal rows would take 120.
    expect(sharesBySpeed([10, 30], 8)).toEqual([6, 2]);
    expect(sharesBySpeed([5, 5, 5, 5], 8)).toEqual([2, 2, 2, 2]);
    expect(sharesBySpeed([5, 5, 5], 8)).toEqual([3, 3, 2]);
    // A very slow rank still gets its one row.
    expect(sharesBySpeed([1, 1000], 4)).toEqual([3, 1]);
    expect(sharesBySpeed([2, 1, 4], 7)).toEqual([2, 4, 1]);
    expect(medianMs([900, 10, 30, 20])).toBe(20);
    expect(medianMs([900, 10, 30, 20, 40])).toBe(25);
  });

  it("bad input gets an error naming it", async () => {
    expect(() => sharesBySpeed([10, Number.NaN], 8)).toThrow("rank 1's measured time per row is NaN ms, not a positive number");
    expect(() => sharesBySpeed([10, 10, 10], 2)).toThrow("a global batch of 2 rows cannot give each of 3 ranks a row");
    expect(() => medianMs([5])).toThrow("no step times to measure after skipping 1");
    const global = new RandomWindows(TOKENS, 8, 8, 7);
    expect(() => new RankRows(global, 0, 2, [5, 2])).toThrow("row shares [5, 2] add up to 7 rows over 2 ranks, but the global batch has 8 rows over 2 ranks");
    const comm = { rank: 0, size: 2 } as Parameters<typeof dataParallel>[0];
    expect(() => dataParallel(comm, { rowShares: [8] })).toThrow("rowShares has 1 entries for 2 ranks");
    expect(() => dataParallel(comm, { rowShares: [8, 0] })).toThrow("rowShares[1] (rank 1's rows) is 0, not an integer >= 1");
    // Rank 1 of shares [5, 3] reads rows 5-7 of each global batch.
    const rows = new RankRows(global, 1, 2, [5, 3]);
    const [all, mine] = [await global.batch(0, 0), await rows.batch(0, 0)];
    expect(Array.from(mine.inputs)).toEqual(Array.from(all.inputs.slice(5 * 8)));
  });
});
