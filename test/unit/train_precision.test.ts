// Mixed-precision training on cpu (src/train/precision/): the same tiny GPT-2, data and seed trained
// 200 steps in fp32, bf16, fp16 and fp8. bf16 and fp16 track fp32 within the tolerance docs/training.md
// states; fp8 (emulated, delayed scaling) learns. fp16's dynamic loss scaling: an overflow injected into
// one step's backward skips exactly that step (parameters and optimizer untouched, the step retried) and
// halves the scale; the scale grows after its interval of good steps. The config names a bad precision;
// a tracked fp16 run records its path and loss scale.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { getBackend, realizeAll, tensor } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import type { Gpt2Config } from "../../src/models/types.js";
import { RandomWindows } from "../../src/train/batches.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { initParameters } from "../../src/train/init.js";
import { DynamicLossScaler } from "../../src/train/precision/loss_scaler.js";
import type { Precision, PrecisionOptions } from "../../src/train/precision/mixed_precision.js";
import { MixedPrecision } from "../../src/train/precision/mixed_precision.js";
import type { StepStats } from "../../src/train/trainer.js";
import { Trainer } from "../../src/train/trainer.js";
import type { RunEvent } from "../../src/train/run.js";
import { runTrackedTraining, trackingTarget } from "../../src/train/run_tracking.js";
import { RunStore } from "../../src/train/tracking/run_store.js";
import { rng } from "../conformance/harness.js";
import { repoFile } from "../helpers/fixtures.js";
import { sqliteMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";
import { Poisonable } from "./train_precision_helpers.js";

const cpu = await getBackend("cpu");
const CONFIG: Gpt2Config = { arch: "gpt2", dim: 16, nLayers: 1, nHeads: 2, vocabSize: 17, maxSeqLen: 8, normEps: 1e-5 };
const r0 = rng(9);
const TOKENS = Int32Array.from({ length: 1000 }, (_, i) => (i * 7 + Math.floor(r0() * 3)) % 17);
const STEPS = 200;
/** The documented tolerance (docs/training.md, "Mixed precision"): mean |loss - fp32 loss| over the run. */
const MEAN_TOL = 0.005;
/** ... and the largest single-step difference. */
const MAX_TOL = 0.03;

async function trainer(precision: Precision, extra: Omit<PrecisionOptions, "precision"> = {}) {
  const model = new Poisonable(new Gpt2(CONFIG, cpu), cpu);
  await initParameters(model, { seed: 5 });
  const t = new Trainer(model, new RandomWindows(TOKENS, 4, 8, 3), {
    schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 10, decaySteps: STEPS },
    adamw: { beta2: 0.99, weightDecay: 0.1 },
    maxGradNorm: 1,
    precision: { precision, ...extra },
  });
  return { t, model };
}

async function curve(precision: Precision): Promise<StepStats[]> {
  const { t } = await trainer(precision);
  const out: StepStats[] = [];
  while (t.step < STEPS) out.push(await t.trainStep());
  return out;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("mixed precision: loss curves against fp32 (200 steps, same data and seed)", () => {
  const curves = new Map<Precision, Promise<StepStats[]>>();
  const get = (p: Precision) => {
    if (!curves.has(p)) curves.set(p, curve(p));
    return curves.get(p)!;
  };

  for (const p of ["bf16", "fp16"] as const) {
    it(`${p} tracks fp32 (mean |diff| < ${MEAN_TOL}, max < ${MAX_TOL}) and is not fp32 itself`, async () => {
      const [ref, low] = [(await get("fp32")).map((s) => s.loss), (await get(p)).filter((s) => !s.skipped).map((s) => s.loss)];
      expect(low).toHaveLength(STEPS);
      const diff = low.map((l, i) => Math.abs(l - ref[i]!));
      expect(mean(diff)).toBeLessThan(MEAN_TOL);
      expect(Math.max(...diff)).toBeLessThan(MAX_TOL);
      expect(Math.max(...diff)).toBeGreaterThan(0); // rounding happened
      expect(mean(low.slice(-20))).toBeLessThan(0.75 * low[0]!);
    }, 120_000);
  }

  it("fp8 (e4m3/e5m2, delayed scaling) learns: the last 20 steps' loss well under the first", async () => {
    const fp8 = (await get("fp8")).map((s) => s.loss);
    expect(fp8.every(Number.isFinite)).toBe(true);
    expect(mean(fp8.slice(-20))).toBeLessThan(0.75 * fp8[0]!);
    const ref = (await get("fp32")).map((s) => s.loss);
    expect(fp8).not.toEqual(ref);
  }, 120_000);
});

describe("fp16 dynamic loss scaling", () => {
  it("an overflow injected into one backward skips exactly that step and halves the scale", async () => {
    const { t, model } = await trainer("fp16", { lossScale: { initScale: 1024, growthInterval: 1000 } });
    for (let i = 0; i < 3; i++) expect((await t.trainStep()).skipped).toBe(false);
    const before = await t.state();
    await model.poison(true);
    const bad = await t.trainStep();
    await model.poison(false);
    expect(bad).toMatchObject({ step: 3, skipped: true, lossScale: 1024 });
    expect(Number.isFinite(bad.loss)).toBe(true); // the forward was fine
    expect(bad.gradNorm).not.toBeLessThan(Infinity);
    expect(t.step).toBe(3);
    expect(t.precision.lossScale).toBe(512);
    const after = await t.state();
    expect(after.params).toEqual(before.params);
    expect(after.optimizer).toEqual(before.optimizer);
    // The retry: the same step index (and so the same batch), now applied with the halved scale.
    const retry = await t.trainStep();
    expect(retry).toMatchObject({ step: 3, skipped: false, lossScale: 512 });
    expect(t.step).toBe(4);
    expect(retry.loss).toBe(bad.loss);
    expect(t.stepLaunches).toBeGreaterThan(0); // the fp16 step was captured and replayed, skip included
  }, 60_000);

  it("the scale grows after growthInterval good steps in a row", async () => {
    const { t } = await trainer("fp16", { lossScale: { initScale: 256, growthInterval: 3 } });
    const scales: number[] = [];
    for (let i = 0; i < 7; i++) scales.push((await t.trainStep()).lossScale);
    expect(scales).toEqual([256, 256, 256, 512, 512, 512, 1024]);
  }, 60_000);

  it("DynamicLossScaler on the device: backoff, growth, never past f32's max, and its options checked", async () => {
    const s = new DynamicLossScaler(cpu, { initScale: 8, growthInterval: 2 });
    // The step's guard, as fp16's MixedPrecision builds it from the gradient norm: inf and NaN both mean an overflow.
    const fp16 = new MixedPrecision(cpu, { precision: "fp16" });
    const step = async (norm: number) => {
      await realizeAll([s.update(fp16.guard(tensor(Float32Array.of(norm), { backend: cpu }).reshape([]))!)]);
      await s.read();
      return [s.skipped, s.scale, s.goodSteps];
    };
    expect([s.skipped, s.scale, s.goodSteps]).toEqual([false, 8, 0]);
    expect(await step(1)).toEqual([false, 8, 1]);
    expect(await step(Infinity)).toEqual([true, 4, 0]); // an overflow also resets the run of good steps
    expect(await step(2)).toEqual([false, 4, 1]);
    expect(await step(NaN)).toEqual([true, 2, 0]);
    expect(await step(3)).toEqual([false, 2, 1]);
    expect(await step(0)).toEqual([false, 4, 0]); // the 2nd good step in a row: grown, counting again
    const top = new DynamicLossScaler(cpu, { initScale: 2 ** 127, growthInterval: 1 });
    await realizeAll([top.update(tensor(Float32Array.of(1), { backend: cpu }).reshape([]).gt(0))]);
    await top.read();
    expect([top.scale, top.goodSteps]).toEqual([2 ** 127, 0]); // 2^128 is inf in f32: not grown
    expect(() => new DynamicLossScaler(cpu, { initScale: 0 })).toThrow(/initScale must be a positive finite number \(f32\), got 0/);
    expect(() => new DynamicLossScaler(cpu, { initScale: 1e39 })).toThrow(/initScale must be a positive finite number \(f32\), got 1e\+39/);
    expect(() => new DynamicLossScaler(cpu, { growthInterval: 1.5 })).toThrow(/growthInterval must be a positive integer/);
    expect(() => new DynamicLossScaler(cpu, { backoffFactor: 1 })).toThrow(/backoffFactor must be in \(0, 1\)/);
  });
});

describe("precision settings", () => {
  const base = {
    model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 8 },
    data: { path: "x.txt" },
    train: { batchSize: 2, iters: 4 },
    optimizer: { kind: "adamw", lr: 1e-3 },
    schedule: { kind: "constant" },
  };
  it("the config takes fp32 (default), bf16, fp16, fp8 and names the allowed values otherwise", () => {
    expect(parseTrainConfig(base, "c.json").precision).toBe("fp32");
    expect(parseTrainConfig({ ...base, precision: "fp8", precisionOptions: { fp8: { amaxHistory: 4 } } }, "c.json").precision).toBe("fp8");
    expect(() => parseTrainConfig({ ...base, precision: "fp4" }, "c.json")).toThrow(/precision: .*fp32.*bf16.*fp16.*fp8/);
    expect(() => parseTrainConfig({ ...base, precision: "bf16", precisionOptions: { lossScale: { initScale: 2 } } }, "c.json")).toThrow(/precisionOptions.lossScale applies to precision fp16 only/);
  });

  it("each precision says which path it takes on cpu", () => {
    expect(new MixedPrecision(cpu, { precision: "fp32" }).path).toBe("fp32");
    expect(new MixedPrecision(cpu, { precision: "bf16" }).path).toMatch(/^bf16 \(emulated: .*stored as bf16 and rounded, f32 accumulation, on cpu\)$/);
    expect(new MixedPrecision(cpu, { precision: "fp16" }).path).toMatch(/^fp16 \(emulated: .*f16.*dynamic loss scaling\)$/);
    expect(new MixedPrecision(cpu, { precision: "fp8" }).path).toMatch(/^fp8 \(emulated: e4m3 forward \/ e5m2 gradient/);
    expect(() => new MixedPrecision(cpu, { precision: "fp64" as Precision })).toThrow(/precision: 'fp64' is not one of fp32, bf16, fp16, fp8/);
    expect(() => new MixedPrecision(cpu, { precision: "bf16", fp8: { margin: 1 } })).toThrow(/fp8 options apply to fp8 only/);
  });
});

const noSqlite = sqliteMissing();
describe.skipIf(!!noSqlite)(`a tracked fp16 run${skipLabel(noSqlite)}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-precision-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints and records the precision path, and records loss_scale and skipped_steps per step", async () => {
    const json = {
      model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 8 },
      data: { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
      train: { batchSize: 2, iters: 3 },
      optimizer: { kind: "adamw", lr: 1e-3 },
      schedule: { kind: "constant" },
      eval: { interval: 3, batches: 1 },
      precision: "fp16",
      precisionOptions: { lossScale: { initScale: 4096, growthInterval: 2 } },
      tracking: { db: join(dir, "runs.sqlite") },
    };
    const file = join(dir, "fp16.json");
    writeFileSync(file, JSON.stringify(json));
    const cfg = parseTrainConfig(json, file);
    const events: RunEvent[] = [];
    const r = await runTrackedTraining(cfg, { backend: cpu, baseDir: dir, tracking: trackingTarget(cfg, file, dir)!, report: (e) => void events.push(e) });
    const start = events.find((e) => e.kind === "start");
    expect(start).toMatchObject({ precision: expect.stringMatching(/^fp16 \(emulated: .*dynamic loss scaling\)$/) });
    const store = RunStore.open(json.tracking.db);
    try {
      const info = store.runs().find((x) => x.id === r.runId)!;
      expect(info.config).toMatchObject({ precision: "fp16", precisionPath: (start as { precision: string }).precision });
      expect(store.series(info.id, "loss_scale")).toEqual([[1, 4096], [2, 4096], [3, 8192]]);
      expect(store.series(info.id, "skipped_steps")).toEqual([[1, 0], [2, 0], [3, 0]]);
    } finally {
      store.close();
    }
  }, 60_000);
});
