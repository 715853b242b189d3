// launch_train_tp_pp.test.ts: `kiln launch --nproc 4 -- kiln train` with `parallel: { tp: 2, pp: 2 }` on a Llama (its
// separate head: the last stage's loss vocab-parallel over its tp slices of output.weight; its file layout's attn_q,
// attn_k, attn_v joined into each stage's tensor-parallel attn_qkv, split back in the checkpoint). Real processes and
// sockets. The loss curve and the final weights and AdamW state (the tp slices and the stages gathered into the
// single process's checkpoint) equal the single-process `kiln train` of the same config. Processes bounded and
// killed in afterEach, temp dirs removed.

import { afterEach, describe, expect, it } from "vitest";
import { waitDead } from "../helpers/launch_procs.js";
import { cleanUpLaunches, rankPids } from "../helpers/launch_train.js";
import { launchedMatchesSingleWeights, startParams } from "../helpers/launch_parallel_train.js";

afterEach(cleanUpLaunches);

/** f32 summation orders only (tp's split matmuls, the stages' and the norm's sums). Measured: docs/distributed.md "## 4D". */
const TOL = 2e-6;
const WEIGHT_TOL = 2e-5;
const ITERS = 8;

describe("kiln train with parallel tp x pp under kiln launch", () => {
  it("Llama, tp 2 x pp 2 on 4 ranks: the single-process loss curve and final weights", async () => {
    const llama = (c: Record<string, unknown>) => (c.model = { arch: "llama", nLayers: 2, nHeads: 2, dim: 32, blockSize: 16 });
    const { one, two } = await launchedMatchesSingleWeights({
      iters: ITERS, every: ITERS, edit: llama, parallel: { tp: 2, pp: 2 }, nproc: 4,
      layout: /parallel dp=1 tp=2 pp=2 ep=1 zero=0 microBatches=4/, label: "Llama tp 2 x pp 2", tol: TOL, weightTol: WEIGHT_TOL, limitMs: 120_000,
    });
    expect(startParams(two.stdout)).toBeLessThan(0.5 * startParams(one.stdout));
    expect(await waitDead([...rankPids])).toEqual([]);
  }, 150_000);
});
