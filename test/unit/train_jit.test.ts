// The jit-captured training step against the same step built and realized every step (`jit: false`):
// on cpu, N steps with gradient accumulation, clipping and a warmup schedule give bit-identical losses,
// gradient norms, parameters and AdamW moments, and the eval loss is the same; a replay compiles nothing
// and launches exactly the captured kernels; a loadState between steps (new parameter tensors) makes the
// trainer capture again rather than update stale buffers. On every other backend present (webgpu on
// SwiftShader here), the jit and the plain step agree the same way. The config's train.jit turns it off.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Backend } from "../../src/core/backend.js";
import { CountingBackend } from "../helpers/counting_backend.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { initParameters } from "../../src/train/init.js";
import type { TrainerOptions } from "../../src/train/trainer.js";
import { Trainer } from "../../src/train/trainer.js";
import { backendsUnderTest, rng } from "../conformance/harness.js";
import { repoFile } from "../helpers/fixtures.js";
import { noBackend, skipLabel } from "../helpers/skip_reasons.js";

const backends = await backendsUnderTest();
const r0 = rng(3);
const TOKENS = Int32Array.from({ length: 500 }, (_, i) => (i * 5 + Math.floor(r0() * 4)) % 19);
const OPTS: TrainerOptions = {
  schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 2, decaySteps: 8 },
  adamw: { beta2: 0.99, weightDecay: 0.1 },
  gradAccumSteps: 2,
  maxGradNorm: 0.5,
};


async function trainer(backend: Backend, jit: boolean, seed = 4): Promise<Trainer> {
  const model = new Gpt2({ arch: "gpt2", dim: 16, nLayers: 2, nHeads: 2, vocabSize: 19, maxSeqLen: 8, normEps: 1e-5 }, backend);
  await initParameters(model, { seed });
  return new Trainer(model, new RandomWindows(TOKENS, 2, 8, 7), { ...OPTS, jit });
}

/** Every step's numbers, then the parameters and moments as flat arrays. */
async function run(t: Trainer, steps: number) {
  const stats = [];
  for (let i = 0; i < steps; i++) {
    const s = await t.trainStep();
    stats.push([s.step, s.loss, s.gradNorm, s.lr]);
  }
  const state = await t.state();
  return { stats, params: Array.from(state.params), m: Array.from(adamwState(state).m), v: Array.from(adamwState(state).v) };
}

describe("Trainer: the jit-captured step", () => {
  it("cpu: N steps with and without jit give bit-identical losses, norms, parameters and moments", async () => {
    const backend = new CountingBackend();
    const [plain, jitted] = [await trainer(backend, false), await trainer(backend, true)];
    const a = await run(plain, 6);
    const b = await run(jitted, 6);
    expect(b.stats).toEqual(a.stats);
    expect(b.params).toEqual(a.params);
    expect(b.m).toEqual(a.m);
    expect(b.v).toEqual(a.v);
    expect(new Set(a.stats.map((s) => s[1])).size).toBe(6); // the steps did change the model
    const held = new RandomWindows(TOKENS, 3, 8, 11);
    expect(await jitted.evalLoss(held)).toBe(await plain.evalLoss(held));
    expect(await jitted.evalLoss(held, 1)).toBe(await plain.evalLoss(held, 1));

    // A replay compiles nothing and launches exactly the captured kernels.
    const [compiles, launches] = [backend.compiles, backend.launches];
    await jitted.trainStep();
    expect(backend.compiles).toBe(compiles);
    expect(jitted.stepLaunches).toBeGreaterThan(20);
    expect(backend.launches - launches).toBe(jitted.stepLaunches);
    expect(plain.stepLaunches).toBe(0);
  }, 120_000);

  it("cpu: a loadState between steps is picked up (the step is captured again over the new tensors)", async () => {
    const backend = new CountingBackend();
    const [plain, jitted] = [await trainer(backend, false), await trainer(backend, true, 9)];
    await run(plain, 2);
    await run(jitted, 3); // other weights, captured
    jitted.loadState(await plain.state());
    const [a, b] = [await run(plain, 3), await run(jitted, 3)];
    expect(b.stats).toEqual(a.stats);
    expect(b.params).toEqual(a.params);
  }, 120_000);

  for (const b of backends.filter((x) => x.name !== "cpu")) {
    it.skipIf(!b.backend)(`${b.name}: 3 steps with and without jit give the same losses, norms and parameters${skipLabel(noBackend(b.name, b.missing))}`, async () => {
      const [x, y] = [await run(await trainer(b.backend!, false), 3), await run(await trainer(b.backend!, true), 3)];
      expect(y.stats).toEqual(x.stats);
      expect(y.params).toEqual(x.params);
      expect(y.v).toEqual(x.v);
    }, 300_000);
  }

  it("train.jit in the config: true unless set, a boolean or an error naming it", () => {
    const cfg = JSON.parse(readFileSync(repoFile("configs/shakespeare_char.json"), "utf8"));
    expect(parseTrainConfig(cfg, "c.json").train.jit).toBe(true);
    expect(parseTrainConfig({ ...cfg, train: { ...cfg.train, jit: false } }, "c.json").train.jit).toBe(false);
    expect(() => parseTrainConfig({ ...cfg, train: { ...cfg.train, jit: "no" } }, "c.json")).toThrow(/train\.jit/);
  });
});

/** The AdamW state of a trainer's state (these trainers use AdamW). */
function adamwState(s: { optimizer: { kind: string } }): { m: Float32Array; v: Float32Array } {
  if (s.optimizer.kind !== "adamw") throw new Error(`expected AdamW state, got ${s.optimizer.kind}`);
  return s.optimizer as unknown as { m: Float32Array; v: Float32Array };
}
