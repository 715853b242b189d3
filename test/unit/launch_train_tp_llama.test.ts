// launch_train_tp_llama.test.ts: `kiln launch --nproc 2 -- kiln train` with `parallel: { tp: 2 }` on a Llama (its
// training layout's attn_q, attn_k and attn_v joined into the tensor-parallel attn_qkv, each rank its heads), real
// processes, sockets and checkpoint files: the loss curve equals the single-process `kiln train` of the same config
// (started once, in beforeAll); and its checkpoints are in the single process's form (the ranks' slices gathered,
// attn_qkv split back into attn_q, attn_k, attn_v): stopped at step 5, a checkpoint resumes both as a single
// process (no parallel: section) and as tp 2 again (each rank cutting its slices from it), and both continue that
// single-process run's curve. Processes bounded and killed in afterEach, temp dirs removed.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, events, rankPids } from "../helpers/launch_train.js";
import type { SharedSingle } from "../helpers/launch_parallel_train.js";
import { editedRun, launchedMatchesSingle, lossCurve, maxLossDiff, resumeBothWays, sharedSingle, startParams, trainLaunched } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** As launch_train_tp.test.ts's (which says why). Measured (cpu, tp 2, 10 steps, 2026-12-07): 0 (the same bits), also on both resumes. */
const TOL = 2e-6;
const ITERS = 10;
const llama = (c: Record<string, unknown>) => (c.model = { arch: "llama", nLayers: 2, nHeads: 2, dim: 32, blockSize: 16 });
// NOTE: the reference writes no checkpoints (they would not change its curve); the tp runs' are the ones resumed.
const llamaNoCheckpoint = (c: Record<string, unknown>) => (llama(c), delete c.checkpoint);

describe("kiln train with parallel.tp under kiln launch, Llama", () => {
  let reference: SharedSingle;
  beforeAll(() => {
    reference = sharedSingle({ iters: ITERS, every: 100 }, llamaNoCheckpoint);
  });

  it("Llama, tp 2: the single-process loss curve", async () => {
    const { one, two, ref } = await launchedMatchesSingle({
      iters: ITERS, every: 100, edit: llamaNoCheckpoint, parallel: { tp: 2 }, nproc: 2, reference,
      layout: /parallel dp=1 tp=2 pp=1 ep=1 zero=0/, label: "Llama tp 2", tol: TOL,
    });
    expect(ref.get(ITERS)!).toBeLessThan(ref.get(1)! - 0.2); // it trained
    // Rank 0 trains its slices: fewer parameters than the whole model (replicated norms and biases stay whole).
    expect(startParams(two.stdout)).toBeLessThan(0.7 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 90_000);

  it("Llama tp 2 stopped at step 5 resumes as one process and as tp 2 on the straight run's curve", async () => {
    const tp = editedRun({ iters: ITERS, every: 5 }, (c) => (llama(c), (c.parallel = { tp: 2 })));
    const [ref, first] = await Promise.all([reference.ended, trainLaunched(2, tp.config, 50_000, "--max-iters", "5")]);
    expect(ref.code, ref.stderr).toBe(0);
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(join(tp.dir, "ck", "step-000005")).sort()).toEqual(["manifest.json", "model.safetensors", "optimizer.safetensors", "state.json"]);
    // The same checkpoint twice: one copy for a single process (the config without its parallel: section), one for tp 2.
    const again = editedRun({ iters: ITERS, every: 5 }, (c) => (llama(c), (c.parallel = { tp: 2 })));
    const [one, two] = await resumeBothWays(tp, again, 2, 50_000);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    const want = lossCurve(ref.stdout);
    expect(want.size).toBe(ITERS);
    const after5 = new Map([...want].filter(([s]) => s > 5));
    for (const [who, out] of [["one process", one.stdout], ["tp 2", two.stdout]] as const) {
      expect(events(out).find((e) => e.kind === "resume")).toMatchObject({ step: 5 });
      expect([...lossCurve(out).keys()]).toEqual([6, 7, 8, 9, 10]);
      const diff = maxLossDiff(after5, lossCurve(out));
      console.log(`tp 2 checkpoint resumed as ${who}: max |loss difference| to the straight run over steps 6-10 ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(TOL);
    }
    expect(maxLossDiff(new Map([...want].filter(([s]) => s <= 5)), lossCurve(first.stdout))).toBeLessThan(TOL);
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 120_000);
});
