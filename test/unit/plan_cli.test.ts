// plan_cli.test.ts: `kiln plan` end to end through its launcher: readable tables, --json for tools,
// and usage errors (exit 2) that list the known GPUs, models and precisions.

import { describe, expect, it } from "vitest";
import { kiln } from "../helpers/kiln_cli.js";


describe("kiln plan", () => {
  it("an unknown GPU exits 2 and lists the known ones", async () => {
    const { code, stdout, stderr } = await kiln("plan", "train", "--model", "llama-70b", "--gpu", "b300", "--gpus", "1024", "--tokens", "2T");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("kiln: plan train: unknown GPU 'b300' (known: h100, h100-pcie, h200, gb200, a100-40, a100-80, l40s, mi300x;");
    expect(stderr).toContain("Usage: kiln plan train");
  });

  it("an unknown model exits 2 and lists the presets", async () => {
    const { code, stderr } = await kiln("plan", "serve", "--model", "llama-9b", "--gpu", "h100", "--rps", "1", "--prompt", "10", "--output", "10");
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown model 'llama-9b': not a preset and no such file \(presets: llama2-7b, .*moe-1t/);
  });

  it("train prints the chosen layout, its memory, time and cost, and why", async () => {
    const { code, stdout } = await kiln("plan", "train", "--model", "llama-70b", "--gpu", "h100", "--gpus", "1024", "--tokens", "2T", "--target-days", "30");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^kiln plan train: llama3-70b on 1024 x h100, 2.00T tokens/);
    expect(stdout).toMatch(/chosen: tp=\d+ pp=\d+ dp=\d+/);
    for (const s of ["memory per GPU", "MFU", "GPU-hours", "per million tokens", "COMMUNICATION", "why:", "top layouts:", "target 30 days: met"]) expect(stdout).toContain(s);
  });

  it("serve --json gives the plan as data", async () => {
    const { code, stdout } = await kiln("plan", "serve", "--model", "llama-8b", "--gpu", "h100", "--precision", "fp8", "--context", "8192", "--rps", "10", "--prompt", "512", "--output", "256", "--json");
    expect(code).toBe(0);
    const plan = JSON.parse(stdout) as { model: string; precision: string; best: { tp: number; maxBatch: number; auto: { numBlocks: number } }; candidates: unknown[] };
    expect(plan.model).toBe("llama3-8b");
    expect(plan.precision).toBe("fp8");
    expect(plan.best.tp).toBeGreaterThanOrEqual(1);
    expect(plan.best.maxBatch).toBeGreaterThan(0);
    expect(plan.best.auto.numBlocks).toBeGreaterThan(0);
    expect(plan.candidates.length).toBe(4);
  });

  it("a request nothing fits exits 1 with the failed constraint", async () => {
    const { code, stdout } = await kiln("plan", "train", "--model", "llama-405b", "--gpu", "a100-40", "--gpus", "8", "--tokens", "1T");
    expect(code).toBe(1);
    expect(stdout).toMatch(/no plan: memory: no layout fits on 8 x a100-40/);
  });

  it("a missing subcommand or flag is a usage error", async () => {
    expect((await kiln("plan")).code).toBe(2);
    const { code, stderr } = await kiln("plan", "serve", "--model", "gpt2", "--gpu", "h100", "--precision", "fp4", "--rps", "1", "--prompt", "1", "--output", "1");
    expect(code).toBe(2);
    expect(stderr).toContain("unknown precision 'fp4' (known: fp16, bf16, fp8, int8, int4)");
  });
});
