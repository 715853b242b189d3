// dist_expert_parallel_mesh.test.ts: expert parallel inside a larger data parallel, the device mesh's layout:
// four real rank processes train on one row each of the global batch (dp = 4) with ep groups {0, 1} and
// {2, 3}, each group's ranks holding two of the four experts; ranks 0 and 2 (1 and 3) hold the same experts
// and sum their gradients (the expert-data-parallel all-reduce). 30 steps against the single-process run:
// the same norm on every rank, dense parameters bit-identical everywhere, an expert's bits identical on the
// ranks that hold it, and losses, norms and parameters within dist_expert_parallel_check.ts's TOL.

import { afterEach, describe, it } from "vitest";
import { checkAgainstSingleProcess, killRanks } from "./dist_expert_parallel_check.js";

afterEach(killRanks);

describe("expert parallel inside data parallel (dp 4, ep 2)", () => {
  it("4 ranks, ep groups of 2, 30 AdamW steps with clipping: equal to the single-process run", () => checkAgainstSingleProcess(4, 2, 30), 150_000);
});
