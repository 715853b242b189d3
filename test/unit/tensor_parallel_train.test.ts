// tensor_parallel_train.test.ts: tensor-parallel training (src/dist/tensor_parallel_*.ts) on 2 ranks, real
// OS processes on the `local` communicator, against the single-process run (same data, seed, AdamW, clipping)
// over 50 steps: a GPT-2 (tied, vocab-parallel head), the same with sequence parallel, and a Llama with
// grouped-query attention. Every rank ends with the same whole parameters, equal to the single run's
// within TOL (tensor_parallel_helpers.ts, which says why and what was measured).

import { afterEach, describe, it } from "vitest";
import { expectEquivalent, killChildren, reference, runRanks } from "./tensor_parallel_helpers.js";

afterEach(killChildren);
const STEPS = 50;

describe("tensor parallel training equals the single-process run (2 ranks, 50 AdamW steps with clipping)", () => {
  for (const { arch, sp } of [{ arch: "gpt2", sp: false }, { arch: "gpt2", sp: true }, { arch: "llama", sp: false }] as const) {
    it(`${arch}, tp 2${sp ? ", sequence parallel" : ""}`, async () => {
      const ranks = runRanks(2, { TP_ARCH: arch, TP_STEPS: String(STEPS), TP_SP: sp ? "1" : "0" });
      const ref = await reference(arch, STEPS);
      expectEquivalent(`${arch} tp2${sp ? " sp" : ""}`, await ranks, ref);
    }, 90_000);
  }
});
