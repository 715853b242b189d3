// SGD and the lr schedules on cpu: SGD with momentum (plain, dampened, nesterov, weight decay on
// matrices only) against torch.optim.SGD's algorithm written out by hand for a few steps (the momentum
// buffer starts as the first gradient); its state round-trips through a checkpoint and a resumed
// Trainer continues bit-exactly; the linear and warmup-stable-decay schedules at their boundaries; the
// config names an invalid optimizer or schedule field with what it allows.

import { describe, expect, it } from "vitest";
import { getBackend, realizeAll, tensor } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import { RandomWindows } from "../../src/train/batches.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { initParameters } from "../../src/train/init.js";
import { Sgd } from "../../src/train/optim/sgd.js";
import type { SgdOptions } from "../../src/train/optim/sgd.js";
import { flatBuffer, flatGradient, gatherFlat, slotViews } from "../../src/train/flat_params.js";
import { ParamLayout } from "../../src/train/param_layout.js";
import { checkSchedule, learningRate } from "../../src/train/schedule.js";
import { Trainer } from "../../src/train/trainer.js";
import { fromCheckpointState, toCheckpointState } from "../../src/train/trainer_checkpoint.js";

const cpu = await getBackend("cpu");

/** torch.optim.SGD's step (its documented algorithm) on plain arrays; `decay` says whether weight decay applies. */
function torchSgd(p: number[], buf: number[] | undefined, g: number[], lr: number, o: Required<SgdOptions>, decay: boolean): number[] | undefined {
  const d = g.map((x, i) => x + (decay ? o.weightDecay * p[i]! : 0));
  let step = d;
  if (o.momentum !== 0) {
    buf = buf === undefined ? [...d] : buf.map((b, i) => o.momentum * b + (1 - o.dampening) * d[i]!);
    step = o.nesterov ? d.map((x, i) => x + o.momentum * buf![i]!) : buf;
  }
  p.forEach((_, i) => (p[i] = p[i]! - lr * step[i]!));
  return buf;
}

describe("SGD", () => {
  const cases: [string, Required<SgdOptions>][] = [
    ["momentum", { momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 }],
    ["momentum, dampening and weight decay", { momentum: 0.8, dampening: 0.3, nesterov: false, weightDecay: 0.5 }],
    ["nesterov with weight decay", { momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0.1 }],
    ["plain (no momentum)", { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0.2 }],
  ];
  for (const [name, o] of cases) {
    it(`matches torch.optim.SGD written out by hand for 3 steps: ${name}`, async () => {
      const w = [0.5, -1, 2, 0.25], b = [0.1, -0.2];
      // A different gradient each step, so the buffer's history matters.
      const gw = (t: number) => [0.3 * t, -0.1, 0.02 + t, 1 - t];
      const gb = (t: number) => [-0.5, 0.4 * t];
      const params = new Map([["w", tensor(w, { backend: cpu, shape: [2, 2] })], ["b", tensor(b, { backend: cpu })]]);
      const layout = new ParamLayout(params);
      const opt = new Sgd(layout, cpu, o);
      const flat = flatBuffer(layout, cpu, await gatherFlat(layout, [...params.values()]));
      const [pw, pb] = slotViews(layout, flat) as [ReturnType<typeof tensor>, ReturnType<typeof tensor>];
      const ref = { w: [...w], b: [...b], bw: undefined as number[] | undefined, bb: undefined as number[] | undefined };
      const lrs = [0.1, 0.05, 0.2];
      for (let t = 1; t <= 3; t++) {
        await realizeAll(opt.update(flat, flatGradient(layout, [tensor(gw(t), { backend: cpu, shape: [2, 2] }), tensor(gb(t), { backend: cpu })]), tensor(opt.scalars(lrs[t - 1]!), { backend: cpu })));
        opt.advance();
        ref.bw = torchSgd(ref.w, ref.bw, gw(t), lrs[t - 1]!, o, true);
        ref.bb = torchSgd(ref.b, ref.bb, gb(t), lrs[t - 1]!, o, false);
        Array.from(await pw.data()).forEach((x, i) => expect(x).toBeCloseTo(ref.w[i]!, 5));
        Array.from(await pb.data()).forEach((x, i) => expect(x).toBeCloseTo(ref.b[i]!, 5));
      }
      const state = await opt.state();
      expect(state.step).toBe(3);
      if (o.momentum) Array.from(state.momentum).forEach((x, i) => expect(x).toBeCloseTo([...ref.bw!, ...ref.bb!][i]!, 5));
      else expect(state.momentum.length).toBe(0);
    });
  }

  it("the first step's buffer is the gradient itself, undampened (p1 = p0 - lr g)", async () => {
    const params = new Map([["b", tensor([1, 2], { backend: cpu })]]);
    const layout = new ParamLayout(params);
    const opt = new Sgd(layout, cpu, { momentum: 0.9, dampening: 0.5 });
    const p = flatBuffer(layout, cpu, await gatherFlat(layout, [params.get("b")!]));
    await realizeAll(opt.update(p, tensor([0.5, -1], { backend: cpu }), tensor(opt.scalars(0.1), { backend: cpu })));
    opt.advance();
    expect(Array.from(await p.data())).toEqual([Math.fround(1 - 0.05), Math.fround(2 + 0.1)]);
    expect(Array.from((await opt.state()).momentum)).toEqual([0.5, -1]);
  });

  it("rejects hyperparameters out of range and nesterov without momentum, naming them", () => {
    const layout = new ParamLayout(new Map([["b", tensor([1, 2], { backend: cpu })]]));
    expect(() => new Sgd(layout, cpu, { momentum: 1 })).toThrow(/momentum must be in \[0, 1\), got 1/);
    expect(() => new Sgd(layout, cpu, { weightDecay: -1 })).toThrow(/weightDecay/);
    expect(() => new Sgd(layout, cpu, { nesterov: true })).toThrow(/nesterov needs momentum > 0/);
    expect(() => new Sgd(layout, cpu, { momentum: 0.9, nesterov: true, dampening: 0.1 })).toThrow(/dampening 0/);
  });

  it("a Trainer with SGD resumes from its checkpoint state bit-exactly (4 steps = 2, save, load, 2)", async () => {
    const config = { arch: "gpt2", dim: 16, nLayers: 1, nHeads: 2, vocabSize: 13, maxSeqLen: 8, normEps: 1e-5 } as const;
    const tokens = Int32Array.from({ length: 300 }, (_, i) => (i * 5 + (i >> 3)) % 13);
    // NOTE: one batch every step, so that a falling loss shows the updates descend.
    const windows = new RandomWindows(tokens, 2, 8, 1);
    const data = { batchSize: 2, blockSize: 8, batch: () => windows.batch(0, 0), state: () => null, restore: () => {} };
    const opts = { schedule: { kind: "wsd", lr: 0.2, minLr: 0.005, warmupSteps: 1, decayStart: 2, decaySteps: 4 } as const, sgd: { momentum: 0.9, nesterov: true, weightDecay: 0.01 } };
    const fresh = async (seed = 3) => {
      const m = new Gpt2(config, cpu);
      await initParameters(m, { seed });
      return m;
    };
    const straight = new Trainer(await fresh(), data, opts);
    const a: number[] = [];
    for (let i = 0; i < 4; i++) a.push((await straight.trainStep()).loss);
    expect(a[3]).toBeLessThan(a[0]! - 0.1);

    const first = new Trainer(await fresh(), data, opts);
    const b: number[] = [];
    for (let i = 0; i < 2; i++) b.push((await first.trainStep()).loss);
    const meta = { architecture: "gpt2", config: null, rng: null, loader: null };
    const ckpt = toCheckpointState(await first.state(), meta);
    expect(ckpt.optimizer.state).toMatchObject({ kind: "sgd", step: 2 });
    expect(ckpt.optimizer.tensors.map((t) => t.name)).toEqual(["sgd.momentum"]);
    const resumed = new Trainer(await fresh(99), data, opts);
    resumed.loadState(fromCheckpointState(ckpt, "test"));
    for (let i = 0; i < 2; i++) b.push((await resumed.trainStep()).loss);
    expect(b).toEqual(a);

    // An AdamW trainer refuses SGD's state.
    const adamw = new Trainer(await fresh(), data, { schedule: opts.schedule });
    expect(() => adamw.loadState(fromCheckpointState(ckpt, "test"))).toThrow(/saved optimizer state is sgd's, this run uses adamw/);
  }, 60_000);
});

describe("lr schedules", () => {
  it("linear: warmup as cosine's, then a straight line to minLr at decaySteps, minLr after", () => {
    const s = { kind: "linear", lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 110 } as const;
    expect(learningRate(s, 0)).toBeCloseTo(1e-3 / 11, 12);
    expect(learningRate(s, 9)).toBeCloseTo(1e-3 * 10 / 11, 12);
    expect(learningRate(s, 10)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 60)).toBeCloseTo(5.5e-4, 12);
    expect(learningRate(s, 109)).toBeCloseTo(1e-4 + 9e-4 / 100, 12);
    expect(learningRate(s, 110)).toBe(1e-4);
    expect(learningRate(s, 1000)).toBe(1e-4);
  });

  it("wsd: warmup, lr held until decayStart, a straight line to minLr at decaySteps, minLr after", () => {
    const s = { kind: "wsd", lr: 2e-3, minLr: 0, warmupSteps: 4, decayStart: 80, decaySteps: 100 } as const;
    expect(learningRate(s, 3)).toBeCloseTo(2e-3 * 4 / 5, 12);
    expect(learningRate(s, 4)).toBe(2e-3);
    expect(learningRate(s, 79)).toBe(2e-3);
    expect(learningRate(s, 80)).toBe(2e-3);
    expect(learningRate(s, 90)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 99)).toBeCloseTo(1e-4, 12);
    expect(learningRate(s, 100)).toBe(0);
    // No warmup: the first step is already at lr.
    expect(learningRate({ ...s, warmupSteps: 0 }, 0)).toBe(2e-3);
  });

  it("rejects boundaries out of order, naming them", () => {
    expect(() => checkSchedule({ kind: "wsd", lr: 1, minLr: 0, warmupSteps: 10, decayStart: 5, decaySteps: 20 })).toThrow(/decayStart \(5\) must be an integer at or above warmupSteps \(10\)/);
    expect(() => checkSchedule({ kind: "wsd", lr: 1, minLr: 0, warmupSteps: 0, decayStart: 20, decaySteps: 20 })).toThrow(/decaySteps \(20\) must be an integer above decayStart \(20\)/);
    expect(() => checkSchedule({ kind: "linear", lr: 1, minLr: 2, warmupSteps: 0, decaySteps: 20 })).toThrow(/minLr must be in \[0, lr\]/);
  });
});

describe("optimizer and schedule config", () => {
  const base = {
    model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16 },
    data: { path: "x.txt" },
    train: { batchSize: 2, iters: 10 },
    optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, nesterov: true },
    schedule: { kind: "wsd", warmupSteps: 1, decayStart: 5, decaySteps: 10, minLr: 0 },
  };
  const error = (cfg: unknown) => {
    try {
      parseTrainConfig(cfg, "c.json");
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error("the config was accepted");
  };

  it("accepts SGD and wsd with their defaults", () => {
    const c = parseTrainConfig(base, "c.json");
    expect(c.optimizer).toEqual({ kind: "sgd", lr: 0.1, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0 });
    expect(c.schedule).toEqual(base.schedule);
  });

  it("names an invalid kind with the allowed values, and an unknown field with the variant's fields", () => {
    expect(error({ ...base, optimizer: { kind: "adam", lr: 1 } })).toMatch(/optimizer\.kind: .*'adamw' \| 'sgd'/);
    expect(error({ ...base, schedule: { kind: "step" } })).toMatch(/schedule\.kind: .*'constant' \| 'cosine' \| 'linear' \| 'wsd'/);
    expect(error({ ...base, optimizer: { ...base.optimizer, beta1: 0.9 } })).toContain("optimizer: unknown field 'beta1' (allowed: kind, lr, momentum, dampening, nesterov, weightDecay)");
    expect(error({ ...base, schedule: { ...base.schedule, stableSteps: 3 } })).toContain("schedule: unknown field 'stableSteps' (allowed: kind, warmupSteps, decayStart, decaySteps, minLr)");
    expect(error({ ...base, optimizer: { ...base.optimizer, momentum: 1 } })).toMatch(/optimizer\.momentum: .*<1/);
  });

  it("checks fields against each other, naming both", () => {
    expect(error({ ...base, optimizer: { kind: "sgd", lr: 0.1, nesterov: true } })).toContain("optimizer.nesterov needs optimizer.momentum > 0 and optimizer.dampening 0");
    expect(error({ ...base, schedule: { ...base.schedule, decayStart: 0 } })).toContain("schedule.decayStart (0) must be at least schedule.warmupSteps (1)");
    expect(error({ ...base, schedule: { kind: "linear", warmupSteps: 10, decaySteps: 10, minLr: 0 } })).toContain("schedule.decaySteps (10) must be above schedule.warmupSteps (10)");
    expect(error({ ...base, schedule: { ...base.schedule, minLr: 1 } })).toContain("schedule.minLr (1) must be at most optimizer.lr (0.1)");
  });
});
