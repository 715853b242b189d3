// `kiln train --config FILE` end to end through the launcher: a tiny char-level GPT-2 trains two steps
// on cpu and writes its checkpoint (checkpoint/'s layout, verified by `kiln checkpoint verify`); an
// invalid config exits 2 naming the field and what it allows; --resume needs a checkpoint section.
// The shipped configs/shakespeare_char.json is valid and holds nanoGPT's CPU configuration.
// The run is recorded in the runs database next to its config (kiln runs show finds it by the file name).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseTrainConfig } from "../../src/train/config.js";
import { openRunData } from "../../src/train/run_data.js";
import { kiln } from "../helpers/kiln_cli.js";
import { repoFile } from "../helpers/fixtures.js";
import { sqliteMissing } from "../helpers/requirements.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY = {
  model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16 },
  data: { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
  train: { batchSize: 2, iters: 100 },
  optimizer: { kind: "adamw", lr: 1e-3 },
  schedule: { kind: "cosine", warmupSteps: 10, decaySteps: 100, minLr: 1e-4 },
  eval: { interval: 50, batches: 1 },
  checkpoint: { dir: join(dir, "ckpt"), every: 50 },
};

function writeConfig(name: string, cfg: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(cfg));
  return p;
}

describe("kiln train", () => {
  it("trains a tiny model for --max-iters steps and writes a checkpoint that verifies", async () => {
    const { code, stdout, stderr } = await kiln("train", "--config", writeConfig("tiny.json", TINY), "--backend", "cpu", "--max-iters", "2");
    // NOTE: where the optional better-sqlite3 did not load, the run is not tracked: one warning line, nothing else.
    expect(stderr.replace(/^warning: this run is not tracked: .*\n/, "")).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/step 2\/100 \| loss \d\.\d{4} \| lr 1\.82e-4/);
    expect(stdout).toMatch(/done: 2 steps, held-out loss \d\.\d{4}, median \d+ ms\/step/);
    expect(stdout).toContain(`checkpoint: ${join(dir, "ckpt", "step-000002")} (step 2)`);
    const state = JSON.parse(readFileSync(join(dir, "ckpt", "step-000002", "state.json"), "utf8"));
    expect(state).toMatchObject({ step: 2, model: { architecture: "gpt2" }, optimizer: { state: { kind: "adamw", step: 2 } }, rng: { kind: "random-windows", seed: 1337 }, loader: null });
    const verify = await kiln("checkpoint", "verify", join(dir, "ckpt", "step-000002"));
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    if (!sqliteMissing()) {
      // Recorded in the default runs database next to the config, named after the config file.
      const shown = await kiln("runs", "show", "tiny", "--db", join(dir, "runs", "runs.sqlite"));
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toMatch(/finished/);
      expect(shown.stdout).toMatch(/checkpoint/);
    }
    // A second fresh run into the same folder would overwrite that run's checkpoints: refused.
    const again = await kiln("train", "--config", writeConfig("tiny.json", TINY), "--backend", "cpu", "--max-iters", "2", "--no-track");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already holds checkpoints (newest: step 2); resume that run (--resume)");
    if (!sqliteMissing()) {
      // --no-track: the refused run left no row (without it, it would be a failed one).
      const list = await kiln("runs", "list", "--db", join(dir, "runs", "runs.sqlite"));
      expect(list.stdout.split("\n").filter((l) => /\btiny\b/.test(l))).toHaveLength(1);
    }
  }, 120_000);

  it("checkpoint and data fields are validated like the rest", async () => {
    const badCkpt = { ...TINY, checkpoint: { dir: "x", every: 0, keep: 2 } };
    const r1 = await kiln("train", "--config", writeConfig("bad_ckpt.json", badCkpt));
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/checkpoint\.every: .*>0/);
    expect(r1.stderr).toMatch(/checkpoint: unknown field 'keep' \(allowed: dir, every, keepLast, keepEvery\)/);
    const both = { ...TINY, data: { ...TINY.data, index: "shards" } };
    const r2 = await kiln("train", "--config", writeConfig("both.json", both));
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain("data: give exactly one of 'path' (a UTF-8 text file, char-level tokens) or 'index'");
    const { checkpoint: _, ...noCkpt } = TINY;
    const r3 = await kiln("train", "--config", writeConfig("no_ckpt.json", noCkpt), "--backend", "cpu", "--resume");
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain("resume: the config has no checkpoint section (checkpoint.dir) to resume from");
  }, 60_000);

  it("an invalid config exits 2 naming the field and the allowed values", async () => {
    const bad = { ...TINY, model: { ...TINY.model, arch: "gpt3" }, optimizer: { ...TINY.optimizer, betas: [0.9, 0.99] } };
    const { code, stderr } = await kiln("train", "--config", writeConfig("bad.json", bad));
    expect(code).toBe(2);
    expect(stderr).toMatch(/model\.arch: .*"gpt2"\|"llama"/);
    expect(stderr).toMatch(/optimizer: unknown field 'betas' \(allowed: kind, lr, beta1, beta2, eps, weightDecay\)/);
  }, 60_000);

  // TINY written out as YAML by hand (flow and block style, a comment, 1e-3 as a YAML 1.2 float).
  const yamlOf = (arch: string, extra = "") => `# a tiny char-level model
model:
  arch: ${arch}
  nLayers: 1
  nHeads: 2
  dim: 16
  blockSize: 16
data: { path: ${JSON.stringify(TINY.data.path)}, tokenizer: char }
train: { batchSize: 2, iters: 100 }
optimizer:
  kind: sgd
  lr: 1e-3
  momentum: 0.9${extra}
schedule: { kind: wsd, warmupSteps: 10, decayStart: 50, decaySteps: 100, minLr: 1e-4 }
eval: { interval: 50, batches: 1 }
`;

  it("a YAML config trains like JSON, with the same validation messages (the field path)", async () => {
    const yamlFile = join(dir, "tiny.yaml");
    writeFileSync(yamlFile, yamlOf("gpt2"));
    const ok = await kiln("train", "--config", yamlFile, "--backend", "cpu", "--max-iters", "1", "--no-track");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/step 1\/100 \| loss \d\.\d{4} \| lr 9\.09e-5/);
    const badFile = join(dir, "bad.yml");
    writeFileSync(badFile, yamlOf("gpt3", "\n  beta1: 0.9"));
    const bad = await kiln("train", "--config", badFile);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/model\.arch: .*"gpt2"\|"llama"/);
    expect(bad.stderr).toContain("optimizer: unknown field 'beta1' (allowed: kind, lr, momentum, dampening, nesterov, weightDecay)");
    // A YAML syntax error and a repeated key name the line.
    const dup = join(dir, "dup.yaml");
    writeFileSync(dup, yamlOf("gpt2").replace("  nLayers: 1\n", "  nLayers: 1\n  nLayers: 2\n"));
    const r = await kiln("train", "--config", dup);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read the config .*dup\.yaml: Map keys must be unique at line 5/);
  }, 60_000);

  it("configs/shakespeare_char.json is nanoGPT's CPU configuration", () => {
    const cfg = parseTrainConfig(JSON.parse(readFileSync(repoFile("configs/shakespeare_char.json"), "utf8")), "shakespeare_char.json");
    expect(cfg.model).toMatchObject({ arch: "gpt2", nLayers: 4, nHeads: 4, dim: 128, blockSize: 64 });
    expect(cfg.train).toMatchObject({ batchSize: 12, iters: 2000, maxGradNorm: 1 });
    expect(cfg.optimizer).toMatchObject({ lr: 1e-3, beta2: 0.99, weightDecay: 0.1 });
    expect(cfg.schedule).toEqual({ kind: "cosine", warmupSteps: 100, decaySteps: 2000, minLr: 1e-4 });
  });
});

describe("configs/tinystories_llama.json", () => {
  it("is a small Llama on the shipped TinyStories shards, whose tokenizer matches the shards' index", async () => {
    const file = repoFile("configs/tinystories_llama.json");
    const cfg = parseTrainConfig(JSON.parse(readFileSync(file, "utf8")), file);
    expect(cfg.model).toMatchObject({ arch: "llama", nLayers: 4, dim: 128 });
    expect(cfg.eval.sample).toMatchObject({ prompt: "Once upon a time", tokenizer: "../data/tinystories-bpe/tokenizer.json" });
    // Opening the data checks the tokenizer's sha256 against the index and encodes the prompt.
    const data = await openRunData(cfg, join(file, ".."));
    try {
      expect(data.vocabSize).toBe(1024);
      const ids = data.codec!.encode("Once upon a time");
      expect(ids.length).toBeLessThan(8);
      expect(data.codec!.decode(ids)).toBe("Once upon a time");
    } finally {
      await data.close();
    }
  });
});
