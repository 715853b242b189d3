// dist_zero.test.ts: ZeRO-1 and ZeRO-2 (src/dist/zero.ts) on the `local` communicator against the
// single-process run, with real parts: each rank a real OS process (dist_zero_child.ts), gradients
// reduced and parameters gathered over real TCP sockets. For 2 and 4 ranks (one case with 2 micro-batches per
// step), 50 AdamW steps with weight decay and clipping:
//   - every rank holds the same parameters bit for bit (the all-gather), and the same gradient norm;
//   - the mean of the ranks' losses, the norms and the final parameters equal the single-process run's
//     (global batch 8, same seed) within TOL;
//   - each rank's optimizer state is its part of the flat buffer: the parts tile it, and a rank holds
//     1/size of the single-process optimizer's elements (up to the one element chunking rounds by), in its
//     buffers' sizes and in the memory accountant's optimizer bytes (the parameters stay whole).
// In-process: zeroSharding refuses stage 3 (zero3.ts's) and bad combinations, naming them; ParamLayout.range cuts slots right.
// Every child is killed in afterEach, also when a test fails; each has its own 180 s bound too (the multi-rank tests take 240 s: CPU time is 10-20 s each on 2 idle cores, but this shared machine ran them at load 20-80).

import { afterEach, describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { shardRange, zeroSharding } from "../../src/dist/zero.js";
import { Trainer } from "../../src/train/trainer.js";
import { singleProcessReference, trainerOptions, zeroRun } from "./dist_zero_setup.js";
import { killRanks, maxDiff, runRanks } from "./dist_zero_ranks.js";

afterEach(killRanks);

const STEPS = 50;

/**
 * The tolerance against the single-process run. The reduced gradient is the ranks' means summed in rank order
 * and divided by the world size where the single run takes one mean over all rows (other f32 sums), and the
 * norm is summed from the ranks' parts on the host: the last bits differ each step, AdamW's division by
 * sqrt(v) can move them up to lr, and that accumulates over 50 steps. Measured (cpu, 2026-12-07, max
 * |difference|): 2 ranks (ZeRO-1 and ZeRO-2 alike): loss 1.2e-7, norm 6.0e-7, parameters 3.8e-5; 4 ranks
 * ZeRO-1: 1.8e-7, 3.6e-7, 3.1e-5; 4 ranks ZeRO-2 with 2 micro-batches: 2.4e-7, 4.8e-7, 4.7e-5. The bounds leave
 * 4-10x room; a rank that updates a wrong part, skips the division by the world size or clips by its own
 * part's norm misses them by far.
 */
const TOL = { loss: 2e-6, norm: 5e-6, param: 2e-4 };


describe("ZeRO on the local communicator: equal to the single-process AdamW run", () => {
  const refs = new Map<number, Awaited<ReturnType<typeof singleProcessReference>>>();
  for (const { stage, size, accum } of [
    { stage: 1, size: 2, accum: 1 },
    { stage: 2, size: 2, accum: 1 },
    { stage: 1, size: 4, accum: 1 },
    { stage: 2, size: 4, accum: 2 },
  ]) {
    it(`ZeRO-${stage}, ${size} ranks, ${accum} micro-batch(es), ${STEPS} steps`, async () => {
      const outs = await runRanks(size, () => ({ ZR_STEPS: String(STEPS), ZR_STAGE: String(stage), ZR_SEED: "4", ZR_ACCUM: String(accum) }));
      if (!refs.has(accum)) refs.set(accum, await singleProcessReference(STEPS, accum));
      const ref = refs.get(accum)!;
      for (const out of outs) {
        expect(out.sha).toBe(outs[0]!.sha);
        expect(out.norms).toEqual(outs[0]!.norms);
      }
      const meanLoss = ref.losses.map((_, i) => outs.reduce((s, o) => s + o.losses[i]!, 0) / size);
      const diffs = { loss: maxDiff(meanLoss, ref.losses), norm: maxDiff(outs[0]!.norms, ref.norms), param: maxDiff(outs[0]!.params, ref.params) };
      console.log(`ZeRO-${stage} ${size} ranks: max |difference| to the single process`, diffs);
      expect(diffs.loss).toBeLessThan(TOL.loss);
      expect(diffs.norm).toBeLessThan(TOL.norm);
      expect(diffs.param).toBeLessThan(TOL.param);
      expect(ref.losses.at(-1)!).toBeLessThan(ref.losses[0]! - 0.3);
      // Memory: the parts tile the flat buffer, and each rank's optimizer state (m and v) is its part's.
      const n = outs[0]!.layoutSize;
      expect(outs.map((o) => o.range)).toEqual(outs.map((_, r) => chunk(n, size, r)));
      for (const o of outs) {
        expect(o.optimizerElements).toBe(2 * (o.range![1] - o.range![0]));
        expect(o.optimizerElements).toBeLessThanOrEqual(Math.ceil(ref.optimizerElements / size) + 2);
      }
      expect(outs.reduce((s, o) => s + o.optimizerElements, 0)).toBe(ref.optimizerElements);
      expect(ref.live.optimizer).toBe(4 * ref.optimizerElements);
      for (const o of outs) {
        expect(o.memory!.optimizer).toBe(4 * o.optimizerElements);
        expect(o.memory!.optimizer).toBeLessThanOrEqual(ref.live.optimizer / size + 8);
        expect(o.memory!.parameters).toBe(ref.live.parameters);
      }
    }, 240_000);
  }
});

/** The parts as the test expects them (torch's tensor_split over n elements: the first n % size one longer). */
function chunk(n: number, size: number, r: number): [number, number] {
  const base = Math.floor(n / size);
  const start = r * base + Math.min(r, n % size);
  return [start, start + base + (r < n % size ? 1 : 0)];
}

describe("ZeRO in-process", () => {
  it("parts aligned for views, and bad input named", async () => {
    // webgpu's views start at multiples of 64 f32s: every part but the last is whole units.
    expect([0, 1, 2].map((r) => shardRange(1000, 64, 3, r))).toEqual([[0, 384], [384, 704], [704, 1000]]);
    expect([0, 1, 2].map((r) => shardRange(2, 1, 3, r))).toEqual([[0, 1], [1, 2], [2, 2]]);
    const fakeComm = { rank: 0, size: 2 } as never;
    expect(() => zeroSharding(fakeComm, 3 as never)).toThrow("stage must be 1 or 2 (ZeRO-3 is zero3Sharding, for the Zero3Trainer), got 3");
    const backend = await getBackend("cpu");
    const { model, global } = await zeroRun(backend, 4);
    const sharding = zeroSharding(fakeComm, 1);
    expect(() => new Trainer(model, global, { ...trainerOptions(1), sharding, gradientHook: async (g) => g })).toThrow("give a gradientHook or a sharding, not both");
    expect(() => new Trainer(model, global, { ...trainerOptions(1), sharding, precision: { precision: "fp16" } })).toThrow("a sharding works with fp32 or bf16 precision so far, not fp16");
    const bad = { ...sharding, range: () => [5, 3] as const };
    expect(() => new Trainer(model, global, { ...trainerOptions(1), sharding: bad })).toThrow(/the sharding gave the range \[5, 3\) of a flat buffer of \d+/);
  });

  it("ParamLayout.range cuts the slots at its edges and keeps decay", async () => {
    const { model } = await zeroRun(await getBackend("cpu"), 4);
    const layout = new Trainer(model, (await zeroRun(await getBackend("cpu"), 4)).global, trainerOptions(1)).layout;
    const s = layout.slots[1]!;
    const part = layout.range(s.offset + 3, s.offset + s.numel + 5);
    expect(part.size).toBe(s.numel + 2);
    expect(part.slots[0]).toMatchObject({ name: s.name, offset: 0, numel: s.numel - 3, shape: [s.numel - 3], decay: s.decay });
    expect(part.slots[1]).toMatchObject({ name: layout.slots[2]!.name, offset: s.numel - 3, numel: 5, decay: layout.slots[2]!.decay });
    expect(() => layout.range(3, layout.size + 1)).toThrow(`[3, ${layout.size + 1}) is not a range of the ${layout.size} elements`);
  });
});
