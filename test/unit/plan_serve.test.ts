// plan_serve.test.ts: the serving planner and planServing() (what `kiln serve --kv-cache auto` uses)
// against hand-computed cases: KV blocks after weights and workspace, the batch they allow, the
// decode bound from memory bandwidth, and the failures (too little memory, unmet latency targets,
// fp8 on a GPU without fp8 tensor cores).

import { describe, expect, it } from "vitest";
import type { PlanModel } from "../../src/plan/index.js";
import { PlanInputError, countParams, findGpu, findPreset, planServe, planServing } from "../../src/plan/index.js";

const tiny: PlanModel = {
  name: "tiny", family: "llama", dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, hiddenDim: 128, vocabSize: 100, maxSeqLen: 256, tiedEmbeddings: false,
};

describe("planServing (kiln serve's auto settings)", () => {
  it("fills 0.9 of the device after the weights and a step's workspace, by hand", () => {
    expect(countParams(tiny).total).toBe(86848);
    const p = planServing({ config: tiny, deviceMemoryBytes: 10e6, kvBytesPerElement: 4 });
    const weights = 86848 * 4;
    // workspace: 256 tokens x (832 activation elements x 4 bytes + 100 fp32 logits)
    const workspace = 256 * (832 * 4 + 4 * 100);
    const bytesPerBlock = 16 * 2 * 2 * 2 * 16 * 4; // tokens x layers x (K, V) x kv heads x head dim x bytes
    expect(p.weightsBytes).toBe(weights);
    expect(p.workspaceBytes).toBe(workspace);
    expect(p.bytesPerBlock).toBe(bytesPerBlock);
    expect(p.numBlocks).toBe(Math.floor((0.9 * 10e6 - weights - workspace) / bytesPerBlock)); // 939
    expect(p.kvTokens).toBe(p.numBlocks * 16);
    expect(p.maxNumSeqs).toBe(Math.floor(p.kvTokens / 256)); // every request may use the full context
    expect(p.maxNumBatchedTokens).toBe(256);
    expect(p.summary).toContain(`KV cache ${p.numBlocks} blocks x 16 tokens`);
  });

  it("admits more sequences for shorter expected requests, at most 256", () => {
    const p = planServing({ config: tiny, deviceMemoryBytes: 10e6, kvBytesPerElement: 4, expectedTokensPerSeq: 100 });
    expect(p.maxNumSeqs).toBe(Math.floor(p.kvTokens / 100));
    expect(planServing({ config: tiny, deviceMemoryBytes: 1e9, kvBytesPerElement: 4, expectedTokensPerSeq: 16 }).maxNumSeqs).toBe(256);
  });

  it("stops at what 256 full-context requests can use, and at the largest buffer", () => {
    expect(planServing({ config: tiny, deviceMemoryBytes: 1e12 }).numBlocks).toBe(256 * 16);
    // one layer's K cache is 2048 bytes per block (16 tokens x 2 heads x 16 x 4 bytes)
    expect(planServing({ config: tiny, deviceMemoryBytes: 10e6, kvBytesPerElement: 4, maxBufferBytes: 100_000 }).numBlocks).toBe(48);
  });

  it("accepts a ModelConfig as loaded and splits weights and KV heads by tensor parallelism", () => {
    const cfg = { arch: "llama", dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 100, maxSeqLen: 256, normEps: 1e-5, ropeTheta: 1e4, tiedEmbeddings: false } as const;
    const one = planServing({ config: cfg, deviceMemoryBytes: 10e6 });
    const two = planServing({ config: cfg, deviceMemoryBytes: 10e6, tensorParallel: 2 });
    expect(two.weightsBytes).toBe(one.weightsBytes / 2);
    expect(two.bytesPerBlock).toBe(one.bytesPerBlock / 2);
  });

  it("throws, saying how much is missing, when one full-context request does not fit", () => {
    expect(() => planServing({ config: tiny, deviceMemoryBytes: 1.5e6, kvBytesPerElement: 4 }))
      .toThrow(/planServing: KV cache: one request of 256 tokens needs 16 blocks \(131 KB\), but 0.9 x 1.50 MB less 347 KB of weights and 954 KB of step workspace leaves 48.2 KB/);
  });
});

describe("planServe", () => {
  const h100 = findGpu("h100");
  const req = { model: findPreset("llama2-7b")!, gpu: h100, precision: "bf16" as const, contextLength: 4096, requestsPerSecond: 10, promptTokens: 512, outputTokens: 256 };

  it("bounds decode at batch 1 by bandwidth / (weight bytes + the request's KV bytes)", () => {
    const p = planServe(req);
    const c = p.candidates.find((x) => x.tp === 1)!;
    const weights = 6_738_415_616 * 2;
    expect(c.decodeBoundTokensPerS).toBeCloseTo(3.35e12 / (weights + 768 * 524288), 6); // ~245 tokens/s
    // the planned step reads the weights and a mean context of 640 tokens at 80% of the bandwidth
    expect(c.stepBatch1S).toBeCloseTo((weights + 640 * 524288) / (3.35e12 * 0.8), 9);
    expect(p.candidates.find((x) => x.tp === 2)!.decodeBoundTokensPerS).toBeCloseTo(2 * c.decodeBoundTokensPerS, 6);
  });

  it("sizes instances for throughput, concurrency and one spare, and prices the tokens", () => {
    const p = planServe({ ...req, requestsPerSecond: 200 });
    const b = p.best!;
    expect(b.instances.throughput).toBe(Math.ceil(200 / b.requestsPerSecondPerInstance));
    expect(b.instances.spare).toBe(1);
    expect(b.instances.total).toBe(Math.max(b.instances.throughput, b.instances.concurrency) + 1);
    expect(b.gpus).toBe(b.instances.total * b.tp);
    expect(b.costPerMillionTokens).toBeCloseTo((b.gpus * 3) / (200 * 3600 * 768) * 1e6, 9);
    expect(b.maxBatch).toBe(Math.min(256, Math.floor(b.kvTokens / 768)));
    expect(b.auto!.numBlocks * 16).toBe(b.kvTokens);
  });

  it("a per-token target limits the batch, and one no degree can meet fails with the numbers", () => {
    const tight = planServe({ ...req, tpotTargetS: 0.006 });
    expect(tight.best!.stepMaxBatchS).toBeLessThanOrEqual(0.006);
    const impossible = planServe({ ...req, model: findPreset("llama3-70b")!, tpotTargetS: 0.001 });
    expect(impossible.best).toBeUndefined();
    expect(impossible.failure).toMatch(/^no tensor-parallel degree up to 8 \(one h100 node\) works: per-token latency: a batch-1 decode step takes .* over the 1.00 ms target$/);
  });

  it("fp8 needs fp8 tensor cores; prompts longer than the context are refused", () => {
    expect(() => planServe({ ...req, gpu: findGpu("a100-80"), precision: "fp8" })).toThrow(PlanInputError);
    expect(() => planServe({ ...req, gpu: findGpu("a100-80"), precision: "fp8" })).toThrow(/a100-80 .* has no fp8 tensor cores/);
    expect(() => planServe({ ...req, promptTokens: 4000 })).toThrow(/exceed the context of 4096/);
  });
});
