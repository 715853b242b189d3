// rank_processes.ts: how the dist tests run one script as N ranks: real OS processes (node --import tsx)
// under torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT a free port), each
// printing its result as its last stdout line of JSON. Every child is remembered, so killRanks() in afterEach
// leaves none behind, also when a test fails.

import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "../../src/dist/index.js";

const running: ChildProcess[] = [];

/** How one rank ended: its exit code, its output, and its last stdout line parsed (undefined when not JSON). */
export interface RankExit<T> {
  readonly rank: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly out: T | undefined;
}

/** Starts `size` ranks of `script` with `env(rank)` added to this process's environment; resolves when all have ended. */
export async function startRanks<T>(script: string, size: number, env: (rank: number) => Record<string, string> = () => ({})): Promise<RankExit<T>[]> {
  const port = await freePort("127.0.0.1");
  return Promise.all(
    [...Array(size).keys()].map((rank) => {
      const proc = spawn(process.execPath, ["--import", "tsx", script], {
        env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(size), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), ...env(rank) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      running.push(proc);
      let [stdout, stderr] = ["", ""];
      proc.stdout!.on("data", (d) => (stdout += d));
      proc.stderr!.on("data", (d) => (stderr += d));
      return new Promise<RankExit<T>>((resolve) =>
        proc.on("close", (code) => {
          let out: T | undefined;
          try {
            out = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as T;
          } catch {
            out = undefined;
          }
          resolve({ rank, code, stdout, stderr, out });
        }),
      );
    }),
  );
}

/** startRanks, each rank's JSON line; a rank that exits non-zero (or prints no JSON) fails with its stderr. */
export async function runRanks<T>(script: string, size: number, env: (rank: number) => Record<string, string> = () => ({})): Promise<T[]> {
  const exits = await startRanks<T>(script, size, env);
  return exits.map((e) => {
    if (e.code !== 0 || e.out === undefined) throw new Error(`rank ${e.rank} exited with ${e.code}${e.out === undefined && e.code === 0 ? " without a JSON line" : ""}: ${e.stderr.slice(-2000)}`);
    return e.out;
  });
}

/** Kills every rank still running (call it in afterEach). */
export function killRanks(): void {
  for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}

/** The largest |a[i] - b[i]| (the arrays must be as long). */
export function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
}
