// dist_zero_ranks.ts: starting ranks of dist_zero_child.ts as real OS processes for dist_zero.test.ts and
// dist_checkpoint.test.ts, each resolved with its JSON line (or its exit code and stderr), and the cleanup
// that kills every child still running (call killRanks in afterEach, also when a test failed).

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/dist/index.js";

const CHILD = fileURLToPath(new URL("./dist_zero_child.ts", import.meta.url));
const children: ChildProcess[] = [];

export interface RankOut {
  rank: number;
  losses: number[];
  norms: number[];
  params: number[];
  sha: string;
  optimizerElements: number;
  layoutSize: number;
  range?: [number, number];
  memory?: { optimizer: number; parameters: number };
  resumedFrom?: number;
  bytesRead?: number;
  saveErrors?: string[];
  warnings?: string[];
  writtenBy?: number;
  error?: string;
}

export interface RankExit {
  rank: number;
  code: number | null;
  out?: RankOut;
  stderr: string;
}

/** Kills every rank still running (SIGKILL). */
export function killRanks(): void {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}

/** Starts `size` ranks with the environment `env(rank)` and resolves with how each one ended. */
export async function startRanks(size: number, env: (rank: number) => Record<string, string>): Promise<RankExit[]> {
  const port = await freePort("127.0.0.1");
  return Promise.all(
    [...Array(size).keys()].map((rank) => {
      const proc = spawn(process.execPath, ["--import", "tsx", CHILD], {
        env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(size), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), ...env(rank) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(proc);
      let [stdout, stderr] = ["", ""];
      proc.stdout!.on("data", (d) => (stdout += d));
      proc.stderr!.on("data", (d) => (stderr += d));
      return new Promise<RankExit>((resolve) =>
        proc.on("close", (code) => {
          const line = stdout.trim().split("\n").at(-1);
          let out: RankOut | undefined;
          try {
            out = line ? (JSON.parse(line) as RankOut) : undefined;
          } catch {
            out = undefined;
          }
          resolve({ rank, code, out, stderr: stderr.slice(-3000) });
        }),
      );
    }),
  );
}

/** startRanks where every rank must exit 0 with its JSON line (else it throws with the rank's stderr). */
export async function runRanks(size: number, env: (rank: number) => Record<string, string>): Promise<RankOut[]> {
  const exits = await startRanks(size, env);
  for (const e of exits) if (e.code !== 0 || !e.out) throw new Error(`rank ${e.rank} of ${size} exited with ${e.code}: ${e.stderr}`);
  return exits.map((e) => e.out!);
}

export const maxDiff = (a: readonly number[], b: readonly number[]): number => {
  if (a.length !== b.length) throw new Error(`maxDiff: lengths ${a.length} and ${b.length}`);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
};
