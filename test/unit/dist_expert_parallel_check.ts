// dist_expert_parallel_check.ts: the comparison dist_expert_parallel*.test.ts make: `size` real rank processes
// (dist_expert_parallel_child.ts) with ep groups of `ep`, against the single-process MoE run in this process.
// Every child is killed by killRanks (the tests' afterEach), also when a check fails.

import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { getBackend } from "../../src/index.js";
import { runRanks as runRankScript } from "../helpers/rank_processes.js";
import { Trainer } from "../../src/train/trainer.js";
import { MOE_TRAINER, moeRun } from "./dist_expert_parallel_setup.js";

const CHILD = fileURLToPath(new URL("./dist_expert_parallel_child.ts", import.meta.url));
export { killRanks } from "../helpers/rank_processes.js";

/**
 * The tolerance against the single-process run. The ranks compute the same sums in another order (each
 * rank's mean over its rows, then the mean of the ranks'; an expert's gradient summed from two ranks'
 * rows), so f32 rounding differs in the last bits and AdamW carries it on. Measured (cpu, 2 ranks, 50
 * steps, max |difference|): loss 2.4e-7, norm 1.1e-6, parameters 5.7e-7. The bounds leave ~10x room; a
 * rank that skips the experts' division by the world size, or routes with its own aux-loss statistics
 * only, misses them by far.
 */
const TOL = { loss: 3e-6, norm: 2e-5, param: 1e-5 };

interface RankOut {
  rank: number;
  losses: number[];
  norms: number[];
  stepMs: number[];
  params: Record<string, number[]>;
}


const maxDiff = (a: readonly number[], b: readonly number[]) => {
  expect(a.length).toBe(b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
};

/** Runs the ranks and the single-process run side by side and checks them (see the tests' headers). */
export async function checkAgainstSingleProcess(size: number, ep: number, steps: number): Promise<void> {
  const ranks = runRankScript<RankOut>(CHILD, size, () => ({ EP_STEPS: String(steps), EP_EP: String(ep), EP_SEED: "4" }));
  // The single-process run, meanwhile: every expert, the global batch of 4 rows.
  const cpu = await getBackend("cpu");
  const { model, global } = await moeRun(cpu, 4);
  const t = new Trainer(model, global, MOE_TRAINER);
  const ref = { losses: [] as number[], norms: [] as number[] };
  for (let i = 0; i < steps; i++) {
    const s = await t.trainStep();
    ref.losses.push(s.loss);
    ref.norms.push(s.gradNorm);
  }
  const state = await t.state();
  const outs = await ranks;
  for (const o of outs) expect(o.norms).toEqual(outs[0]!.norms);
  const diffs = { loss: 0, norm: 0, param: 0 };
  diffs.loss = maxDiff(ref.losses.map((_, i) => outs.reduce((a, o) => a + o.losses[i]!, 0) / size), ref.losses);
  diffs.norm = maxDiff(outs[0]!.norms, ref.norms);
  let experts = 0;
  for (const s of state.layout) {
    const want = Array.from(state.params.subarray(s.offset, s.offset + s.shape.reduce((a, b) => a * b, 1)));
    const isExpert = s.name.includes("_exps.");
    // Experts from the first ep group's ranks, in order; every other rank holding the same experts has the same bits.
    const got = isExpert ? outs.slice(0, ep).flatMap((o) => o.params[s.name]!) : outs[0]!.params[s.name]!;
    for (const o of outs) {
      if (isExpert) expect(o.params[s.name], `${s.name} on rank ${o.rank}`).toEqual(outs[o.rank % ep]!.params[s.name]);
      else expect(o.params[s.name], `${s.name} on rank ${o.rank}`).toEqual(got); // dense: the same bits on every rank
    }
    if (isExpert) experts++;
    diffs.param = Math.max(diffs.param, maxDiff(got, want));
  }
  expect(experts).toBe(6);
  console.log(`expert parallel ${size} ranks, ep ${ep}, ${steps} steps: max |difference| to the single process`, diffs);
  expect(diffs.loss).toBeLessThan(TOL.loss);
  expect(diffs.norm).toBeLessThan(TOL.norm);
  expect(diffs.param).toBeLessThan(TOL.param);
  // It trained: the loss fell, and an ep group's ranks hold different experts (each trained its own).
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  expect(mean(ref.losses.slice(-5))).toBeLessThan(mean(ref.losses.slice(0, 3)) - 0.15);
  expect(outs[0]!.params["blk.0.ffn_up_exps.weight"]).not.toEqual(outs[1]!.params["blk.0.ffn_up_exps.weight"]);
}
