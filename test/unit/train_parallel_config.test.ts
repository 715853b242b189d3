// train_parallel_config.test.ts: issue 11 item 3: a training config's `parallel:` section, fixed
// ({ dp, tp, pp, ep, zero }) or `auto` (the capacity planner picks for the world size), checked
// against the world size and the model with errors naming the field; and the output of
// `kiln plan train --emit layout` taken as that section. Expectations are worked out by hand.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findGpu, findPreset, planTraining } from "../../src/plan/index.js";
import { checkParallelLayout, parseTrainConfig } from "../../src/train/index.js";
import { parallelBlock } from "../../src/cli/plan_flags.js";
import { hostSpec, notYetParallel, resolveTrainParallel } from "../../src/cli/train_parallel.js";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";

const base = {
  model: { arch: "llama", nLayers: 4, nHeads: 4, dim: 64, blockSize: 32 },
  data: { path: "input.txt", tokenizer: "char" },
  train: { batchSize: 8, iters: 10 },
  optimizer: { kind: "adamw", lr: 1e-3 },
  schedule: { kind: "constant" },
};
const withParallel = (parallel: unknown, o: Record<string, unknown> = {}) => parseTrainConfig({ ...base, ...o, parallel }, "c.json");

describe("the parallel: section of a training config", () => {
  it("reads a fixed layout (defaults 1 and ZeRO 0) and auto; a bad value names the field", () => {
    expect(withParallel({ dp: 2, zero: 1 }).parallel).toEqual({ dp: 2, tp: 1, pp: 1, ep: 1, zero: 1 });
    expect(withParallel("auto").parallel).toBe("auto");
    expect(parseTrainConfig(base, "c.json").parallel).toBeUndefined();
    expect(() => withParallel({ dp: 0 })).toThrow(/parallel/);
    expect(() => withParallel({ dp: 2, zero: 4 })).toThrow(/parallel/);
    expect(() => withParallel("fast")).toThrow(/parallel: must be "auto" or \{ dp, tp, pp, ep, zero \}/);
  });

  it("checks the layout against the world size and the model, naming the field", () => {
    const cfg = withParallel({ dp: 2, tp: 2 });
    const l = cfg.parallel as Exclude<typeof cfg.parallel, "auto" | undefined>;
    expect(checkParallelLayout(l, 4, cfg, "c.json")).toEqual(l);
    expect(() => checkParallelLayout(l, 8, cfg, "c.json")).toThrow(/c\.json: parallel\.dp 2 x parallel\.tp 2 x parallel\.pp 1 = 4, but the world size is 8/);
    expect(() => checkParallelLayout({ ...l, dp: 1, tp: 8 }, 8, cfg, "c.json")).toThrow(/parallel\.tp 8 must divide model\.nHeads \(4\)/);
    expect(() => checkParallelLayout({ ...l, dp: 1, tp: 1, pp: 8 }, 8, cfg, "c.json")).toThrow(/parallel\.pp 8 is more stages than model\.nLayers \(4\)/);
    expect(() => checkParallelLayout({ ...l, dp: 4, tp: 1, ep: 3 }, 4, cfg, "c.json")).toThrow(/parallel\.ep 3 must divide parallel\.dp 4/);
    const odd = withParallel({ dp: 3 }, { train: { batchSize: 8, iters: 10 } });
    expect(() => checkParallelLayout({ ...l, dp: 3, tp: 1 }, 3, odd, "c.json")).toThrow(/train\.batchSize 8 must be a multiple of parallel\.dp 3/);
    expect(() => checkParallelLayout({ ...l, dp: 1, tp: 4, zero: 1 }, 4, cfg, "c.json")).toThrow(/parallel\.zero 1 .* parallel\.dp is 1/);
    // a pipeline's micro-batches (default 2 x pp) must split each replica's rows evenly
    expect(checkParallelLayout({ ...l, dp: 2, tp: 1, pp: 2 }, 4, cfg, "c.json")).toEqual({ ...l, dp: 2, tp: 1, pp: 2 });
    expect(() => checkParallelLayout({ ...l, dp: 2, tp: 1, pp: 4 }, 8, cfg, "c.json")).toThrow(/parallel\.microBatches 8 \(the default, 2 x parallel\.pp\) must divide each replica's 4 rows/);
    expect(() => checkParallelLayout({ ...l, dp: 1, tp: 1, pp: 2, microBatches: 3 }, 2, cfg, "c.json")).toThrow(/parallel\.microBatches 3 must divide each replica's 8 rows/);
    expect(withParallel({ pp: 2, microBatches: 2 }).parallel).toMatchObject({ pp: 2, microBatches: 2 });
  });

  it("auto asks the planner: a small model takes data parallel; a 70B one is sharded", () => {
    const small = resolveTrainParallel(withParallel("auto"), "c.json", { worldSize: 2, vocabSize: 256 })!;
    expect(small.layout.dp * small.layout.tp * small.layout.pp).toBe(2);
    expect(small.from).toMatch(/parallel: auto, planned for 2 rank\(s\)/);
    // A Llama-2-70B-shaped model on 64 H100s: 69B parameters x 18 bytes of training state = 1.24 TB,
    // 19 GB per GPU even spread over all 64: it must be split by tp/pp or ZeRO-3, never replicated.
    const big = withParallel("auto", {
      model: { arch: "llama", nLayers: 80, nHeads: 64, nKvHeads: 8, dim: 8192, hiddenDim: 28672, blockSize: 4096 },
      train: { batchSize: 256, iters: 10 },
    });
    const l = resolveTrainParallel(big, "c.json", { worldSize: 64, vocabSize: 32000, gpu: findGpu("h100") })!.layout;
    expect(l.dp * l.tp * l.pp).toBe(64);
    expect(l.tp * l.pp > 1 || l.zero === 3).toBe(true);
    // kiln train runs dp x tp x pp with ZeRO-1/2 (4D), ZeRO-3 and ep beside dp: anything else is a clear "not yet" naming it
    expect(notYetParallel(l, "c.json") ?? "").not.toMatch(/parallel\.(tp|pp) \d+ with/);
    expect(notYetParallel({ dp: 2, tp: 2, pp: 2, ep: 1, zero: 3 }, "c.json")).toMatch(/not yet: kiln train does not run parallel\.zero 3 with parallel\.pp 2/);
    expect(notYetParallel({ dp: 2, tp: 2, pp: 2, ep: 1, zero: 1 }, "c.json", { checkpoint: true })).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 2, pp: 2, ep: 1, zero: 2 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 4, tp: 1, pp: 1, ep: 1, zero: 0 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 1, pp: 1, ep: 1, zero: 2 }, "c.json", { checkpoint: true })).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 2, pp: 1, ep: 1, zero: 0 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 1, pp: 1, ep: 1, zero: 3 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 1, pp: 1, ep: 1, zero: 3 }, "c.json", { precision: "bf16", sample: true })).toMatch(/^c\.json: not yet: .*parallel\.zero 3 with precision bf16 \(ZeRO-3 trains fp32\), parallel\.zero 3 with eval\.sample/);
    expect(notYetParallel({ dp: 2, tp: 1, pp: 1, ep: 1, zero: 3 }, "c.json", { precision: "fp32", checkpoint: true })).toBeUndefined();
    expect(notYetParallel({ dp: 1, tp: 1, pp: 2, ep: 1, zero: 0 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 1, tp: 2, pp: 2, ep: 1, zero: 0 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 1, pp: 2, ep: 1, zero: 1 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 1, pp: 2, ep: 2, zero: 0 }, "c.json")).toMatch(/not yet: .*parallel\.pp 2 with parallel\.ep 2 \(the stages are dense model pieces, not MoE layers\)/);
    expect(notYetParallel({ dp: 1, tp: 1, pp: 2, ep: 1, zero: 0 }, "c.json", { checkpoint: true })).toBeUndefined();
    expect(notYetParallel({ dp: 1, tp: 1, pp: 2, ep: 1, zero: 0 }, "c.json", { checkpoint: true, sample: true })).toMatch(/not yet: .*parallel\.pp 2 with eval\.sample/);
    expect(notYetParallel({ dp: 1, tp: 1, pp: 2, ep: 1, zero: 0 }, "c.json", { moe: true, export: true })).toMatch(/parallel\.pp 2 with model\.moe .*parallel\.pp 2 with an export section/);
    expect(notYetParallel({ dp: 2, tp: 2, pp: 1, ep: 1, zero: 1 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 2, pp: 1, ep: 1, zero: 3 }, "c.json")).toMatch(/not yet: .*parallel\.zero 3 with parallel\.tp 2/);
    expect(notYetParallel({ dp: 1, tp: 2, pp: 1, ep: 1, zero: 0 }, "c.json", { checkpoint: true })).toBeUndefined();
    expect(notYetParallel({ dp: 1, tp: 2, pp: 1, ep: 1, zero: 0 }, "c.json", { moe: true })).toMatch(/not yet: .*parallel\.tp 2 with model\.moe/);
    expect(notYetParallel({ dp: 2, tp: 1, pp: 1, ep: 2, zero: 0 }, "c.json")).toBeUndefined();
    expect(notYetParallel({ dp: 2, tp: 1, pp: 1, ep: 2, zero: 1 }, "c.json")).toMatch(/not yet: .*parallel\.ep 2 with parallel\.zero 1/);
    expect(notYetParallel({ dp: 2, tp: 2, pp: 1, ep: 2, zero: 0 }, "c.json")).toMatch(/not yet: .*parallel\.ep 2 with parallel\.tp 2/);
    expect(notYetParallel({ dp: 2, tp: 1, pp: 1, ep: 2, zero: 0 }, "c.json", { checkpoint: true })).toMatch(/not yet: .*checkpoints of parallel\.ep 2/);
    // the host spec divides this machine's memory among the ranks
    expect(hostSpec(4, 64e9).memoryBytes).toBe(16e9);
  });

  it("takes kiln plan train's --emit layout block as its parallel: section", () => {
    const plan = planTraining({ model: findPreset("llama2-7b")!, gpu: findGpu("h100"), gpus: 16, tokens: 1e12, fixed: { tp: 2, pp: 2, zero: 1 } });
    const block = parallelBlock(plan.best!);
    const cfg = parseTrainConfig({
      ...base, model: { arch: "llama", nLayers: 32, nHeads: 32, dim: 4096, hiddenDim: 11008, blockSize: 4096 }, train: { batchSize: 64, iters: 10 }, ...block,
    }, "c.json");
    expect(cfg.parallel).toEqual({ dp: 4, tp: 2, pp: 2, ep: 1, zero: 1 });
    expect(() => checkParallelLayout(cfg.parallel as { dp: number; tp: number; pp: number; ep: number; zero: 0 | 1 | 2 | 3 }, 16, cfg, "c.json")).not.toThrow();
  });

  it("kiln train refuses a layout that is not the world size, before it loads anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-parallel-"));
    try {
      writeFileSync(join(dir, "input.txt"), "hello world\n".repeat(100));
      writeFileSync(join(dir, "c.json"), JSON.stringify({ ...base, parallel: { dp: 2 } }));
      const env = { ...process.env };
      for (const k of ["RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"]) delete env[k];
      const r = await runProcess(process.execPath, [KILN_BIN, "train", "--config", join(dir, "c.json"), "--no-track"], { env, timeoutMs: 40_000 });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/parallel\.dp 2 x parallel\.tp 1 x parallel\.pp 1 = 2, but the world size is 1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
