// dist_zero3.test.ts: ZeRO-3 (src/dist/zero3.ts, src/train/zero3_trainer.ts) on the `local` communicator
// against the single-process run, with real parts: each rank a real OS process (dist_zero3_child.ts), every
// layer's weights all-gathered and its gradient reduce-scattered over real TCP sockets, inside the step's
// captured graph. For 2 ranks (the backward keeps the forward's gathered weights) and 4 ranks (2 micro-batches
// per step; every block gathers its weights again in the backward: regather), 50 AdamW steps with weight decay
// and clipping:
//   - every rank ends with the same whole parameters bit for bit, and the same gradient norms;
//   - the mean of the ranks' losses, the norms and the final parameters equal the single-process Trainer's
//     (global batch 8, same seed) within the tolerance of ZeRO-1/2 (dist_zero.test.ts);
//   - memory (the accountant, between steps): a rank's parameter, gradient and optimizer bytes are its shard's,
//     about 1/size of the single process's, within the bound "1/size plus one layer's gathered weights"; during
//     the step (the accountant's peak of the parameters' bytes) a keeping rank held every group's gathered
//     weights at once, a regathering rank at most one block's besides the groups outside the blocks.
// A distributed checkpoint written by a 2-rank ZeRO-3 run at step 4 resumes on 4 ranks (elastic) and in one
// process with the plain Trainer (another stage), each giving the uninterrupted run's losses for steps 4-7.
// In-process: the groups tile the flat layout; in one process (a sharding of one rank) keep and regather,
// captured and built, equal the Trainer's steps, and a single process's state continues under ZeRO-3;
// makeTrainer picks the trainer by the sharding; bad input is named.
// Every child is killed in afterEach, also when a test fails; each has its own 180 s bound too.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { Trainer } from "../../src/train/trainer.js";
import { loadShardedCheckpoint } from "../../src/train/trainer_sharded_checkpoint.js";
import { Zero3Layout, groupName } from "../../src/train/zero3_layout.js";
import { Zero3Trainer } from "../../src/train/zero3_trainer.js";
import { makeTrainer } from "../../src/train/make_trainer.js";
import { singleProcessReference, trainerOptions, zeroRun } from "./dist_zero_setup.js";
import { killRanks, maxDiff, runZero3Ranks } from "./dist_zero3_ranks.js";

afterEach(killRanks);

const STEPS = 50;
/** ZeRO-1/2's bounds (dist_zero.test.ts): the same sums in another order, over 50 AdamW steps. Measured in docs/distributed.md "## ZeRO". */
const TOL = { loss: 2e-6, norm: 5e-6, param: 2e-4 };


describe("ZeRO-3 on the local communicator: equal to the single-process AdamW run", () => {
  for (const { size, accum, regather } of [{ size: 2, accum: 1, regather: false }, { size: 4, accum: 2, regather: true }]) {
    it(`${size} ranks, ${accum} micro-batch(es), ${regather ? "regather" : "keep"}, ${STEPS} steps`, async () => {
      const outs = await runZero3Ranks(size, () => ({ ZR_STEPS: String(STEPS), ZR_SEED: "4", ZR_ACCUM: String(accum), ZR_REGATHER: regather ? "1" : "0" }));
      const ref = await singleProcessReference(STEPS, accum);
      for (const out of outs) {
        expect(out.sha).toBe(outs[0]!.sha);
        expect(out.norms).toEqual(outs[0]!.norms);
      }
      const meanLoss = ref.losses.map((_, i) => outs.reduce((s, o) => s + o.losses[i]!, 0) / size);
      const diffs = { loss: maxDiff(meanLoss, ref.losses), norm: maxDiff(outs[0]!.norms, ref.norms), param: maxDiff(outs[0]!.params, ref.params) };
      console.log(`ZeRO-3 ${size} ranks${regather ? ", regather" : ""}: max |difference| to the single process`, diffs);
      expect(diffs.loss).toBeLessThan(TOL.loss);
      expect(diffs.norm).toBeLessThan(TOL.norm);
      expect(diffs.param).toBeLessThan(TOL.param);
      expect(ref.losses.at(-1)!).toBeLessThan(ref.losses[0]! - 0.3);

      // Memory between steps: each rank holds its shard (parameters) and the optimizer's state of it, no more.
      const n = outs[0]!.layoutSize;
      const refResident = ref.live.parameters + ref.live.gradients + ref.live.optimizer;
      expect(ref.live.parameters).toBe(4 * n);
      expect(outs.reduce((s, o) => s + o.shardSize, 0)).toBeGreaterThanOrEqual(n);
      for (const o of outs) {
        expect(o.live.parameters).toBe(4 * o.shardSize);
        expect(o.optimizerElements).toBe(2 * o.shardSize);
        expect(o.live.optimizer).toBe(4 * o.optimizerElements);
        // NOTE: each group's chunk rounds up by at most size - 1 elements (5 groups here).
        expect(o.shardSize).toBeLessThanOrEqual(Math.ceil(n / size) + 5 * (size - 1));
        const resident = o.live.parameters + o.live.gradients + o.live.optimizer;
        expect(resident).toBeLessThanOrEqual(refResident / size + 4 * o.largestGroup);
        // The gathered weights were counted as parameters while the step held them, never more than the whole model;
        // regathering, at most the largest block's (the largest group) besides the groups outside the blocks.
        expect(o.peak.parameters).toBeGreaterThan(o.live.parameters);
        expect(o.peak.parameters).toBeLessThanOrEqual(o.live.parameters + 4 * size * o.shardSize);
        if (regather) expect(o.peak.parameters).toBeLessThanOrEqual(o.live.parameters + 4 * (o.largestGroup + o.outsideBlocks));
        else expect(o.peak.parameters).toBeGreaterThan(o.live.parameters + 4 * (o.largestGroup + o.outsideBlocks));
      }
      console.log(`ZeRO-3 ${size} ranks, rank 0 bytes: live`, outs[0]!.live, "peak", outs[0]!.peak, "single process live", ref.live);
    }, 240_000);
  }

  it("a 2-rank checkpoint at step 4 resumes on 4 regathering ranks, and in one process with the Trainer, with the same losses", async () => {
    const root = mkdtempSync(join(tmpdir(), "kiln-zero3-"));
    try {
      const whole = await runZero3Ranks(2, () => ({ ZR_STEPS: "8", ZR_SEED: "4", ZR_CKPT: root, ZR_SAVE_AT: "4" }));
      const resumed = await runZero3Ranks(4, () => ({ ZR_STEPS: "8", ZR_SEED: "11", ZR_CKPT: root, ZR_RESUME: "1", ZR_REGATHER: "1" }));
      for (const o of resumed) expect(o).toMatchObject({ resumedFrom: 4, writtenBy: 2 });
      const mean = (outs: typeof whole, i: number) => outs.reduce((s, o) => s + o.losses[i]!, 0) / outs.length;
      const losses = [0, 1, 2, 3].map((i) => Math.abs(mean(resumed, i) - mean(whole, i + 4)));
      const param = maxDiff(resumed[0]!.params, whole[0]!.params);
      console.log("ZeRO-3 resumed 2 -> 4 ranks: max |difference| over steps 4-7", { loss: Math.max(...losses), param });
      expect(Math.max(...losses)).toBeLessThan(2e-6);
      expect(param).toBeLessThan(1e-4);
      expect(resumed[0]!.losses.length).toBe(4);
      // The same checkpoint in one process with the plain Trainer (another stage and world size): the same curve.
      const { model, global } = await zeroRun(await getBackend("cpu"), 99);
      const t = new Trainer(model, global, trainerOptions(1));
      expect(await loadShardedCheckpoint(join(root, "step-000004"), t, "gpt2")).toMatchObject({ step: 4, writtenBy: 2 });
      const single: number[] = [];
      while (t.step < 8) single.push((await t.trainStep()).loss);
      const one = { loss: maxDiff(single, [4, 5, 6, 7].map((i) => mean(whole, i))), param: maxDiff(Array.from((await t.state()).params), whole[0]!.params) };
      console.log("ZeRO-3 checkpoint resumed in one process (Trainer): max |difference| over steps 4-7", one);
      expect(one.loss).toBeLessThan(2e-6);
      expect(one.param).toBeLessThan(1e-4);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 240_000);
});

describe("ZeRO-3 in-process", () => {
  it("groups by layer, chunks tile each group, bad input named", async () => {
    expect(["blk.3.attn_qkv.weight", "token_embd.weight", "output_norm.bias", "layers.12.mlp.w1"].map(groupName)).toEqual(["blk.3", "token_embd", "output_norm", "layers.12"]);
    const backend = await getBackend("cpu");
    const { model, global } = await zeroRun(backend, 4);
    const layout = new Trainer(model, global, trainerOptions(1)).layout;
    for (const size of [1, 3, 4]) {
      const all = [...Array(size).keys()].map((r) => new Zero3Layout(layout, size, r));
      expect(all[0]!.groups.map((g) => g.name)).toEqual(["token_embd", "position_embd", "blk.0", "blk.1", "output_norm"]);
      // Every element of the flat layout is in exactly one rank's chunk of one group.
      const seen = new Int32Array(layout.size);
      for (const z of all) for (const g of z.groups) {
        const [a, b] = z.ownRun(g, z.rank);
        for (let i = a; i < b; i++) seen[i]! += 1;
      }
      expect(Array.from(seen).every((c) => c === 1)).toBe(true);
      // own() of a whole buffer, gathered back in rank order group by group, is that buffer.
      const flat = Float32Array.from({ length: layout.size }, (_, i) => i + 1);
      const owns = all.map((z) => z.own(flat));
      const back = new Float32Array(layout.size);
      for (const g of all[0]!.groups) {
        const gathered = new Float32Array(size * g.chunk);
        owns.forEach((o, r) => gathered.set(o.subarray(g.at, g.at + g.chunk), r * g.chunk));
        all[0]!.place(g, gathered, 0, layout.size, back);
      }
      expect(Array.from(back)).toEqual(Array.from(flat));
      // The optimizer's layout of a shard keeps weight decay on the matrices' elements only.
      const decaying = all[0]!.shard.slots.filter((s) => s.decay).reduce((k, s) => k + s.numel, 0);
      const expected = all[0]!.groups.reduce((k, g) => {
        const [a, b] = all[0]!.ownRun(g, 0);
        return k + layout.slots.filter((s) => s.decay).reduce((m, s) => m + Math.max(0, Math.min(b, s.offset + s.numel) - Math.max(a, s.offset)), 0);
      }, 0);
      expect(decaying).toBe(expected);
    }
    expect(() => new Zero3Layout(layout, 2, 2)).toThrow("Zero3Layout: rank 2 of 2 is not a rank of the group");
    const { model: m2, global: g2 } = await zeroRun(backend, 4);
    expect(() => new Zero3Trainer(m2, g2, { ...trainerOptions(1), sharding: {} as never })).toThrow("the sharding option must be a ParameterSharding");
    expect(() => new Zero3Trainer(m2, g2, { ...trainerOptions(0), sharding: { rank: 0, size: 1, gather: (x: never) => x, sum: (x: never) => x } as never })).toThrow("gradAccumSteps must be a positive integer, got 0");
  });
});

describe("ZeRO-3 in one process (a sharding of one rank)", () => {
  const one = { rank: 0, size: 1, gather: (x: never) => x, sum: (x: never) => x, range: (n: number) => [0, n] as const, gatherHost: async (x: Float32Array) => x };
  it("keep and regather, jit and built, equal the Trainer's steps", async () => {
    const backend = await getBackend("cpu");
    const ref = await zeroRun(backend, 4);
    const t = new Trainer(ref.model, ref.global, trainerOptions(2));
    const want: number[] = [];
    for (let i = 0; i < 4; i++) want.push((await t.trainStep()).loss);
    const params = Array.from((await t.state()).params);
    for (const [regather, jit] of [[false, true], [true, true], [true, false]] as const) {
      const run = await zeroRun(backend, 4);
      const z = new Zero3Trainer(run.model, run.global, { ...trainerOptions(2), jit, regather, sharding: one });
      const got: number[] = [];
      for (let i = 0; i < 4; i++) got.push((await z.trainStep()).loss);
      expect(maxDiff(got, want)).toBeLessThan(1e-6);
      expect(maxDiff(Array.from(await z.parameters()), params)).toBeLessThan(1e-5);
      expect(await z.evalLoss(run.global, 9)).toBeCloseTo(await t.evalLoss(ref.global, 9), 5);
      // The whole state (as a single process's) has the Trainer's step, parameters and AdamW moments.
      const [zs, ts] = [await z.state(), await t.state()];
      expect(zs.step).toBe(ts.step);
      expect(maxDiff(Array.from(zs.params), Array.from(ts.params))).toBeLessThan(1e-5);
      if (zs.optimizer.kind !== "adamw" || ts.optimizer.kind !== "adamw") throw new Error("expected AdamW states");
      expect(maxDiff(Array.from(zs.optimizer.m), Array.from(ts.optimizer.m))).toBeLessThan(1e-6);
      expect(maxDiff(Array.from(zs.optimizer.v), Array.from(ts.optimizer.v))).toBeLessThan(1e-6);
    }
  }, 60_000);

  it("makeTrainer picks the trainer by the sharding; a single process's state continues under ZeRO-3 (loadState)", async () => {
    const backend = await getBackend("cpu");
    const ref = await zeroRun(backend, 4);
    const t = makeTrainer(ref.model, ref.global, trainerOptions(1));
    expect(t).toBeInstanceOf(Trainer);
    for (let i = 0; i < 2; i++) await t.trainStep();
    const saved = await t.state();
    const want = [(await t.trainStep()).loss, (await t.trainStep()).loss];
    const run = await zeroRun(backend, 9);
    const z = makeTrainer(run.model, run.global, { ...trainerOptions(1), sharding: one, regather: true });
    expect(z).toBeInstanceOf(Zero3Trainer);
    z.loadState(saved);
    expect(z.step).toBe(2);
    const got = [(await z.trainStep()).loss, (await z.trainStep()).loss];
    expect(maxDiff(got, want)).toBeLessThan(1e-6);
    expect(z.precision.path).toBe(t.precision.path);
    const other = await zeroRun(backend, 4);
    expect(() => makeTrainer(other.model, other.global, { ...trainerOptions(1), sharding: one, precision: { precision: "bf16" } })).toThrow("makeTrainer: ZeRO-3 does not take precision yet");
    expect(() => makeTrainer(other.model, other.global, { ...trainerOptions(1), regather: true })).toThrow("regather is ZeRO-3's option");
    const bigger = await zeroRun(backend, 4, 32);
    expect(() => makeTrainer(bigger.model, bigger.global, { ...trainerOptions(1), sharding: one }).loadState(saved)).toThrow("Zero3Trainer.loadState: the checkpoint is of another model");
  }, 60_000);

  it("regather refuses a model whose blocks are not parameter groups, naming it", async () => {
    const { model, global } = await zeroRun(await getBackend("cpu"), 4);
    (model as unknown as { blocks: unknown }).blocks = [{ parameters: () => new Map([["w", null]]), forward: () => null }];
    expect(() => new Zero3Trainer(model, global, { ...trainerOptions(1), regather: true, sharding: one as never })).toThrow("ZeRO-3 regather: block 0's parameters (w) are not one parameter group's");
  });
});
