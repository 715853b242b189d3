// `kiln train --config FILE` end to end through the launcher: a tiny char-level GPT-2 trains two steps
// on cpu and writes its checkpoint; an invalid config exits 2 naming the field and what it allows.
// The shipped configs/shakespeare_char.json is valid and holds nanoGPT's CPU configuration.

import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseTrainConfig } from "../../src/train/config.js";
import { kiln } from "../helpers/kiln_cli.js";
import { repoFile } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY = {
  model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16 },
  data: { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
  train: { batchSize: 2, iters: 100 },
  optimizer: { kind: "adamw", lr: 1e-3 },
  schedule: { kind: "cosine", warmupSteps: 10, decaySteps: 100, minLr: 1e-4 },
  eval: { interval: 50, batches: 1 },
  out: join(dir, "ckpt"),
};

function writeConfig(name: string, cfg: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(cfg));
  return p;
}

describe("kiln train", () => {
  it("trains a tiny model for --max-iters steps and writes the checkpoint", async () => {
    const { code, stdout, stderr } = await kiln("train", "--config", writeConfig("tiny.json", TINY), "--backend", "cpu", "--max-iters", "2");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/step 2\/100 \| loss \d\.\d{4} \| lr 1\.82e-4/);
    expect(stdout).toMatch(/done: 2 steps, held-out loss \d\.\d{4}, median \d+ ms\/step/);
    expect(existsSync(join(dir, "ckpt", "model.safetensors"))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, "ckpt", "trainer.json"), "utf8")).step).toBe(2);
  }, 120_000);

  it("an invalid config exits 2 naming the field and the allowed values", async () => {
    const bad = { ...TINY, model: { ...TINY.model, arch: "gpt3" }, optimizer: { ...TINY.optimizer, betas: [0.9, 0.99] } };
    const { code, stderr } = await kiln("train", "--config", writeConfig("bad.json", bad));
    expect(code).toBe(2);
    expect(stderr).toMatch(/model\.arch: .*"gpt2"\|"llama"/);
    expect(stderr).toMatch(/optimizer: unknown field 'betas' \(allowed: kind, lr, beta1, beta2, eps, weightDecay\)/);
  }, 60_000);

  it("configs/shakespeare_char.json is nanoGPT's CPU configuration", () => {
    const cfg = parseTrainConfig(JSON.parse(readFileSync(repoFile("configs/shakespeare_char.json"), "utf8")), "shakespeare_char.json");
    expect(cfg.model).toMatchObject({ arch: "gpt2", nLayers: 4, nHeads: 4, dim: 128, blockSize: 64 });
    expect(cfg.train).toMatchObject({ batchSize: 12, iters: 2000, maxGradNorm: 1 });
    expect(cfg.optimizer).toMatchObject({ lr: 1e-3, beta2: 0.99, weightDecay: 0.1 });
    expect(cfg.schedule).toEqual({ kind: "cosine", warmupSteps: 100, decaySteps: 2000, minLr: 1e-4 });
  });
});
