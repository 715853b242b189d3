// dist_graph_collectives.test.ts: collectives as graph nodes (core/collectives.ts, dist/graph_collectives.ts)
// and Megatron's parallel-region pairs (dist/parallel_regions.ts), with real processes on the `local`
// communicator (dist_graph_child.ts). Each rank compares what the graph computed with values it works out
// by plain JS from every rank's known inputs, or with the unsplit single-process computation, and reports
// the largest differences, which must be 0 for the collectives (the local communicator sums in rank order)
// and within f32 rounding, relative to the largest value, for the split linears (their sums run in another order).

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../src/dist/index.js";

const CHILD = fileURLToPath(new URL("./dist_graph_child.ts", import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

async function runRanks(size: number, env: Record<string, string> = {}): Promise<Record<string, unknown>[]> {
  const port = await freePort("127.0.0.1");
  return Promise.all(
    [...Array(size).keys()].map((rank) => {
      const proc = spawn(process.execPath, ["--import", "tsx", CHILD], {
        env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(size), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(proc);
      let stdout = "", stderr = "";
      proc.stdout!.on("data", (d) => (stdout += d));
      proc.stderr!.on("data", (d) => (stderr += d));
      return new Promise<Record<string, unknown>>((resolve, reject) =>
        proc.on("close", (code) => {
          if (code !== 0) reject(new Error(`rank ${rank} exited with ${code}: ${stderr}`));
          else resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>);
        }),
      );
    }),
  );
}

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
