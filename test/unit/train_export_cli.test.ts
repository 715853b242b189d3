// `kiln train` with an export section and `kiln export --checkpoint` through the launcher: the run
// exports its final model (HF folder + GGUF, export.json with each file's sha256) and registers each
// file as an artifact in the runs database; exporting the run's final checkpoint gives the same bytes
// (the trainer's memory and the checkpoint file agree); a missing or corrupted checkpoint and an
// unwritable or foreign output folder each end in a clear error with nothing left that looks like an export.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunStore } from "../../src/train/index.js";
import { kiln, type Ran } from "../helpers/kiln_cli.js";
import { repoFile } from "../helpers/fixtures.js";
import { sqliteMissing } from "../helpers/requirements.js";

const dir = mkdtempSync(join(tmpdir(), "kiln-export-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

const CONFIG = {
  model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16 },
  data: { path: "shakespeare.txt", tokenizer: "char" },
  train: { batchSize: 2, iters: 3 },
  optimizer: { kind: "adamw", lr: 1e-2 },
  schedule: { kind: "constant" },
  eval: { interval: 3, batches: 1 },
  checkpoint: { dir: "ckpt", every: 3 },
  export: { dir: "export" },
};

let trained: Ran;
beforeAll(async () => {
  writeFileSync(join(dir, "shakespeare.txt"), readFileSync(repoFile("data/tinyshakespeare/input.txt"), "utf8").slice(0, 20_000));
  writeFileSync(join(dir, "tiny.json"), JSON.stringify(CONFIG));
  trained = await kiln("train", "--config", join(dir, "tiny.json"), "--backend", "cpu");
}, 120_000);

/** The folder holds nothing that looks like an export (no out folder, no temp folder left behind). */
function noExportLeft(parent: string, name: string): void {
  expect(existsSync(join(parent, name))).toBe(false);
  expect(readdirSync(parent).filter((n) => n.startsWith(`.${name}.`))).toEqual([]);
}

describe("kiln train with an export section", () => {
  it("exports the final model next to the config, with export.json listing every file's sha256", () => {
    expect(trained.code, trained.stderr).toBe(0);
    const out = join(dir, "export");
    expect(trained.stdout).toContain(`exported the model of step 3 to ${out}: `);
    const manifest = JSON.parse(readFileSync(join(out, "export.json"), "utf8")) as { step: number; formats: string[]; files: { name: string; format: string; sha256: string; bytes: number }[] };
    expect(manifest).toMatchObject({ step: 3, formats: ["hf", "gguf"] });
    expect(manifest.files.map((f) => f.name).sort()).toEqual(["config.json", "generation_config.json", "model.gguf", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    for (const f of manifest.files) expect(f.sha256, f.name).toBe(sha256(join(out, f.name)));
  });

  it.skipIf(sqliteMissing())(`registers each exported file as an artifact with its sha256 ${sqliteMissing() ?? ""}`, () => {
    const store = RunStore.open(join(dir, "runs", "runs.sqlite"));
    try {
      const run = store.find("tiny");
      const exported = store.artifacts(run.id).filter((a) => a.kind.startsWith("export-"));
      expect(exported.map((a) => a.kind).sort()).toEqual(["export-gguf", "export-hf", "export-hf", "export-hf", "export-hf", "export-hf", "export-manifest"]);
      for (const a of exported) {
        expect(a.step).toBe(3);
        expect(a.sha256, a.path).toBe(sha256(a.path));
      }
      expect(store.artifacts(run.id).some((a) => a.kind === "checkpoint")).toBe(true);
    } finally {
      store.close();
    }
  });
});

describe("kiln export", () => {
  it("exports the run's final checkpoint to the same bytes as the run's own export (the run's folder found from the checkpoint)", async () => {
    const r = await kiln("export", "--checkpoint", join(dir, "ckpt"), "--out", join(dir, "again"));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`exported ${join(dir, "ckpt", "step-000003")} (step 3) to ${join(dir, "again")}`);
    for (const f of ["model.safetensors", "model.gguf", "tokenizer.json", "config.json"]) {
      expect(sha256(join(dir, "again", f)), f).toBe(sha256(join(dir, "export", f)));
    }
    // --format gguf writes only the GGUF; exporting again replaces an earlier export.
    const g = await kiln("export", "--checkpoint", join(dir, "ckpt", "step-000003"), "--out", join(dir, "again"), "--format", "gguf");
    expect(g.code, g.stderr).toBe(0);
    expect(readdirSync(join(dir, "again")).sort()).toEqual(["export.json", "model.gguf"]);
  }, 90_000);

  it("refuses a missing checkpoint, naming it", async () => {
    const r = await kiln("export", "--checkpoint", join(dir, "nope"), "--out", join(dir, "x1"));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`checkpoint ${join(dir, "nope")} does not exist`);
    noExportLeft(dir, "x1");
  }, 90_000);

  it("refuses a corrupted checkpoint, naming the file and the sha256 mismatch", async () => {
    const bad = join(dir, "bad-ckpt");
    mkdirSync(bad);
    const src = join(dir, "ckpt", "step-000003");
    mkdirSync(join(bad, "step-000003"));
    for (const f of readdirSync(src)) writeFileSync(join(bad, "step-000003", f), readFileSync(join(src, f)));
    const model = join(bad, "step-000003", "model.safetensors");
    const bytes = readFileSync(model);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(model, bytes);
    const r = await kiln("export", "--checkpoint", join(bad, "step-000003"), "--out", join(dir, "x2"), "--config", join(dir, "tiny.json"));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model\.safetensors: sha256 [0-9a-f]+… does not match the manifest's/);
    noExportLeft(dir, "x2");
    // Given the run's root, there is no good checkpoint to fall back to: said so.
    const root = await kiln("export", "--checkpoint", bad, "--out", join(dir, "x2"));
    expect(root.code).toBe(1);
    expect(root.stderr).toContain(`${bad} holds no good checkpoint`);
    noExportLeft(dir, "x2");
  }, 90_000);

  it("refuses an output folder it cannot create, and a folder that is not an earlier export", async () => {
    writeFileSync(join(dir, "a-file"), "not a folder");
    const r = await kiln("export", "--checkpoint", join(dir, "ckpt"), "--out", join(dir, "a-file", "out"));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot create the folder ${join(dir, "a-file")}`);
    mkdirSync(join(dir, "mine"));
    writeFileSync(join(dir, "mine", "notes.txt"), "keep me");
    const f = await kiln("export", "--checkpoint", join(dir, "ckpt"), "--out", join(dir, "mine"));
    expect(f.code).toBe(1);
    expect(f.stderr).toContain(`${join(dir, "mine")} already exists and is not a kiln export`);
    expect(readdirSync(join(dir, "mine"))).toEqual(["notes.txt"]);
  }, 90_000);

  it("usage errors exit 2", async () => {
    const r = await kiln("export", "--checkpoint", join(dir, "ckpt"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("export: --out is required");
    const f = await kiln("export", "--checkpoint", join(dir, "ckpt"), "--out", join(dir, "x3"), "--format", "onnx");
    expect(f.code).toBe(2);
    expect(f.stderr).toContain("--format must be hf, gguf or both, got 'onnx'");
  }, 90_000);
});
