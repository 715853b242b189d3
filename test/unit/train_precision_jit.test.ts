// Mixed-precision steps captured once with jit and replayed, against the same steps built and realized every
// step (`jit: false`), on cpu: fp16 with dynamic loss scaling (a huge initial scale that overflows the first
// steps, an overflow injected mid-run, growth after a short interval) and fp8 with delayed scaling (with
// gradient accumulation) give bit-identical losses, norms, loss scales, skips, parameters, optimizer state
// and fp8 scales; a replay compiles nothing. A skipped step leaves SGD's momentum untouched too. fp8's
// delayed scaling on its own: each scale is max / (largest amax of the last amaxHistory steps).

import { describe, expect, it } from "vitest";
import type { Backend } from "../../src/core/backend.js";
import { CpuBackend } from "../../src/backends/cpu/backend.js";
import { CountingBackend } from "../helpers/counting_backend.js";
import { autocast, FP8_E4M3, gradients, matmul, realizeAll, tensor } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { initParameters } from "../../src/train/init.js";
import { Fp8DelayedScaling } from "../../src/train/precision/fp8_scaling.js";
import type { PrecisionOptions } from "../../src/train/precision/mixed_precision.js";
import type { TrainerOptions } from "../../src/train/trainer.js";
import { Trainer } from "../../src/train/trainer.js";
import { fromCheckpointState, toCheckpointState } from "../../src/train/trainer_checkpoint.js";
import { rng } from "../conformance/harness.js";
import { Poisonable } from "./train_precision_helpers.js";

const r0 = rng(21);
const TOKENS = Int32Array.from({ length: 600 }, (_, i) => (i * 7 + Math.floor(r0() * 3)) % 17);
const BASE: TrainerOptions = {
  schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 3, decaySteps: 20 },
  adamw: { beta2: 0.99, weightDecay: 0.1 },
  maxGradNorm: 1,
  gradAccumSteps: 2,
};


async function trainer(backend: Backend, precision: PrecisionOptions, jit: boolean, extra: Partial<TrainerOptions> = {}) {
  const model = new Poisonable(new Gpt2({ arch: "gpt2", dim: 16, nLayers: 1, nHeads: 2, vocabSize: 17, maxSeqLen: 8, normEps: 1e-5 }, backend), backend);
  await initParameters(model, { seed: 5 });
  return { model, t: new Trainer(model, new RandomWindows(TOKENS, 4, 8, 3), { ...BASE, ...extra, precision, jit }) };
}

/** `steps` attempted steps (poisoned at the attempts listed), then everything the run holds, as plain arrays. */
async function run(x: { model: Poisonable; t: Trainer }, steps: number, poisonAt: readonly number[] = []) {
  const stats = [];
  for (let i = 0; i < steps; i++) {
    if (poisonAt.includes(i)) await x.model.poison(true);
    const s = await x.t.trainStep();
    if (poisonAt.includes(i)) await x.model.poison(false);
    stats.push([s.step, s.loss, s.gradNorm, s.lr, s.lossScale, s.skipped]);
  }
  const state = await x.t.state();
  const fp8 = x.t.precision.fp8 ? await x.t.precision.fp8.currentScales() : [];
  return { stats, params: Array.from(state.params), optimizer: JSON.stringify(state.optimizer, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)), fp8 };
}

describe("mixed precision: the captured step against the built one (cpu)", () => {
  it("fp16: bit-identical over 12 attempts with overflow skips (initial scale, an injected overflow) and growth", async () => {
    const backend = new CountingBackend();
    const precision: PrecisionOptions = { precision: "fp16", lossScale: { initScale: 2 ** 20, growthInterval: 3 } };
    const [plain, jitted] = [await trainer(backend, precision, false), await trainer(backend, precision, true)];
    const a = await run(plain, 12, [8]);
    const b = await run(jitted, 12, [8]);
    expect(b).toEqual(a);
    const skipped = a.stats.filter((s) => s[5]);
    expect(skipped.length).toBeGreaterThanOrEqual(3); // 2^20 overflows at first, then the injected one
    expect(a.stats[8]![5]).toBe(true);
    const moves = a.stats.slice(1).map((s, i) => Math.sign((s[4] as number) - (a.stats[i]![4] as number)));
    expect(moves).toContain(1); // the scale grew
    expect(moves).toContain(-1); // ... and backed off
    expect(jitted.t.step).toBe(12 - skipped.length); // a skipped step is retried: the counter did not advance
    // A replay (with or without a skip) compiles nothing and launches exactly the captured kernels.
    const replay = async () => {
      const [launches, compiles] = [backend.launches, backend.compiles];
      const s = await jitted.t.trainStep();
      return [s.skipped, backend.launches - launches, backend.compiles - compiles];
    };
    await jitted.model.poison(true);
    expect(await replay()).toEqual([true, jitted.t.stepLaunches, 0]);
    await jitted.model.poison(false);
    expect(await replay()).toEqual([false, jitted.t.stepLaunches, 0]);
    expect(jitted.t.stepLaunches).toBeGreaterThan(20);
  }, 120_000);

  it("fp8: bit-identical over 8 steps with gradient accumulation, scales included; eval too", async () => {
    const backend = new CountingBackend();
    const precision: PrecisionOptions = { precision: "fp8", fp8: { amaxHistory: 3 } };
    const [plain, jitted] = [await trainer(backend, precision, false), await trainer(backend, precision, true)];
    const a = await run(plain, 8);
    const b = await run(jitted, 8);
    expect(b).toEqual(a);
    expect(new Set(a.fp8).size).toBeGreaterThan(10); // every site has its own scale, moved off 1
    expect(a.fp8).not.toContain(1);
    const held = new RandomWindows(TOKENS, 3, 8, 11);
    expect(await jitted.t.evalLoss(held)).toBe(await plain.t.evalLoss(held));
    const compiles = backend.compiles;
    await jitted.t.trainStep();
    expect(backend.compiles).toBe(compiles);
    expect(jitted.t.stepLaunches).toBeGreaterThan(20);
  }, 120_000);

  it("fp16 and fp8: a run resumed from its checkpoint (loss scale, fp8 scales and amax histories) continues bit for bit", async () => {
    const meta = { architecture: "gpt2", config: null, rng: null, loader: null };
    const cases: PrecisionOptions[] = [
      { precision: "fp16", lossScale: { initScale: 2 ** 20, growthInterval: 3 } },
      { precision: "fp8", fp8: { amaxHistory: 3 } },
    ];
    for (const precision of cases) {
      const all = await run(await trainer(new CpuBackend(), precision, true), 10);
      const first = await trainer(new CpuBackend(), precision, true);
      await run(first, 5);
      const saved = fromCheckpointState(toCheckpointState(await first.t.state(), meta), "test");
      expect(saved.precision!.length, precision.precision).toBeGreaterThan(0);
      const second = await trainer(new CpuBackend(), precision, true);
      second.t.loadState(saved);
      const rest = await run(second, 5);
      expect(rest.stats, precision.precision).toEqual(all.stats.slice(5));
      expect(rest.fp8).toEqual(all.fp8);
      // Without the precision's state (an older checkpoint) the fp16 run starts from its initial scale again.
      if (precision.precision === "fp16") {
        const third = await trainer(new CpuBackend(), precision, true);
        third.t.loadState({ ...saved, precision: undefined });
        expect((await run(third, 1)).stats[0]![4]).not.toBe(all.stats[5]![4]);
      }
    }
    const fp32 = await trainer(new CpuBackend(), { precision: "fp32" }, true);
    const state = await fp32.t.state();
    expect(state.precision).toEqual([]);
    expect(() => fp32.t.loadState({ ...state, precision: [Float32Array.of(1, 0, 0)] })).toThrow(/1 precision buffer\(s\).*this run is/);
  }, 120_000);

  it("fp16 with SGD (momentum): a skipped step keeps the parameters and the momentum buffers", async () => {
    const x = await trainer(new CpuBackend(), { precision: "fp16", lossScale: { initScale: 1024 } }, true, { sgd: { momentum: 0.9 }, adamw: undefined });
    await run(x, 2);
    const before = await x.t.state();
    await x.model.poison(true);
    const bad = await x.t.trainStep();
    expect(bad).toMatchObject({ step: 2, skipped: true, lossScale: 1024 });
    const after = await x.t.state();
    expect(after.params).toEqual(before.params);
    expect(after.optimizer).toEqual(before.optimizer);
    expect(x.t.precision.lossScale).toBe(512);
  }, 60_000);
});

describe("fp8 delayed scaling (on its own)", () => {
  it("each site's scale is the format's max over the largest amax of the last amaxHistory steps, known before the step", async () => {
    const cpu = new CpuBackend();
    const fp8 = new Fp8DelayedScaling(cpu, { amaxHistory: 2 });
    const w = tensor(Float32Array.of(0.5, -0.25, 0.125, 1), { backend: cpu, shape: [2, 2] });
    // One "step": a matmul of x (2, 2) by w under the policy, its backward, then the step's updates.
    const step = async (xs: readonly number[]) => {
      const x = tensor(Float32Array.from(xs), { backend: cpu, shape: [2, 2] });
      x.requiresGrad = true;
      fp8.beginForward(true);
      const y = autocast(fp8.policy, () => matmul(x, w));
      const [g] = gradients([y], [x], [y.full(y.shape, 1)]);
      await realizeAll([g!, ...fp8.updates()]);
      return fp8.currentScales();
    };
    // Sites: x (E4M3), w (E4M3), the output gradient (E5M2, all ones here: amax 1).
    const m4 = FP8_E4M3.max;
    expect(await step([1, -2, 0.5, 0])).toEqual([m4 / 2, m4 / 1, 57344]);
    expect(await step([4, 1, 1, 1])).toEqual([m4 / 4, m4, 57344]);
    expect(await step([1, 1, 1, -1])).toEqual([m4 / 4, m4, 57344]); // 4 is still in the history of 2 steps
    expect(await step([0.5, 0, 0, 0])).toEqual([m4 / 1, m4, 57344]); // now it has left
    const zeros = new Fp8DelayedScaling(cpu, { amaxHistory: 1 });
    zeros.beginForward(true);
    const y = autocast(zeros.policy, () => matmul(tensor(new Float32Array(4), { backend: cpu, shape: [2, 2] }), w));
    await realizeAll([y, ...zeros.updates()]);
    expect((await zeros.currentScales())[0]).toBe(1); // a site that saw only zeros keeps its scale
  });
});
