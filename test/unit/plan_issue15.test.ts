// plan_issue15.test.ts: the planner bugs of issue 15, one test each, every expectation worked out by
// hand in the test (never read back from the planner's own output): ZeRO-2 traffic per microbatch,
// step shares that add to 100%, lengths beyond the model's context, a global batch that does not
// divide, absurd and negative inputs, 6N's N, Megatron's fp32 gradient buffer, a batch too small for
// the cluster, and --target-days searching whole-node GPU counts.

import { describe, expect, it } from "vitest";
import type { TrainLayout } from "../../src/plan/index.js";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";
import {
  IDEAL_COMM, PlanInputError, estimateStep, findGpu, findPreset, parsePrecision, planServe, planTraining, trainMemoryPerGpu,
} from "../../src/plan/index.js";

const h100 = findGpu("h100");
const llama7 = findPreset("llama2-7b")!;
const llama70 = findPreset("llama-70b")!;
const llama405 = findPreset("llama-405b")!;
const layout = (o: Partial<TrainLayout>): TrainLayout => ({
  tp: 1, pp: 1, dp: 1, ep: 1, zero: 0, checkpointing: false, offload: false, microBatch: 1, microBatches: 1, seqLen: 4096, ...o,
});

/** `kiln ARGS...`, killed after 20 s so that a hung CLI fails the test instead of hanging the run. */
const kiln = (...args: string[]) => runProcess(process.execPath, [KILN_BIN, ...args], { timeoutMs: 20_000 });

// llama2-7b by hand: per layer 4·4096² (attention) + 3·4096·11008 (MLP) = 202,375,168; x32 layers,
// plus the untied head 32000·4096: 6,607,077,376 matmul weights; with the embedding (131,072,000)
// and 65 RMSNorm vectors (266,240): 6,738,415,616 in all.
const P7_MATMUL = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 32000 * 4096;
const P7_TOTAL = P7_MATMUL + 32000 * 4096 + 65 * 4096;

describe("issue 15 bug 1: ZeRO-2 reduce-scatters the gradients every microbatch", () => {
  it("m microbatches move m reduce-scatters and one all-gather, not one all-reduce", () => {
    // dp=16 crosses nodes; a reduce-scatter of the fp32 gradients (4 bytes a parameter) and an
    // all-gather of the bf16 weights (2) each move (n-1)/n of their bytes, so one microbatch moves
    // 4 + 2 = 6 units, four move 4 x 4 + 2 = 18 (DeepSpeed stage 2 reduces every microbatch).
    // (bandwidth terms only: IDEAL_COMM leaves out the per-collective latency, which is not traffic)
    const data = (m: number) => estimateStep(llama7, h100, layout({ dp: 16, zero: 2, microBatches: m }), IDEAL_COMM).comm.find((c) => c.kind === "data")!.seconds;
    expect(data(4) / data(1)).toBeCloseTo(18 / 6, 9);
    expect(data(8) / data(1)).toBeCloseTo(34 / 6, 9);
    // ZeRO-1 keeps whole gradients and reduces once per step: the microbatch count does not matter.
    const zero1 = (m: number) => estimateStep(llama7, h100, layout({ dp: 16, zero: 1, microBatches: m })).comm.find((c) => c.kind === "data")!.seconds;
    expect(zero1(4) / zero1(1)).toBeCloseTo(1, 9);
  });
});

describe("issue 15 bug 2: the step's shares add to 100%", () => {
  it("compute + exposed communication + bubble = step, and nothing is exposed longer than it runs", () => {
    // Llama 3 405B with tp=8 pp=4 and one microbatch per step: the case that printed 111%.
    const s = estimateStep(llama405, h100, layout({ tp: 8, pp: 4, dp: 512, zero: 1, microBatches: 1, seqLen: 8192 }));
    for (const c of s.comm) expect(c.exposedSeconds).toBeLessThanOrEqual(c.seconds * (1 + 1e-12));
    const exposed = s.comm.reduce((a, c) => a + c.exposedSeconds, 0);
    expect((s.computeSeconds + exposed + s.bubbleSeconds) / s.stepSeconds).toBeCloseTo(1, 9);
  });

  it("the printed shares of the chosen plan add to at most 100%", () => {
    const p = planTraining({ model: llama405, gpu: h100, gpus: 16384, tokens: 15e12 });
    const step = p.reasons.find((r) => r.startsWith("step "))!;
    const shares = [...step.matchAll(/(compute|exposed communication|pipeline bubble) ([0-9.]+)%/g)].map((m) => Number(m[2]));
    expect(shares.length).toBe(3);
    expect(shares.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(100.15);
  });
});

describe("issue 15 bug 7: lengths beyond the model's context", () => {
  it("--seq-len and --context longer than the model's 4096 are errors naming both numbers", async () => {
    expect(() => planTraining({ model: llama7, gpu: h100, gpus: 8, tokens: 1e12, seqLen: 8192 })).toThrow(PlanInputError);
    expect(() => planTraining({ model: llama7, gpu: h100, gpus: 8, tokens: 1e12, seqLen: 8192 })).toThrow(/8192.*llama2-7b.*4096/);
    const serve = { model: llama7, gpu: h100, precision: parsePrecision("bf16"), contextLength: 8192, requestsPerSecond: 1, promptTokens: 100, outputTokens: 100 };
    expect(() => planServe(serve)).toThrow(/8192.*llama2-7b.*4096/);
    const t = await kiln("plan", "train", "--model", "llama2-7b", "--gpu", "h100", "--gpus", "8", "--tokens", "1T", "--seq-len", "8k");
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--seq-len 8192 .*llama2-7b.*context of 4096/);
    const s = await kiln("plan", "serve", "--model", "llama2-7b", "--gpu", "h100", "--context", "16k", "--rps", "1", "--prompt", "100", "--output", "100");
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--context 16384 .*llama2-7b.*context of 4096/);
  }, 60_000);
});

describe("issue 15 bug 8: a global batch that does not divide", () => {
  it("says the batch it trains with when it differs from the one asked", async () => {
    const p = planTraining({ model: llama70, gpu: h100, gpus: 48, tokens: 2e12 });
    const l = p.best!.layout;
    const actual = l.dp * l.microBatch * l.microBatches * l.seqLen;
    expect(actual).not.toBe(4 * 1024 * 1024); // 512 sequences of 8192 do not split evenly over 48 GPUs
    const note = p.notes.find((x) => x.includes("global batch"));
    expect(note).toBeDefined();
    expect(note).toContain(`${(actual / 1e6).toFixed(2)}M tokens`);
    expect(note).toContain("4.19M");
    const { code, stdout } = await kiln("plan", "train", "--model", "llama-70b", "--gpu", "h100", "--gpus", "48", "--tokens", "2T");
    expect(code).toBe(0);
    expect(stdout).toContain(note!);
    // 64 GPUs divide the 512 sequences: no note.
    expect(planTraining({ model: llama70, gpu: h100, gpus: 64, tokens: 2e12 }).notes.some((x) => x.includes("global batch"))).toBe(false);
  }, 60_000);
});

describe("issue 15 bug 9: absurd and negative inputs", () => {
  it("gives kiln's own message for a negative number after a space, and bounds absurd values", async () => {
    const neg = await kiln("plan", "train", "--model", "llama-70b", "--gpu", "h100", "--gpus", "-8", "--tokens", "2T");
    expect(neg.code).toBe(2);
    expect(neg.stderr).toContain("--gpus: '-8' is not a positive number");
    expect(neg.stderr).not.toContain("ambiguous");
    const huge = await kiln("plan", "train", "--model", "llama-70b", "--gpu", "h100", "--gpus", "1024", "--tokens", "1e40");
    expect(huge.code).toBe(2);
    expect(huge.stderr).toMatch(/--tokens: 1e\+?40 is more than/);
    const many = await kiln("plan", "train", "--model", "llama-70b", "--gpu", "h100", "--gpus", "1e9", "--tokens", "2T");
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(/--gpus: 1000000000 is more than/);
    const rps = await kiln("plan", "serve", "--model", "llama-8b", "--gpu", "h100", "--rps", "-1", "--prompt", "10", "--output", "10");
    expect(rps.code).toBe(2);
    expect(rps.stderr).toContain("--rps: '-1' is not a positive number");
  }, 60_000);
});

describe("issue 15 bug 12: 6N's N is labelled", () => {
  it("names the non-embedding N the FLOPs use and the total beside it", async () => {
    const { code, stdout } = await kiln("plan", "train", "--model", "llama2-7b", "--gpu", "h100", "--gpus", "64", "--tokens", "2T", "--json");
    expect(code).toBe(0);
    const plan = JSON.parse(stdout) as { flopsParams: number; params: { total: number } };
    expect(plan.flopsParams).toBe(P7_MATMUL);
    expect(plan.params.total).toBe(P7_TOTAL);
    const text = await kiln("plan", "train", "--model", "llama2-7b", "--gpu", "h100", "--gpus", "64", "--tokens", "2T");
    expect(text.stdout).toContain(`N = ${(P7_MATMUL / 1e9).toFixed(2)}B non-embedding (matmul) parameters, of ${(P7_TOTAL / 1e9).toFixed(2)}B in all`);
  }, 60_000);
});

describe("issue 15 bug 11: Megatron's fp32 gradient buffer under bf16", () => {
  it("keeps 4-byte gradients: 2 + 4 + 12 = 18 bytes per parameter", () => {
    const m = trainMemoryPerGpu(llama7, layout({}));
    expect(m.weights).toBe(2 * P7_TOTAL);
    expect(m.grads).toBe(4 * P7_TOTAL);
    expect(m.optimizer).toBe(12 * P7_TOTAL);
    const z2 = trainMemoryPerGpu(llama7, layout({ dp: 8, zero: 2 }));
    expect(z2.grads).toBeCloseTo((4 * P7_TOTAL) / 8, 0);
  });
});

describe("issue 15 bug 13: a batch too small for the cluster", () => {
  it("warns, and names the batch that brings the chosen layout's bubble to 20%", () => {
    const p = planTraining({ model: llama405, gpu: h100, gpus: 16384, tokens: 15e12 });
    const l = p.best!.layout;
    const bubble = (l.pp - 1) / (l.microBatches + l.pp - 1);
    expect(bubble).toBeGreaterThan(0.2);
    // bubble <= 20% needs m >= 4(p - 1) microbatches of the chosen dp x microbatch sequences
    const fits = 4 * (l.pp - 1) * l.dp * l.microBatch * l.seqLen;
    const w = p.notes.find((x) => x.includes("batch is too small"));
    expect(w).toBeDefined();
    expect(fits).toBeGreaterThanOrEqual(10e6);
    expect(fits).toBeLessThan(1e9);
    expect(w).toContain(`${(fits / 1e6).toFixed(fits >= 100e6 ? 0 : 1)}M tokens`); // three digits, as printed
    // 7B on 64 GPUs keeps its whole 4M batch in one pipeline stage: no warning.
    expect(planTraining({ model: llama7, gpu: h100, gpus: 64, tokens: 2e12 }).notes.some((x) => x.includes("too small"))).toBe(false);
  });
});

describe("issue 15 bug 3: --target-days searches whole nodes and re-plans", () => {
  it("suggests a whole-node GPU count that, re-planned, meets the target, and one node fewer does not", () => {
    const p = planTraining({ model: llama70, gpu: h100, gpus: 64, tokens: 2e12, targetDays: 30 });
    expect(p.meetsTarget).toBe(false);
    const n = p.suggestedGpus!;
    expect(n % 8).toBe(0);
    expect(p.failure).toContain(`${n.toLocaleString("en-US")} h100 GPUs`);
    expect(planTraining({ model: llama70, gpu: h100, gpus: n, tokens: 2e12 }).best!.days).toBeLessThanOrEqual(30);
    expect(planTraining({ model: llama70, gpu: h100, gpus: n - 8, tokens: 2e12 }).best?.days ?? Infinity).toBeGreaterThan(30);
  }, 30_000);

  it("says when no GPU count meets the target", () => {
    // A 4M batch of 8192-token sequences is 512 sequences: at most 8 (tp) x 126 (pp) x 512 (dp) =
    // 516,096 GPUs have work. 6ND = 6 x 405e9 x 15e12 = 3.6e25 FLOPs over them at full peak is
    // 3.645e25 / (516096 x 989.4e12) = 71,400 s = 0.83 days, so half a day is out of reach.
    expect((6 * 405e9 * 15e12) / (8 * 126 * 512 * 989.4e12) / 86400).toBeGreaterThan(0.5);
    const p = planTraining({ model: llama405, gpu: h100, gpus: 16384, tokens: 15e12, targetDays: 0.5 });
    expect(p.meetsTarget).toBe(false);
    expect(p.suggestedGpus).toBeUndefined();
    expect(p.failure).toMatch(/no whole-node count of h100 GPUs meets the 0.5-day target/);
  }, 60_000);
});
