// dist_comm.test.ts: the `local` communicator and the TCP store with real parts: each rank is a real OS
// process (dist_comm_child.ts under node --import tsx) talking over real TCP sockets. Expected results are
// computed here from the ranks' known inputs (dist_comm_inputs.ts): sums in rank order in f32, which the
// communicator promises bit for bit. Also: a rank that never joins a collective is named in the others'
// timeout error, a store get times out naming key and rank, a port in use is reported. Every child is
// killed and every socket closed in afterEach, also when a test fails.

import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createCommunicator, torchrunEnv } from "../../src/dist/create_communicator.js";
import { TCPStore } from "../../src/dist/store.js";
import { rankInput } from "./dist_comm_inputs.js";
import { freePort } from "../../src/dist/index.js";

const CHILD = fileURLToPath(new URL("./dist_comm_child.ts", import.meta.url));
const children: ChildProcess[] = [];
const closers: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const close of closers.splice(0)) await close();
});

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts one rank; resolves when it exits. Killed in afterEach if it is still running. */
function startRank(rank: number, size: number, port: number, env: Record<string, string>): { proc: ChildProcess; exit: Promise<Exit> } {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD], {
    env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(size), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  let stdout = "";
  let stderr = "";
  proc.stdout!.on("data", (d) => (stdout += d));
  proc.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<Exit>((resolve) => proc.on("close", (code) => resolve({ code, stdout, stderr })));
  return { proc, exit };
}

function lastJson(e: Exit): Record<string, unknown> {
  expect(e.code, e.stderr).toBe(0);
  return JSON.parse(e.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

/** Element-wise f32 sum of every rank's input, taken in rank order: ((x0 + x1) + x2) + ... */
function rankOrderSum(size: number, n: number, salt: number): Float32Array {
  const out = new Float32Array(n);
  for (let r = 0; r < size; r++) {
    const x = rankInput(r, n, salt);
    for (let i = 0; i < n; i++) out[i] = Math.fround(out[i]! + x[i]!);
  }
  return out;
}

/** Rank r's share of n elements over size ranks, written out here independently of the code under test. */
function share(n: number, size: number, r: number): Float32Array | [number, number] {
  const lengths = [...Array(size).keys()].map((k) => Math.floor(n / size) + (k < n % size ? 1 : 0));
  const start = lengths.slice(0, r).reduce((a, b) => a + b, 0);
  return [start, start + lengths[r]!];
}

const sha = (a: Float32Array): string => createHash("sha256").update(new Uint8Array(a.buffer)).digest("hex");
const list = (a: Float32Array): number[] => Array.from(a);

describe("local communicator: ranks as OS processes", () => {
  for (const size of [2, 3, 4]) {
    it(`runs every collective on ${size} ranks, bit-identical to rank-order sums`, async () => {
      const port = await freePort("127.0.0.1");
      const ranks = [...Array(size).keys()].map((r) => startRank(r, size, port, { DIST_MODE: "all", DIST_TIMEOUT_MS: "20000" }));
      const outs = (await Promise.all(ranks.map((r) => r.exit))).map(lastJson);
      const max = new Float32Array(13).fill(-Infinity);
      for (let r = 0; r < size; r++) rankInput(r, 13, 4).forEach((v, i) => (max[i] = Math.max(max[i]!, v)));
      const gather = new Float32Array(5 * size);
      for (let r = 0; r < size; r++) gather.set(rankInput(r, 5, 5), 5 * r);
      for (const [rank, out] of outs.entries()) {
        const prev = (rank + size - 1) % size;
        expect(out.rank).toBe(rank);
        expect(out.sumSmall).toEqual(list(rankOrderSum(size, 11, 1)));
        expect(out.sumBig).toBe(sha(rankOrderSum(size, 100_003, 2)));
        expect(out.sumTiny).toEqual(list(rankOrderSum(size, 2, 3)));
        expect(out.max).toEqual(list(max));
        expect(out.gather).toEqual(list(gather));
        expect(out.scatter).toEqual(list(rankOrderSum(size, 11, 6).subarray(...(share(11, size, rank) as [number, number]))));
        expect(out.scatterTiny).toEqual(list(rankOrderSum(size, 3, 7).subarray(...(share(3, size, rank) as [number, number]))));
        expect(out.broadcast).toEqual(list(rankInput(size - 1, 9, 8)));
        expect(out.recvSmall).toEqual(list(rankInput(prev, 7, 9)));
        expect(out.recvBig).toBe(sha(rankInput(prev, 70_001, 10)));
      }
    }, 60_000);
  }

  it("names the rank that never joins a collective, within the timeout", async () => {
    const port = await freePort("127.0.0.1");
    const env = { DIST_MODE: "hang", DIST_HANG_RANK: "2", DIST_TIMEOUT_MS: "1500" };
    const ranks = [0, 1, 2].map((r) => startRank(r, 3, port, env));
    const outs = (await Promise.all(ranks.slice(0, 2).map((r) => r.exit))).map(lastJson);
    for (const out of outs) {
      expect(out.error).toMatch(/^allReduce \(collective #0\) on rank [01]: timed out after 1500 ms waiting for rank 2 /);
      expect(out.waitedMs).toBeGreaterThanOrEqual(1400);
      expect(out.waitedMs).toBeLessThan(5_000);
    }
    expect(ranks[2]!.proc.exitCode).toBeNull(); // still hanging: killed by afterEach
  }, 30_000);

  it("names a rank that died, at once rather than at the timeout", async () => {
    const port = await freePort("127.0.0.1");
    const env = { DIST_MODE: "hang", DIST_HANG_RANK: "2", DIST_HANG_EXIT: "1", DIST_TIMEOUT_MS: "20000" };
    const ranks = [0, 1, 2].map((r) => startRank(r, 3, port, env));
    const outs = (await Promise.all(ranks.slice(0, 2).map((r) => r.exit))).map(lastJson);
    for (const out of outs) {
      expect(out.error).toMatch(/^allReduce \(collective #0\) on rank [01]: .*rank 2's connection closed \(did it exit or die\?\)/);
      expect(out.waitedMs).toBeLessThan(5_000);
    }
    expect((await ranks[2]!.exit).code).toBe(7);
  }, 30_000);

  it("rendezvous without one rank fails naming the key that rank never set", async () => {
    const port = await freePort("127.0.0.1");
    const comm = createCommunicator({ backend: "local", rank: 2, size: 3, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: 800 });
    // rank 0 hosts the store here in-process, and waits longer than rank 2 so its store outlives rank 2's get;
    // rank 1 never starts.
    const host = createCommunicator({ backend: "local", rank: 0, size: 3, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: 2000 });
    const [a, b] = await Promise.allSettled([comm, host]);
    for (const s of [a, b]) if (s.status === "fulfilled") closers.push(() => s.value.close());
    expect(a.status === "rejected" && String(a.reason.message)).toMatch(/^rank 2: TCP store get of key "local\/port\/1" timed out after \d+ ms \(timeout \d+ ms\)/);
    expect(b.status === "rejected" && String(b.reason.message)).toMatch(/^local communicator rank 0: rank\(s\) 1 did not connect within 2000 ms/);
  }, 10_000);

  it("refuses bad options and bad environment, naming what was wrong", async () => {
    const base = { backend: "local" as const, masterAddr: "127.0.0.1", masterPort: 29500 };
    await expect(createCommunicator({ ...base, rank: 3, size: 3 })).rejects.toThrow("rank must be an integer from 0 to 2 (size 3), got 3");
    await expect(createCommunicator({ ...base, rank: 0, size: 0 })).rejects.toThrow("size (world size) must be an integer >= 1, got 0");
    await expect(createCommunicator({ ...base, rank: 0, size: 1, masterPort: 70000 })).rejects.toThrow("masterPort must be an integer from 1 to 65535, got 70000");
    await expect(createCommunicator({ ...base, backend: "gloo" as "local", rank: 0, size: 1 })).rejects.toThrow('unknown backend "gloo" (known: local, nccl)');
    expect(() => torchrunEnv({ RANK: "0", WORLD_SIZE: "two", MASTER_ADDR: "h", MASTER_PORT: "1" })).toThrow('WORLD_SIZE="two" is not an integer >= 1');
    expect(() => torchrunEnv({ RANK: "0", WORLD_SIZE: "2", MASTER_PORT: "1" })).toThrow("MASTER_ADDR is not set");
    expect(() => torchrunEnv({})).toThrow(/no rank environment: set torchrun's RANK/);
    expect(torchrunEnv({ RANK: "1", WORLD_SIZE: "2", MASTER_ADDR: "h", MASTER_PORT: "29500", LOCAL_RANK: "1" })).toEqual({ rank: 1, size: 2, masterAddr: "h", masterPort: 29500, localRank: 1 });
  });

  it("a world of one rank returns its own data from every collective", async () => {
    const comm = await createCommunicator({ backend: "local", rank: 0, size: 1, masterAddr: "127.0.0.1", masterPort: await freePort("127.0.0.1"), timeoutMs: 2000 });
    closers.push(() => comm.close());
    const x = rankInput(0, 5, 1);
    expect(list(await comm.allReduce(x))).toEqual(list(x));
    expect(list(await comm.allGather(x))).toEqual(list(x));
    expect(list(await comm.reduceScatter(x))).toEqual(list(x));
    expect(list(await comm.broadcast(x, 0))).toEqual(list(x));
    await comm.barrier();
    await expect(comm.send(x, 0)).rejects.toThrow("send on rank 0: dst must be another rank from 0 to 0, got 0");
    await expect(comm.broadcast(x, 1)).rejects.toThrow("root must be a rank from 0 to 0, got 1");
  });
});

describe("TCP store", () => {
  async function stores(size: number, timeoutMs: number): Promise<TCPStore[]> {
    const port = await freePort("127.0.0.1");
    const all = await Promise.all([...Array(size).keys()].map((rank) => TCPStore.create({ rank, size, host: "127.0.0.1", port, timeoutMs })));
    closers.push(...all.slice().reverse().map((s) => () => s.close()));
    return all;
  }

  it("set/get across ranks, get waits for the key, add counts atomically, barrier releases all", async () => {
    const [s0, s1, s2] = await stores(3, 5000);
    const waiting = s2!.get("late");
    await s1!.set("late", "here");
    expect(await waiting).toBe("here");
    const counts = await Promise.all([s0!, s1!, s2!, s0!, s1!].map((s) => s.add("n", 1)));
    expect(counts.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(await s2!.add("n", 0)).toBe(5);
    await Promise.all([s0!.barrier("b"), s1!.barrier("b"), s2!.barrier("b")]);
    await Promise.all([s0!.barrier("b"), s1!.barrier("b"), s2!.barrier("b")]);
  });

  it("get of a key nobody sets times out naming the key, the rank and the wait", async () => {
    const [, s1] = await stores(2, 5000);
    const started = Date.now();
    await expect(s1!.get("never", 300)).rejects.toThrow(/^rank 1: TCP store get of key "never" timed out after \d+ ms \(timeout 300 ms\)/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("a barrier that not every rank reaches says how many arrived", async () => {
    const [s0, s1] = await stores(3, 5000);
    const errs = await Promise.allSettled([s0!.barrier("x", 300), s1!.barrier("x", 300)]);
    for (const e of errs) expect(e.status === "rejected" && e.reason.message).toMatch(/store barrier "x" \(round 0\) timed out after 300 ms: 2 of 3 ranks arrived/);
  });

  it("reports a port in use clearly", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen({ host: "127.0.0.1", port: 0 }, () => r()));
    closers.push(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as net.AddressInfo).port;
    await expect(TCPStore.create({ rank: 0, size: 2, host: "127.0.0.1", port, timeoutMs: 1000 })).rejects.toThrow(
      `rank 0 cannot host the TCP store on 127.0.0.1:${port}: the port is in use (EADDRINUSE)`,
    );
  });

  it("a rank whose store host never comes up gives up after bounded retries, naming the address", async () => {
    const port = await freePort("127.0.0.1");
    const started = Date.now();
    await expect(TCPStore.create({ rank: 1, size: 2, host: "127.0.0.1", port, timeoutMs: 600 })).rejects.toThrow(
      new RegExp(`^rank 1 could not reach the TCP store at 127\\.0\\.0\\.1:${port}: \\d+ tries over \\d+ ms \\(timeout 600 ms\\), last error: .*ECONNREFUSED`),
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
