// plan_train_options.test.ts: issue 15's training options: fp32 and fp8 training, the zero-bubble
// (ZB-H1) pipeline schedule, context parallelism, selective recomputation, sequence parallelism off,
// eager attention and LoRA/QLoRA. Every expected number is worked out by hand here from the model's
// shape and the GPU table's figures (never read back from the planner's own helpers).

import { describe, expect, it } from "vitest";
import type { PlanModel, TrainLayout } from "../../src/plan/index.js";
import { IDEAL_COMM, PlanInputError, estimateStep, findGpu, findPreset, planTraining, trainMemoryPerGpu } from "../../src/plan/index.js";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";

const h100 = findGpu("h100");
const llama7 = findPreset("llama2-7b")!;
const llama8 = findPreset("llama3-8b")!;
const layout = (o: Partial<TrainLayout>): TrainLayout => ({
  tp: 1, pp: 1, dp: 1, ep: 1, zero: 0, checkpointing: false, offload: false, microBatch: 1, microBatches: 1, seqLen: 4096, ...o,
});

// llama2-7b: matmul weights 32 (4·4096² + 3·4096·11008) + 32000·4096; all weights add the embedding and 65 norms.
const P7_MATMUL = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 32000 * 4096;
const P7_TOTAL = P7_MATMUL + 32000 * 4096 + 65 * 4096;
// Activation elements a llama2-7b token keeps per layer (flash attention): 2 norm inputs + QKV input +
// Q, K, V, attention output (4 x 4096) + MLP input + gate, up and their product (3 x 11008).
const E7 = 2 * 4096 + 4096 + 4 * 4096 + 4096 + 3 * 11008;
const T = 1e12;

describe("training precision: fp32 and fp8", () => {
  it("fp32: 4 + 4 + 8 bytes a parameter and 4-byte activations; matmuls on TF32 at half the bf16 rate", () => {
    const mem = trainMemoryPerGpu(llama7, layout({ precision: "fp32" }));
    expect(mem.weights).toBe(4 * P7_TOTAL);
    expect(mem.grads).toBe(4 * P7_TOTAL);
    expect(mem.optimizer).toBe(8 * P7_TOTAL);
    // 32 layers x 4096 tokens x E7 elements x 4 bytes, and the fp32 logits 4096 x 32000 x 4
    expect(mem.activations).toBe(32 * 4096 * E7 * 4 + 4096 * 32000 * 4);
    // compute of one 4096-token sequence: (6N + 12 x 32 layers x 4096 x 4096) FLOPs at 0.6 x 494.7 TFLOP/s
    const flops = 4096 * (6 * P7_MATMUL + 12 * 32 * 4096 * 4096);
    expect(estimateStep(llama7, h100, layout({ precision: "fp32" }), IDEAL_COMM).computeSeconds).toBeCloseTo(flops / (0.6 * 494.7 * T), 12);
    expect(estimateStep(llama7, h100, layout({}), IDEAL_COMM).computeSeconds).toBeCloseTo(flops / (0.6 * 989.4 * T), 12);
  });

  it("fp8: bf16 mixed precision's 18 bytes plus the fp8 weight and its transpose; matmuls at the fp8 rate, attention at bf16", () => {
    const mem = trainMemoryPerGpu(llama7, layout({ precision: "fp8" }));
    expect(mem.weights + mem.grads + mem.optimizer).toBe(20 * P7_TOTAL);
    expect(mem.activations).toBe(trainMemoryPerGpu(llama7, layout({})).activations);
    const s = estimateStep(llama7, h100, layout({ precision: "fp8" }), IDEAL_COMM);
    const expected = (4096 * 6 * P7_MATMUL) / (0.6 * 1978.9 * T) + (4096 * 12 * 32 * 4096 * 4096) / (0.6 * 989.4 * T);
    expect(s.computeSeconds).toBeCloseTo(expected, 12);
    // ZeRO-3 gathers the bf16 weights (2 bytes) and reduce-scatters fp32 gradients (4) as bf16 mixed
    // precision does: the fp8 copies are made on each GPU, not sent
    const data = (precision: "bf16" | "fp8") => estimateStep(llama7, h100, layout({ dp: 16, zero: 3, precision }), IDEAL_COMM).comm.find((c) => c.kind === "data")!.seconds;
    expect(data("fp8")).toBeCloseTo(data("bf16"), 15);
    // 2 all-gathers of 2 bytes and a reduce-scatter of 4 over 16 GPUs on the network: (15/16) x 8 bytes a parameter / 50 GB/s
    expect(data("fp8")).toBeCloseTo(((15 / 16) * 8 * P7_TOTAL) / 50e9, 12);
  });

  it("fp8 on a GPU without fp8 tensor cores is refused by name", () => {
    expect(() => planTraining({ model: llama7, gpu: findGpu("a100-80"), gpus: 8, tokens: 1e12, fixed: { precision: "fp8" } })).toThrow(/--train-precision fp8: a100-80 .*no fp8 tensor cores/);
  });
});

describe("pipeline schedules: 1F1B, interleaved, ZB-H1", () => {
  it("ZB-H1 leaves a third of 1F1B's idle time: (p-1)/3 / (m + (p-1)/3)", () => {
    const base = layout({ pp: 8, microBatches: 16 });
    const f1b = estimateStep(llama7, h100, base, IDEAL_COMM);
    const zb = estimateStep(llama7, h100, { ...base, schedule: "zb-h1" }, IDEAL_COMM);
    expect(f1b.bubbleFraction).toBeCloseTo(7 / 23, 12);
    expect(zb.bubbleFraction).toBeCloseTo(7 / 3 / (16 + 7 / 3), 12);
    // dp = 1: no data-parallel traffic, so the step is slots x slot in both: (16 + 7/3) / (16 + 7)
    expect(zb.stepSeconds / f1b.stepSeconds).toBeCloseTo((16 + 7 / 3) / 23, 12);
    // ZB-H1 keeps 1F1B's activation memory
    expect(trainMemoryPerGpu(llama7, { ...base, schedule: "zb-h1" }).total).toBe(trainMemoryPerGpu(llama7, base).total);
  });

  it("a batch too small for ZB-H1's pipeline: the note's batch is 4 x its (p-1)/3 idle slots, rounded up", () => {
    // 8 stages, 2 microbatches of 8 x 1 sequences: bubble (7/3) / (2 + 7/3) = 54%; 4 x 7/3 = 9.33 -> 10 microbatches
    // of 8 x 4096 tokens = 327,680 (328K)
    const p = planTraining({ model: llama7, gpu: h100, gpus: 64, tokens: 1e12, batchTokens: 4096 * 8 * 2, fixed: { tp: 1, pp: 8, dp: 8, microBatch: 1, schedule: "zb-h1" } });
    expect(p.best!.step.bubbleFraction).toBeCloseTo(7 / 3 / (2 + 7 / 3), 12);
    expect(p.notes.join("\n")).toMatch(/a batch of 328K tokens \(10 microbatches of 8 x 1 sequences\) brings it to 20.0%/);
  });

  it("names a schedule that contradicts the layout", () => {
    const req = { model: llama7, gpu: h100, gpus: 64, tokens: 1e12 };
    expect(() => planTraining({ ...req, fixed: { pp: 4, interleave: 2, schedule: "zb-h1" } })).toThrow(/--schedule zb-h1: .*--interleave 2/);
    expect(() => planTraining({ ...req, fixed: { pp: 1, schedule: "zb-h1" } })).toThrow(/--schedule zb-h1: .*--pp 2 or more/);
    expect(() => planTraining({ ...req, fixed: { pp: 4, schedule: "interleaved" } })).toThrow(/--schedule interleaved: .*--interleave V/);
  });
});

describe("context parallelism", () => {
  // llama3-8b: per token per layer 2·4096 + 4096 + 4096 (Q) + 2·1024 (K, V) + 4096 (out) + 4096 + 3·14336 elements
  const E8 = 2 * 4096 + 4096 + 4096 + 2 * 1024 + 4096 + 4096 + 3 * 14336;

  it("splits every sequence over cp GPUs: activations and compute of s / cp tokens", () => {
    const cp4 = layout({ seqLen: 32768, cp: 4 });
    const mem = trainMemoryPerGpu(llama8, cp4);
    // 8192 tokens a GPU: 32 layers x 8192 x E8 x 2 bytes, plus fp32 logits 8192 x 128256 x 4
    expect(mem.activations).toBe(32 * 8192 * E8 * 2 + 8192 * 128256 * 4);
    const one = estimateStep(llama8, h100, layout({ seqLen: 32768 }), IDEAL_COMM).computeSeconds;
    expect(estimateStep(llama8, h100, cp4, IDEAL_COMM).computeSeconds / one).toBeCloseTo(1 / 4, 12);
  });

  it("ring traffic: 3 (cp-1) sends of a K/V chunk per layer, hidden behind that layer's attention unless longer", () => {
    // cp=4 inside a node: chunk = 8192 tokens x 2 (K, V) x 8 KV heads x 128 x 2 bytes, NVLink at 450 GB/s
    const chunk4 = 8192 * 2 * 8 * 128 * 2;
    const s4 = estimateStep(llama8, h100, layout({ seqLen: 32768, cp: 4 }), IDEAL_COMM);
    const ring4 = s4.comm.find((c) => c.kind === "context")!;
    expect(ring4.seconds).toBeCloseTo(32 * 9 * (chunk4 / 450e9), 12);
    expect(ring4.exposedSeconds).toBe(0); // 0.67 ms a layer against 22 ms of attention
    // cp=16 crosses nodes (50 GB/s a GPU): 2048 tokens a GPU; per layer 45 sends against the attention
    // of 2048 queries: 12 x 32768 x 4096 x 2048 FLOPs at 0.6 x 989.4 TFLOP/s
    const chunk16 = 2048 * 2 * 8 * 128 * 2;
    const perLayer = 45 * (chunk16 / 50e9);
    const attention = (12 * 32768 * 4096 * 2048) / (0.6 * 989.4 * T);
    const s16 = estimateStep(llama8, h100, layout({ seqLen: 32768, cp: 16 }), IDEAL_COMM);
    const ring16 = s16.comm.find((c) => c.kind === "context")!;
    expect(ring16.link).toBe("network");
    expect(ring16.exposedSeconds).toBeCloseTo(32 * (perLayer - attention), 12);
    expect(ring16.exposedSeconds).toBeGreaterThan(0);
    // MFU counts all tp x cp x pp x dp GPUs: model FLOPs of the sequence / (step x 16 x peak)
    expect(s16.mfu).toBeCloseTo((32768 * (6 * (32 * (4096 * 4096 * 2 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 128256 * 4096) + 12 * 32 * 32768 * 4096)) / (s16.stepSeconds * 16 * 989.4 * T), 9);
  });

  it("the world size counts cp, and a sequence must divide into 2 x cp chunks", () => {
    const req = { model: llama8, gpu: h100, gpus: 64, tokens: 1e12, seqLen: 32768, batchTokens: 32768 * 64 };
    expect(() => planTraining({ ...req, fixed: { tp: 8, pp: 1, dp: 8, cp: 4 } })).toThrow(/--tp 8 x --pp 1 x --dp 8 x --cp 4 = 256, but the world size is 64/);
    expect(() => planTraining({ ...req, seqLen: 32764, fixed: { cp: 4 } })).toThrow(/--cp: 4 needs the sequence length \(32764\) to divide into 2 x cp = 8/);
    const p = planTraining({ ...req, fixed: { tp: 8, pp: 1, dp: 2, cp: 4 } });
    expect(p.best!.layout.cp).toBe(4);
    expect(p.best!.step.tokensPerStep).toBe(32768 * 2 * p.best!.layout.microBatch * p.best!.layout.microBatches);
  });
});

describe("recomputation, sequence parallelism, eager attention", () => {
  it("eager attention keeps the softmax output: 32 heads x s elements a token, 2 bytes, every layer", () => {
    const flash = trainMemoryPerGpu(llama7, layout({}));
    const eager = trainMemoryPerGpu(llama7, layout({ attention: "eager" }));
    expect(eager.activations - flash.activations).toBe(32 * 4096 * (32 * 4096) * 2);
  });

  it("selective recomputation: with eager attention it drops the scores and repeats the forward score products; with flash it changes nothing", () => {
    const eagerSel = layout({ attention: "eager", selective: true });
    expect(trainMemoryPerGpu(llama7, eagerSel).total).toBe(trainMemoryPerGpu(llama7, layout({})).total);
    const extra = estimateStep(llama7, h100, eagerSel, IDEAL_COMM).computeSeconds - estimateStep(llama7, h100, layout({ attention: "eager" }), IDEAL_COMM).computeSeconds;
    // QK^T and AV forward again: 4 x 32 layers x 4096 x 4096 FLOPs a token, 4096 tokens
    expect(extra).toBeCloseTo((4096 * 4 * 32 * 4096 * 4096) / (0.6 * 989.4 * T), 12);
    const flashSel = layout({ selective: true });
    expect(trainMemoryPerGpu(llama7, flashSel)).toEqual(trainMemoryPerGpu(llama7, layout({})));
    expect(estimateStep(llama7, h100, flashSel).stepSeconds).toBe(estimateStep(llama7, h100, layout({})).stepSeconds);
  });

  it("sequence parallelism off: the 4h elements outside the tp regions stay whole on each of the tp GPUs", () => {
    const sp = trainMemoryPerGpu(llama7, layout({ tp: 4 }));
    const noSp = trainMemoryPerGpu(llama7, layout({ tp: 4, sequenceParallel: false }));
    // 32 layers x 4096 tokens x 2 bytes x (4 x 4096 - 4 x 4096 / 4)
    expect(noSp.activations - sp.activations).toBe(32 * 4096 * 2 * (4 * 4096 - 4096));
  });
});

describe("LoRA and QLoRA", () => {
  // LLaMA 65B (Touvron et al. 2023): width 8192, 80 layers, 64 heads, MLP 22016, vocabulary 32000.
  const llama65: PlanModel = { name: "llama-65b", family: "llama", dim: 8192, nLayers: 80, nHeads: 64, nKvHeads: 64, headDim: 128, hiddenDim: 22016, vocabSize: 32000, maxSeqLen: 2048, tiedEmbeddings: false };
  const linear = 80 * (4 * 8192 * 8192 + 3 * 8192 * 22016); // block linears, what NF4 quantizes
  const rest = 2 * 32000 * 8192 + 161 * 8192; // embedding, head, 161 norms: bf16
  const adapters = 80 * 64 * (4 * (8192 + 8192) + 3 * (8192 + 22016)); // r (d_in + d_out), r = 64

  it("QLoRA 65B, r = 64 on every block linear, 512-token sequences, checkpointing: under 48 GB (the paper's claim)", () => {
    const mem = trainMemoryPerGpu(llama65, layout({ seqLen: 512, checkpointing: true, lora: { rank: 64, qlora: true } }));
    // NF4 with double quantization: 4 + 8/64 + 32/(64·256) = 4.127 bits
    expect(mem.weights).toBeCloseTo((linear * (4 + 8 / 64 + 32 / (64 * 256))) / 8 + rest * 2 + adapters * 2, 0);
    expect(mem.grads).toBe(adapters * 2);
    expect(mem.optimizer).toBe(adapters * 8);
    // layer inputs 80 x 512 x 8192 x 2, one layer's set 512 x (8 x 8192 + 3 x 22016) x 2, logits 512 x 32000 x 4
    expect(mem.activations).toBe(80 * 512 * 8192 * 2 + 512 * (8 * 8192 + 3 * 22016) * 2 + 512 * 32000 * 4);
    expect(mem.total).toBeLessThan(48e9);
    expect(mem.total).toBeGreaterThan(40e9);
    // full bf16 fine-tuning of the same model needs 18 bytes a parameter: over 1.1 TB (the paper: "> 780 GB" at 12)
    expect(trainMemoryPerGpu(llama65, layout({ seqLen: 512, checkpointing: true })).total).toBeGreaterThan(18 * (linear + rest));
  });

  it("LoRA: bf16 base, no base weight gradients (4N + 6A FLOPs a token), data-parallel traffic of the adapters alone", () => {
    const lora = layout({ lora: { rank: 16, qlora: false }, dp: 8 });
    const a7 = 32 * 16 * (4 * (4096 + 4096) + 3 * (4096 + 11008));
    expect(trainMemoryPerGpu(llama7, lora).weights).toBe(2 * P7_TOTAL + 2 * a7);
    const s = estimateStep(llama7, h100, lora, IDEAL_COMM);
    expect(s.computeSeconds).toBeCloseTo((4096 * (4 * P7_MATMUL + 6 * a7 + 12 * 32 * 4096 * 4096)) / (0.6 * 989.4 * T), 12);
    // ring all-reduce of the adapters' bf16 gradients over 8 GPUs on NVLink: 2 x 7/8 x bytes / 450 GB/s
    expect(s.comm.find((c) => c.kind === "data")!.seconds).toBeCloseTo((2 * 7 / 8) * (a7 * 2) / 450e9, 12);
  });

  it("LoRA is data parallel only: a fixed --tp is refused by name; --qlora needs --lora", async () => {
    expect(() => planTraining({ model: llama7, gpu: h100, gpus: 8, tokens: 1e9, fixed: { tp: 2, lora: { rank: 8, qlora: false } } })).toThrow(PlanInputError);
    expect(() => planTraining({ model: llama7, gpu: h100, gpus: 8, tokens: 1e9, fixed: { tp: 2, lora: { rank: 8, qlora: false } } })).toThrow(/--lora: .*--tp must be 1 \(got 2\)/);
    const r = await runProcess(process.execPath, [KILN_BIN, "plan", "train", "--model", "llama2-7b", "--gpu", "h100", "--gpus", "8", "--tokens", "1B", "--qlora"], { timeoutMs: 50_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--qlora: give the adapters' rank with --lora R/);
  }, 60_000);
});

describe("kiln plan train with the options", () => {
  it("prints the options in the chosen layout and the ring's traffic", async () => {
    const r = await runProcess(process.execPath, [KILN_BIN, "plan", "train", "--model", "llama-8b", "--gpu", "h100", "--gpus", "64", "--tokens", "100B", "--seq-len", "32k",
      "--tp", "2", "--pp", "2", "--cp", "4", "--schedule", "zb-h1", "--train-precision", "fp8", "--recompute", "selective", "--attention", "eager"], { timeoutMs: 50_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/chosen: tp=2 pp=2 dp=4 zero=\d cp=4 zb-h1 selective fp8 eager/);
    expect(r.stdout).toMatch(/context +NVLink 4/);
  }, 60_000);
});
