// dist_graph_collectives.test.ts: collectives as graph nodes (core/collectives.ts, dist/graph_collectives.ts)
// and Megatron's parallel-region pairs (dist/parallel_regions.ts), with real processes on the `local`
// communicator (dist_graph_child.ts). Each rank compares what the graph computed with values it works out
// by plain JS from every rank's known inputs, or with the unsplit single-process computation, and reports
// the largest differences, which must be 0 for the collectives (the local communicator sums in rank order)
// and within f32 rounding, relative to the largest value, for the split linears (their sums run in another order).

import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { killRanks, runRanks as runRankScript } from "../helpers/rank_processes.js";

const CHILD = fileURLToPath(new URL("./dist_graph_child.ts", import.meta.url));
afterEach(killRanks);
const runRanks = (size: number, env: Record<string, string> = {}) => runRankScript<Record<string, unknown>>(CHILD, size, () => env);


function checkRank(r: Record<string, unknown>): void {
  for (const k of ["allReduce", "allGather0", "allGatherLast", "reduceScatterAxis1", "allToAll", "broadcast", "max"]) {
    expect(r[k], `${k} on rank ${r.rank}`).toBe(0);
  }
  expect(r.jitReplays, `jit replays on rank ${r.rank}`).toEqual([0, 0, 0]);
  expect(r.jitLaunchesAfter as number).toBeGreaterThan(0);
  for (const k of ["tpValue", "tpGradX", "tpGradW1", "tpGradW2", "gatherValue", "gatherGradX"]) {
    expect(r[k] as number, `${k} on rank ${r.rank}`).toBeLessThan(1e-5);
  }
}

describe("collectives as graph nodes, on real processes", () => {
  it("2 ranks: raw collectives exact, a jit replays them, split linears equal the unsplit ones", async () => {
    const ranks = await runRanks(2);
    ranks.forEach(checkRank);
  }, 60_000);

  it("4 ranks, with two sub-groups running collectives of their own", async () => {
    const ranks = await runRanks(4, { DIST_GROUPS: "1" });
    ranks.forEach(checkRank);
    for (const r of ranks) {
      expect(r.groupRank).toBe((r.rank as number) < 2 ? 0 : 1);
      expect(r.groupSum, `group sum on rank ${r.rank}`).toBe(0);
      expect(r.groupHost, `group allGather on rank ${r.rank}`).toBe(0);
      expect(r.worldAfter, `world allReduce after groups on rank ${r.rank}`).toBe(0);
    }
  }, 90_000);
});
