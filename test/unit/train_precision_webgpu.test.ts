// Mixed precision on webgpu: a tiny GPT-2 trains two steps in bf16 and fp16 there (f16/bf16 storage,
// f32 math in WGSL) and its losses match the cpu backend's run of the same precision, data and seed.
// Skips, naming why, without an adapter.

import { afterAll, describe, expect, it } from "vitest";
import type { Backend } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import type { Precision } from "../../src/train/precision/mixed_precision.js";
import { Trainer } from "../../src/train/trainer.js";
import { getBackend } from "../../src/index.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import { tryWebgpu } from "./webgpu_compare.js";

const { gpu, missing } = await tryWebgpu();
afterAll(() => gpu?.dispose());
const cpu = await getBackend("cpu");
const TOKENS = Int32Array.from({ length: 500 }, (_, i) => (i * 7 + (i % 3)) % 17);

async function losses(backend: Backend, precision: Precision): Promise<{ losses: number[]; path: string }> {
  const model = new Gpt2({ arch: "gpt2", dim: 16, nLayers: 1, nHeads: 2, vocabSize: 17, maxSeqLen: 8, normEps: 1e-5 }, backend);
  await initParameters(model, { seed: 5 });
  const t = new Trainer(model, new RandomWindows(TOKENS, 2, 8, 3), { schedule: { kind: "constant", lr: 1e-2 }, precision: { precision } });
  const out: number[] = [];
  while (t.step < 2) {
    const s = await t.trainStep();
    if (!s.skipped) out.push(s.loss);
  }
  return { losses: out, path: t.precision.path };
}

describe.skipIf(!gpu)(`mixed precision on webgpu${skipLabel(missing)}`, () => {
  // NOTE: one test for both: most of its time is compiling the step's shaders (SwiftShader), shared by both.
  it("bf16 and fp16 train there, say so, and match cpu's losses of the same precision", async () => {
    for (const p of ["bf16", "fp16"] as const) {
      const [g, c] = [await losses(gpu!, p), await losses(cpu, p)];
      expect(g.path).toMatch(new RegExp(`^${p} \\(emulated: .* storage, f32 math on webgpu`));
      expect(g.losses).toHaveLength(2);
      g.losses.forEach((l, i) => expect(Math.abs(l - c.losses[i]!), `${p} step ${i}`).toBeLessThan(1e-2));
    }
  }, 600_000);
});
