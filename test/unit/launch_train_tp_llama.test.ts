// launch_train_tp_llama.test.ts: `kiln launch --nproc 2 -- kiln train` with `parallel: { tp: 2 }` on a Llama (its
// training layout's attn_q, attn_k and attn_v joined into the tensor-parallel attn_qkv, each rank its heads),
// real processes and sockets: the loss curve equals the single-process `kiln train` of the same config.
// Processes bounded and killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, rankPids } from "../helpers/launch_train.js";
import { launchedMatchesSingle, startParams } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** As launch_train_tp.test.ts's (which says why). Measured (cpu, tp 2, 10 steps, 2026-12-07): 0 (the same bits). */
const TOL = 2e-6;
const ITERS = 10;

describe("kiln train with parallel.tp under kiln launch", () => {
  it("Llama, tp 2: the single-process loss curve", async () => {
    const llama = (c: Record<string, unknown>) => {
      delete c.checkpoint;
      c.model = { arch: "llama", nLayers: 2, nHeads: 2, dim: 32, blockSize: 16 };
    };
    const { one, two, ref } = await launchedMatchesSingle({
      iters: ITERS, every: 100, edit: llama, parallel: { tp: 2 }, nproc: 2,
      layout: /parallel dp=1 tp=2 pp=1 ep=1 zero=0/, label: "Llama tp 2", tol: TOL,
    });
    expect(ref.get(ITERS)!).toBeLessThan(ref.get(1)! - 0.2); // it trained
    // Rank 0 trains its slices: fewer parameters than the whole model (replicated norms and biases stay whole).
    expect(startParams(two.stdout)).toBeLessThan(0.7 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 90_000);
});
