// train_sharded_source.test.ts: the Trainer's sharded update (ZeRO, sharded_step.ts) fed by a gradientSource (a
// pipeline's schedule) with a hostGradientNorm (the norm's shares held by other ranks: tp slices, stages), in one
// process: the sharding is a one-process strategy (its part is the whole buffer, its collectives the identity), so
// the sharded step must give exactly the norm and the update of the unsharded Trainer fed the same gradients, and
// that norm is the square root of the counted slots' squares plus what hostGradientNorm.sum adds, worked out here
// from the gradients the test hands in. A sharding beside a graph gradientNorm is refused by name.

import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import type { Gpt2Config } from "../../src/models/types.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import type { OptimizerSharding } from "../../src/train/sharded_step.js";
import type { GradientSource } from "../../src/train/trainer.js";
import { Trainer } from "../../src/train/trainer.js";

const cpu = await getBackend("cpu");
const CONFIG: Gpt2Config = { arch: "gpt2", dim: 16, nLayers: 2, nHeads: 2, vocabSize: 17, maxSeqLen: 8, normEps: 1e-5 };
const TOKENS = Int32Array.from({ length: 400 }, (_, i) => (i * 7 + (i % 5)) % 17);
const OPTS = { schedule: { kind: "cosine", lr: 3e-3, minLr: 3e-4, warmupSteps: 2, decaySteps: 10 } as const, adamw: { beta2: 0.99, weightDecay: 0.1 }, maxGradNorm: 1, jit: false };
/** The norm's share the other (pretend) ranks add: a known number, so the expected norm is worked out here. */
const OTHERS = 9;
const LEFT_OUT = "position_embd.weight";

/** Each step's gradient of every parameter: fixed values of (step, name, index), about 0.035 rms (the norm is clipped). */
function gradientsFor(step: number, names: readonly [string, number][]): Map<string, Float32Array> {
  return new Map(names.map(([name, n], k) => [name, Float32Array.from({ length: n }, (_, i) => 0.05 * Math.sin(step * 131 + i * 0.37 + k))]));
}

async function trainerWith(sharded: boolean): Promise<{ trainer: Trainer; names: [string, number][] }> {
  const model = new Gpt2(CONFIG, cpu);
  await initParameters(model, { seed: 5 });
  const names = [...model.parameters()].map(([k, t]) => [k, t.numel] as [string, number]);
  const source: GradientSource = async ({ step }) => ({ loss: 2.5 + step, grads: gradientsFor(step, names) });
  const oneProcess: OptimizerSharding = { range: (n) => [0, n], reduceGradient: async (g) => g, sum: async (x) => x, gatherParameters: async (p) => p };
  const hostGradientNorm = { counted: (name: string) => name !== LEFT_OUT, sum: async (x: number) => x + OTHERS };
  const trainer = new Trainer(model, new RandomWindows(TOKENS, 2, 8, 1), { ...OPTS, gradientSource: source, hostGradientNorm, ...(sharded ? { sharding: oneProcess } : {}) });
  return { trainer, names };
}

describe("the sharded update with a gradient source and a host norm", () => {
  it("equals the unsharded trainer's norm and update; the norm counts what hostGradientNorm says", async () => {
    const [plain, sharded] = await Promise.all([trainerWith(false), trainerWith(true)]);
    for (let step = 0; step < 3; step++) {
      const [a, b] = [await plain.trainer.trainStep(), await sharded.trainer.trainStep()];
      let squares = 0;
      for (const [name, g] of gradientsFor(step, sharded.names)) if (name !== LEFT_OUT) for (const x of g) squares += x * x;
      const want = Math.sqrt(squares + OTHERS);
      expect(b.loss).toBe(2.5 + step);
      expect(Math.abs(b.gradNorm - want) / want).toBeLessThan(1e-6);
      expect(Math.abs(a.gradNorm - b.gradNorm) / want).toBeLessThan(1e-6);
    }
    const [pa, pb] = [(await plain.trainer.state()).params, (await sharded.trainer.state()).params];
    let most = 0;
    for (let i = 0; i < pa.length; i++) most = Math.max(most, Math.abs(pa[i]! - pb[i]!));
    expect(most).toBeLessThan(1e-6);
    // The update moved the weights (so equal weights mean equal updates, not none).
    const fresh = await trainerWith(false);
    const p0 = (await fresh.trainer.state()).params;
    expect(pa.some((x, i) => Math.abs(x - p0[i]!) > 1e-4)).toBe(true);
  }, 60_000);

  it("refuses a sharding beside a graph gradientNorm, naming both", async () => {
    const model = new Gpt2(CONFIG, cpu);
    await initParameters(model, { seed: 5 });
    const oneProcess: OptimizerSharding = { range: (n) => [0, n], reduceGradient: async (g) => g, sum: async (x) => x, gatherParameters: async (p) => p };
    expect(() => new Trainer(model, new RandomWindows(TOKENS, 2, 8, 1), { ...OPTS, sharding: oneProcess, gradientNorm: (g) => g.mul(g).sum().sqrt() })).toThrow(
      /Trainer: a sharding computes the gradient norm from its parts: give a hostGradientNorm \(its other shares\), not a gradientNorm/,
    );
  });
});
