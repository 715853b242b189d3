// plan_published.test.ts: issue 15 "what to add": the fixed-layout mode against published training
// throughput (Megatron-LM's Table 1, Llama 3 405B's Table 4), and the interleaved pipeline schedule it
// needs for Llama 3. Published throughput is converted here by hand, from the papers' own formulas.

import { describe, expect, it } from "vitest";
import { MEGATRON_TABLE1, publishedRuns } from "../../src/plan/published_runs.js";
import { estimateStep, findGpu, findPreset, pipelineBubble, planTraining } from "../../src/plan/index.js";

describe("fixed layouts against published runs", () => {
  const runs = publishedRuns();

  it("converts Megatron's TFLOP/s per GPU with its equation 3 (recomputation included)", () => {
    // 1T row: 163 TFLOP/s on 3072 GPUs; 96 l h^2 (1 + s/6h + V/16lh) FLOPs a token, l 128, h 25600
    const perToken = 96 * 128 * 25600 ** 2 * (1 + 2048 / (6 * 25600) + 51200 / (16 * 128 * 25600));
    const row = runs.find((r) => r.run.startsWith("Megatron-LM GPT 1008B"))!;
    expect(row.publishedTokensPerS).toBeCloseTo((163e12 * 3072) / perToken, 3);
    expect(row.layout).toBe("tp=8 pp=64 dp=6 zero=0 ckpt mb=1x512"); // 3072 sequences over dp 6
  });

  it("lands within 15% of Megatron's throughput on 9 of its 10 runs; the 1.7B run is 15.3% over", () => {
    const megatron = runs.slice(0, MEGATRON_TABLE1.length);
    for (const r of megatron) expect(Math.abs(r.ratio - 1), r.run).toBeLessThan(0.16);
    expect(megatron.filter((r) => Math.abs(r.ratio - 1) > 0.15).map((r) => r.run.split(",")[0])).toEqual(["Megatron-LM GPT 1.7B"]);
  });

  it("lands within 15% of the paper's GPT-3 175B estimate: 34 days for 300B tokens on 1024 A100s", () => {
    const gpt3 = runs[MEGATRON_TABLE1.length]!;
    // equation 4: 8 T P / (n X) seconds, T = 300B tokens, P = 175B, n = 1024, X = 140 TFLOP/s
    const seconds = (8 * 300e9 * 175e9) / (1024 * 140e12);
    expect(seconds / 86400).toBeCloseTo(33.9, 1);
    expect(gpt3.publishedTokensPerS).toBeCloseTo(300e9 / seconds, 3);
    expect(Math.abs(gpt3.ratio - 1)).toBeLessThan(0.15);
  });

  it("lands within 15% of Llama 3 405B's MFU at its published layouts, and says where memory disagrees", () => {
    const llama = runs.slice(MEGATRON_TABLE1.length + 1);
    expect(llama.map((r) => r.layout)).toEqual(["tp=8 pp=16 dp=64 zero=1 v=4 mb=1x32", "tp=8 pp=16 dp=128 zero=1 v=4 mb=1x16"]);
    for (const r of llama) {
      expect(Math.abs(r.ratio - 1), r.run).toBeLessThan(0.15);
      expect(r.note).toMatch(/over the 72.0 GB usable/);
    }
  });
});

describe("the interleaved pipeline schedule", () => {
  it("divides the bubble's idle slots by v", () => {
    expect(pipelineBubble(16, 16, 1)).toBeCloseTo(15 / 31, 12);
    expect(pipelineBubble(16, 16, 4)).toBeCloseTo(3.75 / 19.75, 12);
    const m = findPreset("llama3-405b")!;
    const l = { tp: 8, pp: 16, dp: 128, ep: 1, zero: 1 as const, checkpointing: true, offload: false, microBatch: 1, microBatches: 16, seqLen: 8192 };
    const one = estimateStep(m, findGpu("h100"), l);
    const four = estimateStep(m, findGpu("h100"), { ...l, interleave: 4 });
    // 15 idle slots become 3.75; each slot is a little longer (4x the stage-boundary sends)
    expect(four.bubbleSeconds / one.bubbleSeconds).toBeGreaterThan(0.25);
    expect(four.bubbleSeconds / one.bubbleSeconds).toBeLessThan(0.26);
    expect(four.stepSeconds).toBeLessThan(one.stepSeconds);
  });

  it("is a fixed value that needs pipeline stages", () => {
    const req = { model: findPreset("llama-70b")!, gpu: findGpu("h100"), gpus: 64, tokens: 1e12 };
    expect(() => planTraining({ ...req, fixed: { interleave: 2 } })).toThrow(/--interleave: 2 model chunks per GPU need pipeline stages/);
    expect(() => planTraining({ ...req, fixed: { tp: 8, pp: 8, interleave: 20 } })).toThrow(/--interleave: 8 stages x 20 chunks is more than .*80 layers/);
    const p = planTraining({ ...req, fixed: { tp: 8, pp: 4, interleave: 2, zero: 1 } });
    expect(p.best!.layout.interleave).toBe(2);
  });
});
