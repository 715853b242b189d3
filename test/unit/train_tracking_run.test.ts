// train_tracking_run.test.ts: a training run recorded in the runs database (src/train/run_tracking.ts),
// in-process on cpu: two tiny runs with two learning rates land in one database with the exact losses
// their events reported, `kiln runs compare` names optimizer.lr as their only config difference, each
// durable checkpoint is an artifact with its manifest's sha256; a stopped run ends "killed", a run that
// throws "failed", a resumed run is a new row noting resumedFrom, and an unusable database is a warning.

import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { runsCommand } from "../../src/cli/runs_command.js";
import { selectBackend } from "../../src/index.js";
import type { RunEvent } from "../../src/train/run.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { runTrackedTraining, trackingTarget } from "../../src/train/run_tracking.js";
import { RunStore } from "../../src/train/tracking/run_store.js";
import { repoFile } from "../helpers/fixtures.js";
import { sqliteMissing } from "../helpers/requirements.js";
import { skipLabel } from "../helpers/skip_reasons.js";

const noSqlite = sqliteMissing();
const dir = mkdtempSync(join(tmpdir(), "kiln-track-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, "runs.sqlite");

const tiny = (lr: number, over: { iters?: number; tracking?: object } = {}) => ({
  model: { arch: "gpt2", nLayers: 1, nHeads: 2, dim: 16, blockSize: 16 },
  data: { path: repoFile("data/tinyshakespeare/input.txt"), tokenizer: "char" },
  train: { batchSize: 2, iters: over.iters ?? 6 },
  optimizer: { kind: "adamw", lr },
  schedule: { kind: "constant" },
  eval: { interval: 3, batches: 1 },
  checkpoint: { dir: "ckpt", every: 3 },
  tracking: over.tracking ?? { db },
});

/** Trains `json` written as `<folder>/<name>.json` (its checkpoint.dir is relative to that folder); returns its events and result. */
async function train(folder: string, name: string, json: unknown, opts: { resume?: boolean; signal?: AbortSignal; onEvent?: (e: RunEvent) => void } = {}) {
  const base = join(dir, folder);
  mkdirSync(base, { recursive: true });
  const file = join(base, `${name}.json`);
  writeFileSync(file, JSON.stringify(json));
  const cfg = parseTrainConfig(json, file);
  const events: RunEvent[] = [];
  const warnings: string[] = [];
  const tracking = trackingTarget(cfg, file, base);
  const result = await runTrackedTraining(cfg, {
    backend: await selectBackend("cpu"), baseDir: base, ...(tracking ? { tracking } : {}), warn: (m) => void warnings.push(m),
    report: (e) => { events.push(e); opts.onEvent?.(e); }, resume: opts.resume ?? false, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { events, result, warnings };
}

async function runs(...args: string[]): Promise<{ code: number; stdout: string }> {
  const out: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((m: unknown) => void out.push(String(m)));
  try {
    return { code: await runsCommand.run(args), stdout: out.join("\n") };
  } finally {
    log.mockRestore();
  }
}

const stepLosses = (evs: RunEvent[]) => evs.flatMap((e) => (e.kind === "step" ? [[e.step, e.loss] as const] : []));
const evalLosses = (evs: RunEvent[]) => evs.flatMap((e) => (e.kind === "eval" ? [[e.step, e.loss] as const] : []));
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe.skipIf(!!noSqlite)(`kiln train's record in the runs database${skipLabel(noSqlite)}`, () => {
  it("two learning rates: the exact losses, lr the only config difference, checkpoints as artifacts", async () => {
    const low = await train("a", "lr-low", tiny(1e-3));
    const high = await train("b", "lr-high", tiny(4e-3));
    expect(low.warnings).toEqual([]);
    expect(low.result.runId).toMatch(/^[0-9a-f]{8}$/);
    const store = RunStore.open(db);
    try {
      for (const [name, r] of [["lr-low", low], ["lr-high", high]] as const) {
        const info = store.find(name);
        expect(info.id).toBe(r.result.runId);
        expect(info).toMatchObject({ status: "finished", seed: 1337, backend: "cpu" });
        expect(info.config).toMatchObject({ optimizer: { lr: name === "lr-low" ? 1e-3 : 4e-3 } });
        expect(store.series(info.id, "loss")).toEqual(stepLosses(r.events));
        expect(store.series(info.id, "eval_loss")).toEqual(evalLosses(r.events));
        expect(store.series(info.id, "loss").map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6]);
        const mem = ["activations", "gradients", "optimizer", "parameters", "total", "workspace"].flatMap((c) => [`mem_live_${c}_bytes`, `mem_peak_${c}_bytes`]);
        expect(store.metricKeys(info.id)).toEqual(["eval_loss", "grad_norm", "loss", "lr", ...mem, "step_ms", "tokens_per_s"].sort());
        for (const [s, ms] of store.series(info.id, "step_ms")) {
          const [, tps] = store.series(info.id, "tokens_per_s").find(([t]) => t === s)!;
          expect(tps).toBeCloseTo((2 * 16) / (ms / 1000), 6);
        }
        const folder = name === "lr-low" ? "a" : "b";
        const manifests = [3, 6].map((s) => join(dir, folder, "ckpt", `step-00000${s}`, "manifest.json"));
        expect(store.artifacts(info.id).map((a) => [a.step, a.kind, a.path, a.sha256])).toEqual(manifests.map((m, i) => [3 * (i + 1), "checkpoint", m, sha256(m)]));
      }
      expect(stepLosses(low.events)).not.toEqual(stepLosses(high.events));
    } finally {
      store.close();
    }
    const { code, stdout } = await runs("compare", "lr-low", "lr-high", "--db", db);
    expect(code).toBe(0);
    const configTable = stdout.split("\n\n")[1]!.split("\n");
    expect(configTable[0]).toMatch(/^CONFIG\s+A\s+B$/);
    expect(configTable.slice(1).map((l) => l.split(/\s+/))).toEqual([["optimizer.lr", "0.001", "0.004"]]);
  }, 30_000);

  it("a stopped run ends killed, a failing one failed, a resumed one is a new row with resumedFrom", async () => {
    const stop = new AbortController();
    const killed = await train("c", "stopped", tiny(1e-3), { signal: stop.signal, onEvent: (e) => e.kind === "step" && e.step === 2 && stop.abort() });
    const resumed = await train("c", "stopped", tiny(1e-3, { iters: 4 }), { resume: true });
    const failing = { ...tiny(1e-3), data: { path: join(dir, "missing.txt"), tokenizer: "char" }, checkpoint: undefined };
    await expect(train("d", "broken", failing)).rejects.toThrow(/missing\.txt/);
    const store = RunStore.open(db);
    try {
      const k = store.runs().find((r) => r.id === killed.result.runId)!;
      expect(k.status).toBe("killed");
      expect(store.series(k.id, "loss").map(([s]) => s)).toEqual([1, 2]);
      const r = store.find("stopped");
      expect(r.id).toBe(resumed.result.runId);
      expect(r).toMatchObject({ status: "finished", config: { resumedFrom: 2 } });
      expect(store.series(r.id, "loss")).toEqual(stepLosses(resumed.events));
      expect(store.series(r.id, "loss").map(([s]) => s)).toEqual([3, 4]);
      expect(store.find("broken")).toMatchObject({ status: "failed", backend: "cpu" });
    } finally {
      store.close();
    }
  }, 30_000);

  it("an unusable database, or tracking.enabled false, leaves the run unrecorded and the training intact", async () => {
    const junk = join(dir, "junk.sqlite");
    writeFileSync(junk, "not a database");
    const r = await train("e", "junk", { ...tiny(1e-3, { iters: 2, tracking: { db: junk } }), checkpoint: undefined });
    expect(r.result.steps).toHaveLength(2);
    expect(r.result.runId).toBeUndefined();
    expect(r.warnings).toEqual([expect.stringMatching(new RegExp(`^warning: this run is not tracked: .*junk\\.sqlite is not a kiln runs database`))]);
    expect(trackingTarget(parseTrainConfig({ ...tiny(1e-3), tracking: { enabled: false } }, "x.json"), "x.json", dir)).toBeUndefined();
    expect(trackingTarget(parseTrainConfig({ ...tiny(1e-3), tracking: undefined }, "/cfg/x.json"), "/cfg/x.json", "/cfg")).toEqual({ db: "/cfg/runs/runs.sqlite", name: "x" });
    expect(() => parseTrainConfig({ ...tiny(1e-3), tracking: { dbb: "x" } }, "x.json")).toThrow(/tracking: unknown field 'dbb' \(allowed: db, name, enabled\)/);
  }, 30_000);
});
