// dist_zero3_ranks.ts: starting ranks of dist_zero3_child.ts as real OS processes for dist_zero3.test.ts
// (test/helpers/rank_processes.ts does the work; killRanks in afterEach kills any still running).

import { fileURLToPath } from "node:url";
import * as Shared from "../helpers/rank_processes.js";

const CHILD = fileURLToPath(new URL("./dist_zero3_child.ts", import.meta.url));

type Bytes = { parameters: number; gradients: number; optimizer: number; activations: number; workspace: number };

export interface Zero3Out {
  rank: number;
  losses: number[];
  norms: number[];
  params: number[];
  sha: string;
  optimizerElements: number;
  shardSize: number;
  layoutSize: number;
  largestGroup: number;
  outsideBlocks: number;
  live: Bytes;
  peak: Bytes;
  resumedFrom?: number;
  writtenBy?: number;
}

export { killRanks, maxAbsDiff as maxDiff } from "../helpers/rank_processes.js";

/** Every rank must exit 0 with its JSON line (else it throws with the rank's stderr). */
export const runZero3Ranks = (size: number, env: (rank: number) => Record<string, string>): Promise<Zero3Out[]> => Shared.runRanks<Zero3Out>(CHILD, size, env);
