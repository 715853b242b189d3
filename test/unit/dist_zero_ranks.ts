// dist_zero_ranks.ts: starting ranks of dist_zero_child.ts as real OS processes for dist_zero.test.ts and
// dist_checkpoint.test.ts, each resolved with its JSON line (or its exit code and stderr), and the cleanup
// that kills every child still running (call killRanks in afterEach, also when a test failed).

import { fileURLToPath } from "node:url";
import * as Shared from "../helpers/rank_processes.js";

const CHILD = fileURLToPath(new URL("./dist_zero_child.ts", import.meta.url));

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

/** How a rank ended (rank_processes.ts). */
export type RankExit = Shared.RankExit<RankOut>;

export { killRanks, maxAbsDiff as maxDiff } from "../helpers/rank_processes.js";

/** Starts `size` ranks with the environment `env(rank)` and resolves with how each one ended. */
export const startRanks = (size: number, env: (rank: number) => Record<string, string>): Promise<RankExit[]> => Shared.startRanks<RankOut>(CHILD, size, env);

/** startRanks where every rank must exit 0 with its JSON line (else it throws with the rank's stderr). */
export const runRanks = (size: number, env: (rank: number) => Record<string, string>): Promise<RankOut[]> => Shared.runRanks<RankOut>(CHILD, size, env);
