// dist_expert_parallel.test.ts: expert parallel (src/dist/expert_parallel.ts) on the `local` communicator
// against the single-process MoE run, with real parts: each rank a real OS process
// (dist_expert_parallel_child.ts under node --import tsx), tokens and their gradients exchanged by
// all-to-all graph collectives over real TCP sockets. Two ranks hold two of the four experts each and train
// 50 steps on their rows of the global batch (dist_expert_parallel_check.ts compares); then
//   - both ranks report the same gradient norm every step (the dense gradients all-reduced, the experts'
//     squares summed over the ep group) and hold the same dense parameters bit for bit;
//   - the mean of their losses, the norms, and the parameters (dense ones from a rank, experts from their
//     owners) equal the single-process run's within the check's TOL.
// (ep groups inside a larger data parallel: dist_expert_parallel_mesh.test.ts.)
// Also in-process: bad input (experts that do not divide, a model without experts, a flat gradient of
// another length) gets an error naming it. Every child is killed in afterEach, also when a test fails.

import { afterEach, describe, expect, it } from "vitest";
import { getBackend, tensor } from "../../src/index.js";
import { expertParallelTraining, expertShare } from "../../src/dist/expert_parallel.js";
import { deviceLayout } from "../../src/train/flat_params.js";
import { moeRun } from "./dist_expert_parallel_setup.js";
import { checkAgainstSingleProcess, killRanks } from "./dist_expert_parallel_check.js";

afterEach(killRanks);

describe("expert parallel on the local communicator: equal to the single-process MoE run", () => {
  it("2 ranks x 2 of 4 experts, 50 AdamW steps with clipping", () => checkAgainstSingleProcess(2, 2, 50), 150_000);
});

describe("expert parallel: bad input", () => {
  it("names what does not fit", async () => {
    expect(() => expertShare(6, 0, 4)).toThrow("expert parallel: 6 experts do not divide over 4 ranks (each rank holds as many)");
    const comm = { rank: 0, size: 2 } as Parameters<typeof expertParallelTraining>[0];
    const cpu = await getBackend("cpu");
    const { model } = await moeRun(cpu, 1);
    const layout = deviceLayout(model.parameters(), cpu);
    const dense = layout.slots.filter((s) => !s.name.includes("_exps."));
    expect(() => expertParallelTraining(comm, dense, layout.size)).toThrow("expert parallel on rank 0: the model has no expert parameters (ffn_*_exps)");
    const ep3 = { dp: { rank: 1, size: 4 }, ep: { rank: 0, size: 3 } } as Parameters<typeof expertParallelTraining>[0];
    expect(() => expertParallelTraining(ep3, layout.slots, layout.size)).toThrow(
      "expert parallel on rank 1: the ep group (rank 0 of 3) is not ep consecutive members of the dp group (rank 1 of 4)",
    );
    const { reduceGradient } = expertParallelTraining(comm, layout.slots, layout.size);
    expect(() => reduceGradient(tensor(new Float32Array(3), { backend: cpu }))).toThrow(/expert parallel on rank 0: a flat gradient of Tensor\(3\) f32 on cpu, the layout has \d+/);
  });
});
