// run.ts: one tracked run as the trainer holds it: log a step's metrics, register an artifact with
// its checksum, finish with a status. Each call is one transaction, so a step's metrics land
// together or not at all, and a reader in another process never sees half a step.

import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Db } from "./database.js";

export type RunStatus = "running" | "finished" | "failed" | "killed";
export const END_STATUSES: readonly RunStatus[] = ["finished", "failed", "killed"];

/** Metric values by name (loss, eval_loss, lr, grad_norm, loss_scale, tokens_per_s, mfu, mem_bytes, ...). */
export type Metrics = Readonly<Record<string, number>>;

export interface ArtifactInput {
  /** What it is: checkpoint, export, gguf, ... */
  readonly kind: string;
  readonly path: string;
  readonly step?: number;
  /** Known already (a checkpoint manifest has it); computed from the file when absent. */
  readonly sha256?: string;
  readonly bytes?: number;
}

/** sha256 (hex) and size of a file, read in 1 MiB chunks. */
export function fileDigest(path: string): { sha256: string; bytes: number } {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  let bytes = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; bytes += n) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return { sha256: hash.digest("hex"), bytes };
}

function checkStep(step: number, what: string): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`${what}: step must be a non-negative integer, got ${step}`);
}

export class Run {
  private readonly insertMetric;
  private readonly insertArtifact;

  constructor(private readonly db: Db, readonly id: string, readonly name: string) {
    this.insertMetric = db.prepare("INSERT OR REPLACE INTO metrics (run, step, key, value) VALUES (?, ?, ?, ?)");
    this.insertArtifact = db.prepare("INSERT INTO artifacts (run, step, kind, path, sha256, bytes, created) VALUES (?, ?, ?, ?, ?, ?, ?)");
  }

  /** Record `metrics` at `step`; logging a key again at the same step replaces it. NaN and ±Infinity are kept. */
  log(step: number, metrics: Metrics): void {
    checkStep(step, `run ${this.id}: log`);
    const rows = Object.entries(metrics);
    for (const [key, value] of rows) {
      if (key === "") throw new Error(`run ${this.id}: log at step ${step}: a metric has an empty name`);
      if (typeof value !== "number") throw new Error(`run ${this.id}: log at step ${step}: metric '${key}' is ${typeof value}, not a number`);
    }
    // NOTE: SQLite stores NaN as NULL; the store reads NULL back as NaN (a diverged fp16 step stays visible).
    this.db.transaction(() => {
      for (const [key, value] of rows) this.insertMetric.run(this.id, step, key, Number.isNaN(value) ? null : value);
    })();
  }

  /** Record text the model generated from `prompt` at `step` (a sample at evaluation); again at the same step replaces it. */
  sample(step: number, prompt: string, text: string): void {
    checkStep(step, `run ${this.id}: sample`);
    this.db.prepare("INSERT OR REPLACE INTO samples (run, step, prompt, text) VALUES (?, ?, ?, ?)").run(this.id, step, prompt, text);
  }

  /** Register a checkpoint or export with its checksum and size; returns what was recorded. */
  artifact(a: ArtifactInput): { sha256: string; bytes: number; path: string } {
    if (a.step !== undefined) checkStep(a.step, `run ${this.id}: artifact`);
    const path = resolve(a.path);
    let digest: { sha256: string; bytes: number };
    if (a.sha256 !== undefined) {
      if (!/^[0-9a-f]{64}$/.test(a.sha256)) throw new Error(`run ${this.id}: artifact ${path}: sha256 must be 64 lowercase hex digits`);
      digest = { sha256: a.sha256, bytes: a.bytes ?? statSync(path).size };
    } else {
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) throw new Error(`run ${this.id}: artifact ${path}: no such file`);
      if (!st.isFile()) throw new Error(`run ${this.id}: artifact ${path}: not a file (for a folder, pass the sha256 of its manifest)`);
      digest = fileDigest(path);
    }
    this.insertArtifact.run(this.id, a.step ?? null, a.kind, path, digest.sha256, digest.bytes, Date.now());
    return { ...digest, path };
  }

  /** Mark the run ended (finished, failed or killed) now. */
  finish(status: RunStatus = "finished"): void {
    if (!END_STATUSES.includes(status)) throw new Error(`run ${this.id}: finish: status must be one of ${END_STATUSES.join(", ")}, got '${status}'`);
    this.db.prepare("UPDATE runs SET status = ?, ended = ? WHERE id = ?").run(status, Date.now(), this.id);
  }
}
