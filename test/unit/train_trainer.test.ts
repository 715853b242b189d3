// The trainer's parts on cpu: AdamW against the update written out by hand, the lr schedule, global-norm
// clipping, gradient accumulation (two micro-batches equal one batch of both), and a checkpoint:
// 6 steps straight give the same losses as 3 steps, a checkpoint through checkpoint/'s Checkpointer,
// a load into a fresh model, 3 more; a checkpoint of another model is refused.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import { getBackend, realizeAll, tensor } from "../../src/index.js";
import { Gpt2 } from "../../src/models/gpt2.js";
import type { Gpt2Config } from "../../src/models/types.js";
import type { Batch, BatchSource } from "../../src/train/batches.js";
import { RandomWindows } from "../../src/train/batches.js";
import { Checkpointer, resumeFromLatest } from "../../src/train/checkpoint/index.js";
import { clipByGlobalNorm, globalNorm } from "../../src/train/clip.js";
import { initParameters } from "../../src/train/init.js";
import { AdamW } from "../../src/train/optim/adamw.js";
import { flatBuffer, flatGradient, gatherFlat, slotViews } from "../../src/train/flat_params.js";
import { ParamLayout } from "../../src/train/param_layout.js";
import { learningRate } from "../../src/train/schedule.js";
import { Trainer } from "../../src/train/trainer.js";
import { fromCheckpointState, toCheckpointState, trainerSignature } from "../../src/train/trainer_checkpoint.js";
import { rng } from "../conformance/harness.js";

const cpu = await getBackend("cpu");
const CONFIG: Gpt2Config = { arch: "gpt2", dim: 16, nLayers: 2, nHeads: 2, vocabSize: 17, maxSeqLen: 8, normEps: 1e-5 };
const r0 = rng(9);
const TOKENS = Int32Array.from({ length: 400 }, (_, i) => (i * 7 + Math.floor(r0() * 3)) % 17);
const OPTS = { schedule: { kind: "cosine", lr: 3e-3, minLr: 3e-4, warmupSteps: 2, decaySteps: 10 } as const, adamw: { beta2: 0.99, weightDecay: 0.1 }, maxGradNorm: 1 };
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function freshModel(): Promise<Gpt2> {
  const model = new Gpt2(CONFIG, cpu);
  await initParameters(model, { seed: 5 });
  return model;
}

describe("AdamW", () => {
  // align 8 pads 'b' to offset 8, as webgpu's 256-byte view alignment pads every slot: the padding stays zero.
  for (const align of [1, 8]) it(`matches the update written out by hand (decay on matrices only, bias-corrected), one update per flat buffer, align ${align}`, async () => {
    const w = [0.5, -1, 2, 0.25], b = [0.1, -0.2], gw = [0.3, -0.1, 0.02, 1], gb = [-0.5, 0.4];
    const params = new Map([["w", tensor(w, { backend: cpu, shape: [2, 2] })], ["b", tensor(b, { backend: cpu })]]);
    const layout = new ParamLayout(params, align);
    const at = align === 1 ? 4 : 8;
    expect(layout.slots.map((s) => [s.offset, s.decay])).toEqual([[0, true], [at, false]]);
    expect(layout.size).toBe(at + 2);
    const opt = new AdamW(layout, cpu, { beta1: 0.8, beta2: 0.9, eps: 1e-6, weightDecay: 0.5 });
    const [lr, b1, b2] = [0.1, 0.8, 0.9];
    const flat = flatBuffer(layout, cpu, await gatherFlat(layout, [...params.values()]));
    const [pw, pb] = slotViews(layout, flat) as [Tensor, Tensor];
    const ref = { w: [...w], b: [...b], mw: [0, 0, 0, 0], vw: [0, 0, 0, 0], mb: [0, 0], vb: [0, 0] };
    const grads = () => flatGradient(layout, [tensor(gw, { backend: cpu, shape: [2, 2] }), tensor(gb, { backend: cpu })]);
    for (let t = 1; t <= 2; t++) {
      const scalars = tensor(opt.scalars(lr), { backend: cpu });
      const writes = opt.update(flat, grads(), scalars);
      expect(writes.length).toBe(3); // p, m and v: one assignment per flat buffer
      await realizeAll(writes);
      opt.advance();
      const step = (p: number[], m: number[], v: number[], g: number[], decay: number) => p.forEach((_, i) => {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
        p[i] = p[i]! * (1 - lr * decay) - (lr * m[i]! / (1 - b1 ** t)) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + 1e-6);
      });
      step(ref.w, ref.mw, ref.vw, gw, 0.5);
      step(ref.b, ref.mb, ref.vb, gb, 0);
    }
    Array.from(await pw.data()).forEach((x, i) => expect(x).toBeCloseTo(ref.w[i]!, 5));
    Array.from(await pb.data()).forEach((x, i) => expect(x).toBeCloseTo(ref.b[i]!, 5));
    const all = await flat.data();
    expect(Array.from(all.subarray(4, at))).toEqual(new Array(at - 4).fill(0));
    const state = await opt.state();
    expect(state.step).toBe(2);
    expect(state.m.length).toBe(layout.size);
    Array.from(state.m.subarray(at)).forEach((x, i) => expect(x).toBeCloseTo(ref.mb[i]!, 6));
    Array.from(state.v.subarray(0, 4)).forEach((x, i) => expect(x).toBeCloseTo(ref.vw[i]!, 6));
    expect(() => opt.update(flat, grads(), tensor([1, 2], { backend: cpu }))).toThrow(/scalars must be the 4 values of scalars\(lr\)/);
    expect(() => opt.update(flat, tensor(gw, { backend: cpu }), tensor(opt.scalars(lr), { backend: cpu }))).toThrow(/the gradient: expected a flat f32 \(\d+\) tensor of the layout, got Tensor\(4\)/);
    expect(() => flatGradient(layout, [tensor(gw, { backend: cpu, shape: [2, 2] })])).toThrow(/1 gradients for a layout of 2 parameters/);
  });

  it("rejects hyperparameters out of range, naming them", () => {
    const layout = new ParamLayout(new Map([["b", tensor([1, 2], { backend: cpu })]]));
    expect(() => new AdamW(layout, cpu, { beta2: 1 })).toThrow(/beta2 must be in \[0, 1\)/);
    expect(() => new AdamW(layout, cpu, { eps: 0 })).toThrow(/eps/);
  });
});

describe("lr schedule and clipping", () => {
  it("warms up linearly, decays by cosine to minLr, then stays there", () => {
    const s = { kind: "cosine", lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 } as const;
    expect(learningRate(s, 0)).toBeCloseTo(1e-3 / 101, 12);
    expect(learningRate(s, 99)).toBeCloseTo(1e-3 * 100 / 101, 12);
    expect(learningRate(s, 100)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 1050)).toBeCloseTo(5.5e-4, 12);
    expect(learningRate(s, 2000)).toBeCloseTo(1e-4, 12);
    expect(learningRate(s, 5000)).toBe(1e-4);
  });

  it("clips the global norm over every gradient and leaves small gradients alone", async () => {
    const g = [tensor([3, 0], { backend: cpu }), tensor([[0, 4]], { backend: cpu })];
    const norm = globalNorm(g);
    expect(await norm.item()).toBeCloseTo(5, 6);
    const clipped = clipByGlobalNorm(g, norm, 1);
    expect(Array.from(await clipped[0]!.data())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(await clipped[1]!.data())[1]).toBeCloseTo(0.8, 5);
    expect(Array.from(await clipByGlobalNorm(g, norm, 10)[0]!.data())[0]).toBeCloseTo(3, 6);
  });
});

describe("RandomWindows", () => {
  it("draws each step's windows from (seed, step, micro-batch) alone, targets shifted by one", () => {
    const tokens = Int32Array.from({ length: 300 }, (_, i) => i);
    const w = new RandomWindows(tokens, 3, 10, 4);
    const a = w.batch(5, 1);
    expect(new RandomWindows(tokens, 3, 10, 4).batch(5, 1)).toEqual(a);
    expect(w.batch(6, 1).inputs).not.toEqual(a.inputs);
    expect(w.batch(5, 0).inputs).not.toEqual(a.inputs);
    for (let r = 0; r < 3; r++) {
      const row = a.inputs.subarray(r * 10, r * 10 + 10);
      expect(Array.from(row, (x, i) => x - i)).toEqual(new Array(10).fill(row[0]));
      expect(Array.from(a.targets.subarray(r * 10, r * 10 + 10))).toEqual(Array.from(row, (x) => x + 1));
    }
    expect(() => new RandomWindows(tokens.subarray(0, 10), 1, 10)).toThrow(/too few/);
  });
});

describe("Trainer", () => {
  it("accumulating two micro-batches equals one batch of both", async () => {
    const src = new RandomWindows(TOKENS, 2, 8, 3);
    const [a, b] = [src.batch(0, 0), src.batch(0, 1)];
    const cat = (x: Int32Array, y: Int32Array) => Int32Array.from([...x, ...y]);
    const halves: BatchSource = { batchSize: 2, blockSize: 8, batch: (_s, micro) => (micro === 0 ? a : b), state: () => null, restore: () => {} };
    const whole: BatchSource = { batchSize: 4, blockSize: 8, batch: (): Batch => ({ inputs: cat(a.inputs, b.inputs), targets: cat(a.targets, b.targets) }), state: () => null, restore: () => {} };
    const [m1, m2] = [await freshModel(), await freshModel()];
    const s1 = await new Trainer(m1, halves, { ...OPTS, gradAccumSteps: 2 }).trainStep();
    const s2 = await new Trainer(m2, whole, OPTS).trainStep();
    expect(s1.loss).toBeCloseTo(s2.loss, 5);
    expect(s1.gradNorm).toBeCloseTo(s2.gradNorm, 5);
    const [p1, p2] = [await m1.parameters().get("blk.1.ffn_up.weight")!.data(), await m2.parameters().get("blk.1.ffn_up.weight")!.data()];
    expect(Math.max(...Array.from(p1, (x, i) => Math.abs(x - p2[i]!)))).toBeLessThan(1e-6);
  }, 60_000);

  const META = { architecture: "gpt2", config: { note: "test" }, rng: { seed: 1 }, loader: null };

  it("resumes from a checkpoint bit-exactly: 6 steps straight = 3, save, load, 3", async () => {
    const data = new RandomWindows(TOKENS, 2, 8, 1);
    const straight = new Trainer(await freshModel(), data, OPTS);
    const a: number[] = [];
    for (let i = 0; i < 6; i++) a.push((await straight.trainStep()).loss);

    const first = new Trainer(await freshModel(), data, OPTS);
    const b: number[] = [];
    for (let i = 0; i < 3; i++) b.push((await first.trainStep()).loss);
    const dir = mkdtempSync(join(tmpdir(), "kiln-ckpt-"));
    dirs.push(dir);
    const checkpointer = new Checkpointer(dir, { keepLast: 1 });
    await checkpointer.save(toCheckpointState(await first.state(), META));
    expect(await checkpointer.flush()).toBe(join(dir, "step-000003"));
    // A fresh model with other weights: everything must come from the checkpoint.
    const model = new Gpt2(CONFIG, cpu);
    await initParameters(model, { seed: 99 });
    const resumed = new Trainer(model, data, OPTS);
    const saved = resumeFromLatest(dir, { expect: trainerSignature("gpt2", resumed.layout) })!;
    expect(saved.config).toEqual({ note: "test" });
    resumed.loadState(fromCheckpointState(saved, dir));
    expect(resumed.step).toBe(3);
    for (let i = 0; i < 3; i++) b.push((await resumed.trainStep()).loss);
    expect(b).toEqual(a);
    expect(a[5]).not.toBe(a[0]);
  }, 120_000);

  it("the model's parameters become views of one flat buffer at the layout's offsets, with their initial values, updated in place", async () => {
    const model = await freshModel();
    const before = new Map<string, Float32Array>();
    for (const [name, t] of model.parameters()) before.set(name, await t.data() as Float32Array);
    const tr = new Trainer(model, new RandomWindows(TOKENS, 2, 8, 1), OPTS);
    const state = await tr.state(); // moves them into the flat buffer, as the first step does
    const params = [...model.parameters()];
    const base = params[0]![1].node.viewOf?.base;
    expect(base?.numel).toBe(tr.layout.size);
    for (const [i, [name, t]] of params.entries()) {
      expect(t.node.viewOf?.base, name).toBe(base);
      expect(t.node.viewOf?.byteOffset, name).toBe(tr.layout.slots[i]!.offset * 4);
      expect(Array.from(await t.data()), name).toEqual(Array.from(before.get(name)!));
      expect(Array.from(state.params.subarray(tr.layout.slots[i]!.offset, tr.layout.slots[i]!.offset + t.numel)), name).toEqual(Array.from(before.get(name)!));
    }
    await tr.trainStep();
    const w = model.parameters().get("blk.1.ffn_up.weight")!;
    expect(w.node.viewOf?.base).toBe(base);
    expect(Array.from(await w.data())).not.toEqual(Array.from(before.get("blk.1.ffn_up.weight")!));
  }, 60_000);

  it("loads a state laid out with other padding (webgpu's 64-f32 offsets) by slot, through a checkpoint, and continues bit-exactly", async () => {
    const data = new RandomWindows(TOKENS, 2, 8, 1);
    const straight = new Trainer(await freshModel(), data, OPTS);
    const a: number[] = [];
    for (let i = 0; i < 4; i++) a.push((await straight.trainStep()).loss);
    const first = new Trainer(await freshModel(), data, OPTS);
    const b: number[] = [];
    for (let i = 0; i < 2; i++) b.push((await first.trainStep()).loss);
    const s = await first.state();
    if (s.optimizer.kind !== "adamw") throw new Error("expected AdamW's state");
    const padded = new ParamLayout(first.model.parameters(), 64);
    const move = (x: Float32Array) => padded.relayout(x, s.layout);
    expect(padded.size).toBeGreaterThan(s.params.length);
    expect(padded.slots[1]!.offset % 64).toBe(0);
    const other = { ...s, layout: padded.describe(), params: move(s.params), optimizer: { ...s.optimizer, m: move(s.optimizer.m), v: move(s.optimizer.v) } };
    const model = new Gpt2(CONFIG, cpu);
    await initParameters(model, { seed: 99 });
    const resumed = new Trainer(model, data, OPTS);
    resumed.loadState(fromCheckpointState(toCheckpointState(other, META), "test"));
    expect(Array.from((await resumed.state()).params)).toEqual(Array.from(s.params));
    for (let i = 0; i < 2; i++) b.push((await resumed.trainStep()).loss);
    expect(b).toEqual(a);
  }, 120_000);

  it("refuses a checkpoint of another model, and optimizer state that does not fit", async () => {
    const data = new RandomWindows(TOKENS, 2, 8, 1);
    const t = new Trainer(await freshModel(), data, OPTS);
    const dir = mkdtempSync(join(tmpdir(), "kiln-ckpt-"));
    dirs.push(dir);
    const checkpointer = new Checkpointer(dir);
    await checkpointer.save(toCheckpointState(await t.state(), META));
    await checkpointer.flush();
    const other = new Gpt2({ ...CONFIG, dim: 8 }, cpu);
    await initParameters(other, {});
    const expect8 = trainerSignature("gpt2", new Trainer(other, data, OPTS).layout);
    expect(() => resumeFromLatest(dir, { expect: expect8 })).toThrow(/checkpoint of another model: shapes differ: token_embd.weight is \[17, 16\] in the checkpoint, \[17, 8\] in the model/);
    const state = resumeFromLatest(dir)!;
    const noV = { ...state, optimizer: { ...state.optimizer, tensors: state.optimizer.tensors.filter((x) => x.name !== "adamw.v") } };
    expect(() => fromCheckpointState(noV, dir)).toThrow(/optimizer tensor 'adamw.v' is missing/);
    expect(() => fromCheckpointState({ ...state, optimizer: { ...state.optimizer, state: { kind: "sgd" } } }, dir)).toThrow(/not AdamW's/);
  }, 60_000);
});
