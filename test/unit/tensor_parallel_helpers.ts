// tensor_parallel_helpers.ts: what the tensor-parallel equivalence tests share: starting the ranks
// (tensor_parallel_child.ts, real OS processes on the `local` communicator; every child killed in afterEach
// and bounded by its own timer), the single-process reference run, and the comparison with its tolerance.

import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { getBackend } from "../../src/index.js";
import { runRanks as runRankScript } from "../helpers/rank_processes.js";
import { Trainer } from "../../src/train/trainer.js";
import { trainerOptions, wholeRun } from "./tensor_parallel_setup.js";

const CHILD = fileURLToPath(new URL("./tensor_parallel_child.ts", import.meta.url));
/** Kill what is left (call in afterEach). */
export { killRanks as killChildren } from "../helpers/rank_processes.js";

export interface RankOut {
  rank: number;
  coords: { dp: number; tp: number };
  losses: number[];
  norms: number[];
  params: number[];
}

/** Starts `size` ranks with `env` and resolves with each one's JSON line (a failing rank fails with its stderr). */
export const runRanks = (size: number, env: Record<string, string>): Promise<RankOut[]> => runRankScript<RankOut>(CHILD, size, () => env);

/** The single-process run: the whole model, the whole global batch, the same options. */
export async function reference(arch: "gpt2" | "llama", steps: number) {
  const backend = await getBackend("cpu");
  const { model, global } = await wholeRun(backend, arch);
  const t = new Trainer(model, global, trainerOptions());
  const losses: number[] = [];
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = await t.trainStep();
    losses.push(s.loss);
    norms.push(s.gradNorm);
  }
  const params: number[] = [];
  /** Flat ranges of GPT-2's key biases (see TOL). */
  const keyBias: [number, number][] = [];
  for (const [name, p] of model.parameters()) {
    if (name.endsWith("attn_qkv.bias")) keyBias.push([params.length + p.numel / 3, params.length + (2 * p.numel) / 3]);
    params.push(...((await p.data()) as Float32Array));
  }
  return { losses, norms, params, keyBias };
}

/**
 * The tolerance against the single-process run. Tensor parallel sums each split matmul's products (and the
 * cross-entropy's exp sums, the norm's squares) in another order than the single process, so every step's
 * gradient differs in its last bits (~1e-7 relative); AdamW divides by sqrt(v), so these differences move
 * updates of near-zero gradients, and they accumulate. Measured on this machine (cpu, 50 steps, max |difference|),
 * 2026-12-07: GPT-2 tp2: loss 7.2e-7, norm 1.5e-5, parameters 1.0e-6; Llama tp2: loss 2.4e-7, norm 1.5e-6, parameters 3.4e-6;
 * Llama dp2 x tp2: parameters 3.9e-6; GPT-2 tp4: norm 4.3e-6. The bounds leave about 3-10x room.
 * NOTE: GPT-2's key biases are the exception: their exact gradient is 0 (adding b to every key adds q.b
 * to a whole row of scores, which softmax ignores), so their computed gradient is rounding noise, which
 * AdamW turns into updates of up to lr whose sign the summation order decides: they drift apart by up to
 * 3e-4 over 50 steps (GPT-2 tp2, tp4, sequence parallel), and get a bound of their own.
 */
export const TOL = { loss: 2e-6, norm: 1e-4, param: 3e-5, keyBias: 2e-3 };

const maxDiff = (a: readonly number[], b: readonly number[], skip: readonly [number, number][] = [], only = false) => {
  expect(a.length).toBe(b.length);
  const inSkip = (i: number) => skip.some(([s, e]) => i >= s && i < e);
  let m = 0;
  for (let i = 0; i < a.length; i++) if (inSkip(i) === only) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** Checks the ranks against the reference: same on every rank, equal to the single process within TOL. */
export function expectEquivalent(label: string, outs: RankOut[], ref: Awaited<ReturnType<typeof reference>>): void {
  for (const o of outs) {
    expect(o.params, `rank ${o.rank}'s gathered parameters`).toEqual(outs[0]!.params);
    expect(o.norms, `rank ${o.rank}'s norms`).toEqual(outs[0]!.norms);
  }
  // Each rank's loss is its dp group's rows' (the same on the tp ranks of a group): their mean is the global batch's.
  const meanLoss = ref.losses.map((_, i) => outs.reduce((s, o) => s + o.losses[i]!, 0) / outs.length);
  const diffs = {
    loss: maxDiff(meanLoss, ref.losses),
    norm: maxDiff(outs[0]!.norms, ref.norms),
    param: maxDiff(outs[0]!.params, ref.params, ref.keyBias),
    keyBias: maxDiff(outs[0]!.params, ref.params, ref.keyBias, true),
  };
  console.log(`${label}: max |difference| to the single process`, diffs);
  expect(diffs.loss).toBeLessThan(TOL.loss);
  expect(diffs.norm).toBeLessThan(TOL.norm);
  expect(diffs.param).toBeLessThan(TOL.param);
  expect(diffs.keyBias).toBeLessThan(TOL.keyBias);
  // The run did train.
  expect(ref.losses.at(-1)!).toBeLessThan(ref.losses[0]! - 0.2);
}
