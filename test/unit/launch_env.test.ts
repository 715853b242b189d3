// launch_env.test.ts: the rank environment read from torchrun's and Slurm's variables (env.ts,
// slurm_lists.ts): the values each gives, which one wins, and the error for each kind of bad input,
// which must name the variable, its value and what was expected.

import { describe, expect, it } from "vitest";
import { LaunchEnvError, readRankEnv, rankEnvFromSlurm, rankEnvFromTorchrun, torchrunVars } from "../../src/dist/index.js";
import { firstHost, tasksOnFirstNode } from "../../src/dist/launch/slurm_lists.js";

const TORCHRUN = { RANK: "5", LOCAL_RANK: "1", WORLD_SIZE: "8", LOCAL_WORLD_SIZE: "4", GROUP_RANK: "1", MASTER_ADDR: "node01", MASTER_PORT: "29500" };
const SLURM = {
  SLURM_PROCID: "6", SLURM_LOCALID: "2", SLURM_NTASKS: "8", SLURM_NTASKS_PER_NODE: "4", SLURM_NODEID: "1", SLURM_JOB_NODELIST: "gpu[07-08]",
};

function envError(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(LaunchEnvError);
    return (err as Error).message;
  }
  throw new Error("expected a LaunchEnvError, got none");
}

describe("torchrun's variables", () => {
  it("give the rank's place, and torchrunVars writes them back unchanged", () => {
    const r = rankEnvFromTorchrun(TORCHRUN);
    expect(r).toEqual({ rank: 5, localRank: 1, worldSize: 8, localWorldSize: 4, nodeRank: 1, masterAddr: "node01", masterPort: 29500, source: "torchrun" });
    expect(torchrunVars(r)).toEqual(TORCHRUN);
  });

  it("LOCAL_* and GROUP_RANK default to one node holding every rank", () => {
    expect(rankEnvFromTorchrun({ RANK: "2", WORLD_SIZE: "3", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "1234" }))
      .toMatchObject({ rank: 2, localRank: 2, localWorldSize: 3, nodeRank: 0 });
  });

  it("bad values name the variable, the value and what was expected", () => {
    const bad = (patch: Record<string, string | undefined>) => envError(() => rankEnvFromTorchrun({ ...TORCHRUN, ...patch }));
    expect(bad({ RANK: "8" })).toBe("RANK=8 is not below WORLD_SIZE=8 (ranks are 0 .. 7)");
    expect(bad({ RANK: "-1" })).toBe('RANK="-1" is not an integer >= 0');
    expect(bad({ RANK: "1e3" })).toBe('RANK="1e3" is not an integer >= 0');
    expect(bad({ RANK: undefined })).toBe("RANK is not set (expected this process's rank, 0 .. WORLD_SIZE-1)");
    expect(bad({ WORLD_SIZE: "0" })).toBe('WORLD_SIZE="0" is not an integer >= 1');
    expect(bad({ WORLD_SIZE: "" })).toBe("WORLD_SIZE is not set (expected the number of ranks, >= 1)");
    expect(bad({ LOCAL_RANK: "4" })).toBe("LOCAL_RANK=4 is not below LOCAL_WORLD_SIZE=4 (local ranks are 0 .. 3)");
    expect(bad({ LOCAL_WORLD_SIZE: "16" })).toBe("LOCAL_WORLD_SIZE=16 is more than WORLD_SIZE=8 (one node cannot hold more ranks than the job)");
    expect(bad({ MASTER_PORT: "70000" })).toBe('MASTER_PORT="70000" is not a TCP port (1-65535)');
    expect(bad({ MASTER_PORT: "http" })).toBe('MASTER_PORT="http" is not a TCP port (1-65535)');
    expect(bad({ MASTER_ADDR: undefined })).toBe("MASTER_ADDR is not set (expected the host of rank 0's rendezvous store)");
    expect(bad({ MASTER_ADDR: "a b" })).toBe('the master address "a b" is not a host name or address');
  });
});

describe("Slurm's variables", () => {
  it("give the rank's place; the master is the node list's first host on port 29500", () => {
    expect(rankEnvFromSlurm(SLURM)).toEqual({
      rank: 6, localRank: 2, worldSize: 8, localWorldSize: 4, nodeRank: 1, masterAddr: "gpu07", masterPort: 29500, source: "slurm",
    });
  });

  it("SLURM_TASKS_PER_NODE stands in for SLURM_NTASKS_PER_NODE; MASTER_ADDR/MASTER_PORT win when set", () => {
    const env = { ...SLURM, SLURM_NTASKS_PER_NODE: undefined, SLURM_TASKS_PER_NODE: "4(x2)", MASTER_ADDR: "10.0.0.9", MASTER_PORT: "4000" };
    expect(rankEnvFromSlurm(env)).toMatchObject({ localWorldSize: 4, masterAddr: "10.0.0.9", masterPort: 4000 });
  });

  it("bad values name the Slurm variable", () => {
    const bad = (patch: Record<string, string | undefined>) => envError(() => rankEnvFromSlurm({ ...SLURM, ...patch }));
    expect(bad({ SLURM_PROCID: "8" })).toBe("SLURM_PROCID=8 is not below SLURM_NTASKS=8 (ranks are 0 .. 7)");
    expect(bad({ SLURM_LOCALID: "4" })).toBe("SLURM_LOCALID=4 is not below SLURM_NTASKS_PER_NODE=4 (local ranks are 0 .. 3)");
    expect(bad({ SLURM_NTASKS_PER_NODE: undefined, SLURM_TASKS_PER_NODE: "4", SLURM_LOCALID: "5" }))
      .toBe("SLURM_LOCALID=5 is not below SLURM_TASKS_PER_NODE=4 (local ranks are 0 .. 3)");
    expect(bad({ SLURM_NTASKS_PER_NODE: undefined })).toBe("SLURM_TASKS_PER_NODE is not set (expected tasks per node, as in 8 or 8(x2))");
    expect(bad({ SLURM_NODEID: "x" })).toBe('SLURM_NODEID="x" is not an integer >= 0');
    expect(bad({ SLURM_JOB_NODELIST: "gpu[07-08" })).toBe('SLURM_JOB_NODELIST="gpu[07-08" is not a Slurm host list (expected e.g. gpu[01-04,07],login1)');
    expect(bad({ SLURM_JOB_NODELIST: undefined })).toBe("SLURM_JOB_NODELIST is not set (expected the job's hosts, as in gpu[01-04])");
  });

  it("host lists and task counts: the first entry, zero padding kept", () => {
    expect(firstHost("gpu[01-04,07],login1")).toBe("gpu01");
    expect(firstHost("node7")).toBe("node7");
    expect(firstHost("a1,b[2-3]")).toBe("a1");
    expect(firstHost("rack[2-3]-n[05-06]")).toBe("rack2-n05");
    expect(firstHost("gpu[9,3-4]")).toBe("gpu9");
    for (const bad of ["", "gpu[]", "gpu[a-b]", "gpu[[1]]", ",x"]) expect(() => firstHost(bad), bad).toThrow(LaunchEnvError);
    expect(tasksOnFirstNode("8(x2),4")).toBe(8);
    expect(tasksOnFirstNode("3")).toBe(3);
    for (const bad of ["", "0", "x", "(x2)"]) expect(() => tasksOnFirstNode(bad), bad).toThrow(/SLURM_TASKS_PER_NODE=.* is not a Slurm task count list/);
  });
});

describe("readRankEnv", () => {
  it("prefers torchrun's names (a kiln launch under srun), then Slurm's, else undefined", () => {
    expect(readRankEnv({ ...SLURM, ...TORCHRUN })?.source).toBe("torchrun");
    expect(readRankEnv(SLURM)?.source).toBe("slurm");
    expect(readRankEnv({})).toBeUndefined();
  });
});
