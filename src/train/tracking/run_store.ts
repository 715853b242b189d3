// run_store.ts: the runs database as the trainer and `kiln runs` see it: start a run (its config,
// seed, code version and backend), and read runs, metric series and artifacts back. Finding a run
// by id, id prefix or name lives here too, with close matches when nothing matches.

import { randomBytes } from "node:crypto";
import { codeVersion } from "./code_version.js";
import type { Db } from "./database.js";
import { openDb } from "./database.js";
import { UnknownRunError, closeMatches } from "./errors.js";
import type { RunStatus } from "./run.js";
import { Run } from "./run.js";

/** The runs database's default file, relative to the working directory: next to the runs. */
export const DEFAULT_RUNS_DB = "runs/runs.sqlite";

export interface StartRunOptions {
  /** A name a person gives the run (default: its id). */
  readonly name?: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly seed?: number;
  /** Backend the run trains on (cpu, webgpu, cuda). */
  readonly backend: string;
  /** Default: git describe of the working directory, else kiln's version (code_version.ts). */
  readonly codeVersion?: string;
}

export interface RunInfo {
  readonly id: string;
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly created: number;
  readonly config: Record<string, unknown>;
  readonly seed: number | null;
  readonly codeVersion: string;
  readonly backend: string;
  readonly status: RunStatus;
  readonly ended: number | null;
}

export interface ArtifactInfo {
  readonly step: number | null;
  readonly kind: string;
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
}

/** A metric's points in step order; NaN where a step logged NaN. */
export type Series = readonly (readonly [step: number, value: number])[];

interface RunRow {
  id: string; name: string; created: number; config: string; seed: number | null;
  code_version: string; backend: string; status: RunStatus; ended: number | null;
}

function toInfo(r: RunRow): RunInfo {
  return { id: r.id, name: r.name, created: r.created, config: JSON.parse(r.config) as Record<string, unknown>, seed: r.seed,
    codeVersion: r.code_version, backend: r.backend, status: r.status, ended: r.ended };
}

export class RunStore {
  private constructor(private readonly db: Db, readonly file: string) {}

  /** Open the database at `file`; `create` makes it (and its folder) when missing. */
  static open(file: string = DEFAULT_RUNS_DB, opts: { create?: boolean } = {}): RunStore {
    return new RunStore(openDb(file, { create: opts.create ?? false }), file);
  }

  /** Record a new run as running and return its handle for logging. */
  startRun(opts: StartRunOptions): Run {
    if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) throw new Error(`startRun: seed must be an integer, got ${opts.seed}`);
    if (!opts.backend) throw new Error("startRun: backend is required (cpu, webgpu, cuda)");
    const id = randomBytes(4).toString("hex");
    const name = opts.name ?? id;
    this.db.prepare("INSERT INTO runs (id, name, created, config, seed, code_version, backend, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'running')")
      .run(id, name, Date.now(), JSON.stringify(opts.config), opts.seed ?? null, opts.codeVersion ?? codeVersion(), opts.backend);
    return new Run(this.db, id, name);
  }

  /** Every run, oldest first. */
  runs(): RunInfo[] {
    return (this.db.prepare("SELECT * FROM runs ORDER BY created, rowid").all() as RunRow[]).map(toInfo);
  }

  /** The run whose id, unique id prefix or name is `query` (the newest, where several share a name). */
  find(query: string): RunInfo {
    const all = this.runs();
    const byId = all.find((r) => r.id === query);
    if (byId) return byId;
    const byName = all.filter((r) => r.name === query);
    if (byName.length > 0) return byName[byName.length - 1]!;
    const byPrefix = all.filter((r) => r.id.startsWith(query));
    if (byPrefix.length === 1) return byPrefix[0]!;
    const candidates = byPrefix.length > 1 ? byPrefix.map((r) => r.id) : closeMatches(query, all.flatMap((r) => [r.id, r.name]));
    throw new UnknownRunError(query, this.file, candidates);
  }

  /** The metric names a run logged, sorted. */
  metricKeys(runId: string): string[] {
    return (this.db.prepare("SELECT DISTINCT key FROM metrics WHERE run = ? ORDER BY key").all(runId) as { key: string }[]).map((r) => r.key);
  }

  /** One metric of one run, by step. */
  series(runId: string, key: string): Series {
    const rows = this.db.prepare("SELECT step, value FROM metrics WHERE run = ? AND key = ? ORDER BY step").raw().all(runId, key) as [number, number | null][];
    return rows.map(([s, v]) => [s, v ?? Number.NaN] as const);
  }

  /** Number of metric rows a run has (every key at every step). */
  metricRows(runId: string): number {
    return (this.db.prepare("SELECT count(*) AS n FROM metrics WHERE run = ?").get(runId) as { n: number }).n;
  }

  /** A run's samples (text generated at evaluations), by step. */
  samples(runId: string): { step: number; prompt: string; text: string }[] {
    return this.db.prepare("SELECT step, prompt, text FROM samples WHERE run = ? ORDER BY step").all(runId) as { step: number; prompt: string; text: string }[];
  }

  /** A run's artifacts in the order they were registered. */
  artifacts(runId: string): ArtifactInfo[] {
    return this.db.prepare("SELECT step, kind, path, sha256, bytes FROM artifacts WHERE run = ? ORDER BY rowid").all(runId) as ArtifactInfo[];
  }

  close(): void {
    this.db.close();
  }
}
