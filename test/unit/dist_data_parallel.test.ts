// dist_data_parallel.test.ts: data parallel on the `local` communicator against the single-process run, with
// real parts: each rank a real OS process (dist_data_parallel_child.ts under node --import tsx), the
// gradients all-reduced over real TCP sockets. The ranks start from different seeds (replicaStart
// broadcasts rank 0's parameters), each trains on its rows of the global batch, and:
//   - every rank holds the same parameters bit for bit (the all-reduce is bit-identical on every rank);
//   - the mean of the ranks' losses, the gradient norm and the final parameters equal the single-process
//     run's (global batch 4, same seed) within TOL (below);
//   - a rank with another model layout is refused before training, naming that rank.
// Also in-process: the trainer's split step with an identity hook equals the unsplit step, and bad input
// (a batch that does not divide, a hook returning the wrong length, fp16) gets an error naming it.
// Every child is killed in afterEach, also when a test fails; each has its own 90 s bound too.

import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { getBackend } from "../../src/index.js";
import { RankRows } from "../../src/dist/data_parallel.js";
import { Trainer } from "../../src/train/trainer.js";
import { GLOBAL_BATCH, tinyRun, trainerOptions } from "./dist_data_parallel_setup.js";
import { killRanks, maxAbsDiff as maxDiff, runRanks as runRankScript } from "../helpers/rank_processes.js";

const CHILD = fileURLToPath(new URL("./dist_data_parallel_child.ts", import.meta.url));
afterEach(killRanks);
const runRanks = (size: number, env: (rank: number) => Record<string, string>) => runRankScript<RankOut>(CHILD, size, env);

/**
 * The tolerance against the single-process run. The data-parallel gradient is (mean of rows 0-1 + mean of
 * rows 2-3) / 2 where the single run takes one mean over rows 0-3: the same terms summed in another order
 * in f32, so each step's gradient differs in the last bits (~1e-7 relative); AdamW divides by sqrt(v), so
 * an element whose gradient is near zero can move the last bits of an update of up to lr, and these
 * differences accumulate over the steps. Measured (cpu, max |difference|): 2 ranks x 30 steps: loss 1.2e-7,
 * norm 1.6e-5, parameters 4.0e-5; 4 ranks x 20 steps of 2 micro-batches: 2.4e-7, 6e-7, 4.0e-5. The bounds
 * leave 5-10x room; a rank that skips the broadcast or the division by the world size misses them by far.
 */
const TOL = { loss: 2e-6, norm: 1e-4, param: 2e-4 };
// NOTE: fp16 rounds activations and gradients to 11 bits, so the gradient's other summation order moves later
// steps by fp16 ulps rather than f32 ones (measured: loss 7.4e-5, norm 1.0e-3, parameters 2.4e-4).
const TOL_FP16 = { loss: 5e-4, norm: 5e-3, param: 2e-3 };

interface RankOut {
  rank: number;
  losses?: number[];
  norms?: number[];
  params?: number[];
  sha?: string;
  error?: string;
}


/** The single-process run: global batch 4, seed 4 (rank 0's), no hook. */
async function reference(steps: number, accum: number, precision?: "fp16") {
  const { model, global } = await tinyRun(await getBackend("cpu"), 4);
  const t = new Trainer(model, global, { ...trainerOptions(accum), ...(precision ? { precision: { precision } } : {}) });
  const losses: number[] = [];
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = await t.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
  }
  return { losses, norms, params: Array.from((await t.state()).params) };
}

describe("data parallel on the local communicator: equal to the single-process run", () => {
  for (const { size, steps, accum, form, precision } of [
    { size: 2, steps: 30, accum: 1, form: "hook" },
    { size: 4, steps: 20, accum: 2, form: "hook" },
    { size: 2, steps: 30, accum: 1, form: "graph" },
    { size: 2, steps: 20, accum: 2, form: "graph", precision: "fp16" as const },
  ]) {
    const how = form === "graph" ? `the all-reduce in the step's graph${precision ? `, ${precision}` : ""}` : "a host gradient hook";
    it(`${size} ranks x ${GLOBAL_BATCH / size} rows, ${accum} micro-batch(es), ${steps} AdamW steps with clipping, ${how}`, async () => {
      const env = { DP_STEPS: String(steps), DP_ACCUM: String(accum), DP_SEED: "4", DP_FORM: form, ...(precision ? { DP_PRECISION: precision } : {}) };
      const outs = await runRanks(size, () => env);
      const ref = await reference(steps, accum, precision);
      for (const out of outs) {
        expect(out.error).toBeUndefined();
        expect(out.sha).toBe(outs[0]!.sha); // bit for bit the same parameters on every rank
        expect(out.norms).toEqual(outs[0]!.norms); // the norm of the all-reduced gradient: the same on every rank
      }
      const meanLoss = ref.losses.map((_, i) => outs.reduce((s, o) => s + o.losses![i]!, 0) / size);
      const diffs = { loss: maxDiff(meanLoss, ref.losses), norm: maxDiff(outs[0]!.norms!, ref.norms), param: maxDiff(outs[0]!.params!, ref.params) };
      console.log(`data parallel ${size} ranks (${how}): max |difference| to the single process`, diffs);
      const tol = precision === "fp16" ? TOL_FP16 : TOL;
      expect(diffs.loss).toBeLessThan(tol.loss);
      expect(diffs.norm).toBeLessThan(tol.norm);
      expect(diffs.param).toBeLessThan(tol.param);
      // The run did train, and differently from a model that stayed at rank 0's start.
      expect(ref.losses.at(-1)!).toBeLessThan(ref.losses[0]! - 0.1);
    }, 120_000);
  }

  it("a rank with another model layout is refused before training, naming that rank", async () => {
    const outs = await runRanks(2, (rank) => ({ DP_STEPS: "1", DP_DIM: rank === 1 ? "32" : "16", DP_TIMEOUT_MS: "10000" }));
    for (const out of outs) {
      expect(out.error).toMatch(new RegExp(`^data parallel on rank ${out.rank}: rank\\(s\\) 1 have another model layout or configuration than rank 0 \\(hash [0-9a-f]{12} on rank 1 vs [0-9a-f]{12} on rank 0\\)`));
    }
  }, 60_000);
});

describe("the trainer's gradient hook (in-process)", () => {
  it("an identity hook (a world of one) gives the unsplit step's losses, norms and parameters", async () => {
    const backend = await getBackend("cpu");
    const runs = [];
    for (const hook of [undefined, async (g: Float32Array) => g]) {
      const { model, global } = await tinyRun(backend, 4);
      const t = new Trainer(model, global, { ...trainerOptions(2), gradientHook: hook });
      const stats = [];
      for (let i = 0; i < 4; i++) {
        const s = await t.trainStep();
        stats.push([s.loss, s.gradNorm]);
      }
      runs.push({ stats, params: Array.from((await t.state()).params) });
    }
    expect(runs[1]!.stats).toEqual(runs[0]!.stats);
    expect(runs[1]!.params).toEqual(runs[0]!.params);
  }, 60_000);

  it("bad input gets an error naming it", async () => {
    const backend = await getBackend("cpu");
    const { model, global } = await tinyRun(backend, 4);
    expect(() => new RankRows(global, 0, 3)).toThrow("the global batch of 4 rows does not divide over 3 ranks");
    expect(() => new RankRows(global, 2, 2)).toThrow("rank must be an integer from 0 to size - 1 and size >= 1, got rank 2 of 2");
    expect(() => new Trainer(model, global, { ...trainerOptions(1), precision: { precision: "fp16" }, gradientHook: async (g) => g })).toThrow(
      "a gradientHook works with fp32 or bf16 precision so far, not fp16",
    );
    const t = new Trainer(model, global, { ...trainerOptions(1), gradientHook: async (g) => g.subarray(1) });
    await expect(t.trainStep()).rejects.toThrow(/the gradientHook must return a Float32Array of \d+ \(the flat gradient's length\), got \d+/);
  }, 60_000);
});
