// tensor_parallel_mesh.test.ts: tensor parallel on 4 ranks, real OS processes on the `local` communicator,
// against the single-process run over 50 steps: a GPT-2 over tp 4, and a Llama (grouped-query attention)
// over dp 2 x tp 2, where the data-parallel gradient hook all-reduces over mesh.dp only and tensor
// parallel's norm over mesh.tp. Tolerance and measurements: tensor_parallel_helpers.ts.

import { afterEach, describe, it } from "vitest";
import { expectEquivalent, killChildren, reference, runRanks } from "./tensor_parallel_helpers.js";

afterEach(killChildren);
const STEPS = 50;

describe("tensor parallel on a 4-rank mesh equals the single-process run (50 AdamW steps with clipping)", () => {
  it("gpt2, tp 4", async () => {
    const ranks = runRanks(4, { TP_ARCH: "gpt2", TP_STEPS: String(STEPS), TP_SIZE: "4" });
    expectEquivalent("gpt2 tp4", await ranks, await reference("gpt2", STEPS));
  }, 120_000);

  it("llama (GQA), dp 2 x tp 2", async () => {
    const ranks = runRanks(4, { TP_ARCH: "llama", TP_STEPS: String(STEPS), TP_SIZE: "2" });
    expectEquivalent("llama dp2 x tp2", await ranks, await reference("llama", STEPS));
  }, 120_000);
});
