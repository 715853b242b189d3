// plan_train.test.ts: the training planner's formulas against hand-computed cases (ring all-reduce,
// pipeline bubble, which link a group uses, bytes per GPU under ZeRO and checkpointing) and its
// decisions: a plan for a 7B model, an impossible request that names the failed constraint, a
// missed target time.

import { describe, expect, it } from "vitest";
import type { TrainLayout } from "../../src/plan/index.js";
import {
  allGatherSeconds, allToAllSeconds, countParams, estimateStep, findGpu, findPreset, groupLink, pipelineBubble, planTraining, ringAllReduceSeconds,
  trainMemoryPerGpu,
} from "../../src/plan/index.js";

const h100 = findGpu("h100");
const layout = (o: Partial<TrainLayout>): TrainLayout => ({
  tp: 1, pp: 1, dp: 1, ep: 1, zero: 0, checkpointing: false, offload: false, microBatch: 1, microBatches: 1, seqLen: 2048, ...o,
});

describe("plan training formulas", () => {
  it("ring all-reduce moves 2(n-1)/n of the bytes over each GPU's link", () => {
    expect(ringAllReduceSeconds(1e9, 8, 450e9)).toBeCloseTo(((2 * 7) / 8) * (1e9 / 450e9), 12); // 3.89 ms
    expect(ringAllReduceSeconds(1e9, 1, 450e9)).toBe(0);
    expect(allGatherSeconds(8e9, 4, 50e9)).toBeCloseTo((3 / 4) * (8e9 / 50e9), 12);
    expect(allToAllSeconds(1e9, 2, 50e9)).toBeCloseTo(0.01, 12);
  });

  it("the 1F1B pipeline bubble is (p-1)/(m+p-1)", () => {
    expect(pipelineBubble(4, 12)).toBe(3 / 15);
    expect(pipelineBubble(1, 7)).toBe(0);
    expect(pipelineBubble(16, 1)).toBe(15 / 16);
  });

  it("groups inside a node use NVLink, groups that cross nodes the network", () => {
    expect(groupLink(h100, 1, 8).name).toBe("NVLink 4");
    expect(groupLink(h100, 8, 128).name).toBe("network"); // data parallel across nodes when tp = 8
    expect(groupLink(h100, 2, 4).name).toBe("NVLink 4");
    expect(groupLink(h100, 2, 8).bytesPerS).toBe(50e9);
    expect(groupLink(findGpu("gb200"), 8, 9).name).toBe("NVLink 5"); // 72 GPUs share an NVL72 domain
  });

  it("keeps 18 bytes per parameter under mixed-precision Adam (fp32 gradient buffer) and shards them with ZeRO", () => {
    const m = findPreset("llama2-7b")!;
    const n = countParams(m).total;
    const z0 = trainMemoryPerGpu(m, layout({}));
    expect(z0.weights).toBe(2 * n);
    expect(z0.grads).toBe(4 * n);
    expect(z0.optimizer).toBe(12 * n);
    const z1 = trainMemoryPerGpu(m, layout({ dp: 8, zero: 1 }));
    expect(z1.optimizer).toBe((12 * n) / 8);
    expect(z1.grads).toBe(4 * n);
    const z2 = trainMemoryPerGpu(m, layout({ dp: 8, zero: 2 }));
    expect(z2.grads).toBe((4 * n) / 8);
    const z3 = trainMemoryPerGpu(m, layout({ dp: 8, zero: 3 }));
    const layer = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096;
    expect(z3.weights).toBe((2 * n) / 8 + 2 * 2 * layer); // its shard, plus two gathered layers
    const off = trainMemoryPerGpu(m, layout({ dp: 8, zero: 2, offload: true }));
    expect(off.optimizer).toBe(0);
    expect(off.hostOptimizer).toBe((12 * n) / 8);
  });

  it("counts activations per token and layer, and what checkpointing keeps", () => {
    const m = findPreset("llama2-7b")!;
    const h = 4096;
    // norm inputs 2h, QKV input h, Q K V O 4h (multi-head), MLP input h, gate/up/product 3 x 11008; bf16
    const perTokenLayer = 2 * (2 * h + h + 4 * h + h + 3 * 11008);
    const logits = 2048 * 32000 * 4;
    expect(trainMemoryPerGpu(m, layout({})).activations).toBe(32 * 2048 * perTokenLayer + logits);
    expect(trainMemoryPerGpu(m, layout({ checkpointing: true })).activations).toBe(32 * 2048 * 2 * h + 2048 * perTokenLayer + logits);
    // tensor parallelism with sequence parallelism divides them all by tp
    expect(trainMemoryPerGpu(m, layout({ tp: 4 })).activations).toBe((32 * 2048 * perTokenLayer + logits) / 4);
  });

  it("a step adds compute, exposed communication and the bubble; MFU is model FLOPs over peak", () => {
    const m = findPreset("llama2-7b")!;
    const s = estimateStep(m, h100, layout({ tp: 8, pp: 2, dp: 4, microBatches: 6 }));
    expect(s.bubbleFraction).toBe(1 / 7);
    expect(s.comm.map((c) => [c.kind, c.link])).toEqual([["tensor", "NVLink 4"], ["pipeline", "network"], ["data", "network"]]);
    expect(s.tokensPerStep).toBe(6 * 2048 * 4);
    expect(s.mfu).toBeCloseTo(s.modelFlopsPerStep / (s.stepSeconds * 64 * h100.bf16Flops), 12);
    expect(s.mfu).toBeLessThan(0.6);
  });
});

describe("planTraining", () => {
  it("plans a 7B model on 64 H100s, explains the choice and prices it", () => {
    const p = planTraining({ model: findPreset("llama2-7b")!, gpu: h100, gpus: 64, tokens: 2e12, targetDays: 60 });
    const b = p.best!;
    expect(b.fits).toBe(true);
    expect(b.memory.total).toBeLessThanOrEqual(0.9 * 80e9);
    expect(b.layout.tp * b.layout.pp * b.layout.dp).toBe(64);
    expect(b.step.mfu).toBeGreaterThan(0.3);
    expect(b.step.mfu).toBeLessThan(0.7);
    expect(b.gpuHours).toBeCloseTo((b.days * 24) * 64, 6);
    expect(b.cost).toBeCloseTo(b.gpuHours * 3, 6);
    expect(b.costPerMillionTokens).toBeCloseTo(b.cost / 2e6, 9);
    expect(p.ranked[0]).toBe(b);
    for (let i = 1; i < p.ranked.length; i++) expect(p.ranked[i]!.tokensPerSecond).toBeLessThanOrEqual(p.ranked[i - 1]!.tokensPerSecond);
    expect(p.reasons.join("\n")).toMatch(/slower|as fast/);
    expect(p.meetsTarget).toBe(true);
  });

  it("an impossible request says which constraint failed and by how much", () => {
    const p = planTraining({ model: findPreset("llama3-405b")!, gpu: findGpu("a100-40"), gpus: 8, tokens: 1e12 });
    expect(p.best).toBeUndefined();
    expect(p.failure).toMatch(/^memory: no layout fits on 8 x a100-40\. The smallest \(.*\) needs .* per GPU, .* over the 36.0 GB usable/);
  });

  it("a missed target time says by how much and how many GPUs would meet it", () => {
    const p = planTraining({ model: findPreset("llama2-7b")!, gpu: h100, gpus: 64, tokens: 2e12, targetDays: 10 });
    expect(p.meetsTarget).toBe(false);
    expect(p.failure).toMatch(/^target time: the fastest layout takes [\d.]+ days, [\d.]+ days \(\d+%\) over the 10-day target; re-planned, [\d,]+ h100 GPUs \(\d+ nodes, the fewest whole nodes that do\) meet it: tp=/);
  });

  it("a batch too small for the cluster is reported, not divided by zero", () => {
    // GPT-2's 12 heads and 12 layers allow at most tp=4 x pp=8 here, leaving dp >= 32 for 16 sequences
    const p = planTraining({ model: findPreset("gpt2")!, gpu: h100, gpus: 1024, tokens: 1e9, batchTokens: 16 * 1024 });
    expect(p.best).toBeUndefined();
    expect(p.failure).toMatch(/global batch of 16384 tokens is 16 sequences of 1024/);
  });
});
