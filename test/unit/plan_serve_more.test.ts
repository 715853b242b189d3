// plan_serve_more.test.ts: issue 15's serving additions: a KV-cache type apart from the weights
// (fp8/int8 KV), and a plan without --rps (one instance and its capacity). Expected values by hand.

import { describe, expect, it } from "vitest";
import { findGpu, findPreset, planServe } from "../../src/plan/index.js";
import { KILN_BIN, runProcess } from "../helpers/kiln_cli.js";

const base = { model: findPreset("llama-70b")!, gpu: findGpu("h100"), precision: "bf16" as const, contextLength: 8192, promptTokens: 2048, outputTokens: 512 };

describe("serving: KV dtype and capacity without a request rate", () => {
  it("fp8 KV: 1 byte a K or V element with bf16 weights, so about twice the KV tokens", () => {
    const bf16 = planServe({ ...base, requestsPerSecond: 1 });
    const fp8 = planServe({ ...base, requestsPerSecond: 1, kvDtype: "fp8" });
    expect(bf16.kvBytesPerToken).toBe(80 * 8 * 128 * 2 * 2);
    expect(fp8.kvBytesPerToken).toBe(80 * 8 * 128 * 2 * 1);
    expect(fp8.weightsBytes).toBe(bf16.weightsBytes); // the weights stay bf16
    const at = (p: typeof bf16, tp: number) => p.candidates.find((c) => c.tp === tp)!;
    // tp=4: neither is capped at 256 full-context requests (2,097,152 tokens)
    expect(at(fp8, 4).kvTokens / at(bf16, 4).kvTokens).toBeGreaterThan(1.95);
    expect(at(fp8, 4).kvTokens / at(bf16, 4).kvTokens).toBeLessThan(2.1);
  });

  it("without --rps: one instance, no spare, cost per token at its capacity, the cheapest per token chosen", () => {
    const p = planServe(base);
    const b = p.best!;
    expect(b.instances).toEqual({ throughput: 1, concurrency: 1, spare: 0, total: 1 });
    // $/hour over the tokens one instance serves in an hour (prompt + output per request)
    expect(b.costPerMillionTokens).toBeCloseTo((b.tp * 3) / (b.requestsPerSecondPerInstance * 3600 * 2560) * 1e6, 9);
    for (const c of p.candidates.filter((x) => x.fits)) expect(c.costPerMillionTokens).toBeGreaterThanOrEqual(b.costPerMillionTokens);
    expect(p.reasons.some((r) => r.startsWith("capacity: one instance"))).toBe(true);
  });

  it("kiln plan serve names a bad --kv-dtype", async () => {
    const r = await runProcess(process.execPath, [KILN_BIN, "plan", "serve", "--model", "llama-70b", "--gpu", "h100", "--prompt", "512", "--output", "128", "--kv-dtype", "fp4"], { timeoutMs: 40_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--kv-dtype: 'fp4' is not one of fp16, bf16, fp8, int8/);
  }, 60_000);
});
