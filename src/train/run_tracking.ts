// run_tracking.ts: a training run recorded in the runs database (tracking/): where the config's
// `tracking` section puts it, and the glue that turns runTraining's events into the run's record
// (config with the precision path taken, seed, backend; per step loss, lr, grad_norm, step_ms,
// tokens_per_s, and under fp16 loss_scale and skipped_steps (overflows so far); eval_loss and samples; each
// durable checkpoint and each exported file as an artifact; mem_peak_<category>_bytes at each eval) and ends it as finished, failed or killed. The loop (run.ts)
// knows nothing of it: this file only listens to the events.

import { basename, extname, join } from "node:path";
import { CHECKPOINT_FILES } from "./checkpoint/index.js";
import type { TrainConfig } from "./config.js";
import type { RunEvent, RunOptions, RunResult } from "./run.js";
import { runTraining } from "./run.js";
import { memoryMetrics } from "./memory/run_memory.js";
import { configPath } from "./run_data.js";
import { RunsDbError } from "./tracking/errors.js";
import type { Run, RunStatus } from "./tracking/run.js";
import { DEFAULT_RUNS_DB, RunStore } from "./tracking/run_store.js";

/** Where a run is recorded: the database file and the run's name. */
export interface TrackingTarget {
  readonly db: string;
  readonly name: string;
}

/** The config's tracking target (database relative to the config's folder, name from its file); undefined when off. */
export function trackingTarget(cfg: TrainConfig, configFile: string, baseDir: string): TrackingTarget | undefined {
  const t = cfg.tracking;
  if (t && !t.enabled) return undefined;
  return { db: configPath(t?.db ?? DEFAULT_RUNS_DB, baseDir), name: t?.name ?? basename(configFile, extname(configFile)) };
}

export interface TrackedRunOptions extends RunOptions {
  /** Record the run there; absent: not recorded. */
  readonly tracking?: TrackingTarget;
}

export interface TrackedRunResult extends RunResult {
  /** The run's id in the runs database (absent when it was not recorded). */
  readonly runId?: string;
}

/** Records one run from its events; a tracking failure is one warning and ends the recording, never the training. */
class RunRecorder {
  private run: Run | undefined;
  private resumedFrom: number | undefined;
  private precisionPath: string | undefined;
  private skipped = 0;
  private broken = false;

  constructor(
    private readonly store: RunStore,
    private readonly name: string,
    private readonly cfg: TrainConfig,
    private readonly backend: string,
    private readonly warn: (message: string) => void,
  ) {}

  get runId(): string | undefined {
    return this.run?.id;
  }

  on(e: RunEvent): void {
    // NOTE: the row is made at the first event after "resume", so a resumed run's config can say from which step.
    if (e.kind === "start") {
      this.precisionPath = e.precision;
      return;
    }
    if (e.kind === "resume") {
      this.resumedFrom = e.step;
      return;
    }
    this.guard((run) => {
      if (e.kind === "step") {
        const tokens = this.cfg.train.batchSize * this.cfg.model.blockSize * this.cfg.train.gradAccumSteps;
        if (e.skipped) this.skipped++;
        const scaling: Record<string, number> = this.cfg.precision === "fp16" ? { loss_scale: e.lossScale, skipped_steps: this.skipped } : {};
        run.log(e.step, { loss: e.loss, lr: e.lr, grad_norm: e.gradNorm, ...scaling, step_ms: e.ms, ...(e.ms > 0 ? { tokens_per_s: tokens / (e.ms / 1000) } : {}) });
      } else if (e.kind === "eval") {
        run.log(e.step, { eval_loss: e.loss });
      } else if (e.kind === "memory") {
        run.log(e.step, memoryMetrics(e.memory));
      } else if (e.kind === "sample") {
        run.sample(e.step, e.prompt, e.text);
      } else if (e.kind === "checkpoint") {
        // NOTE: reported once durable; the manifest lists every other file's sha256, so its own sha256 pins the whole folder.
        run.artifact({ kind: "checkpoint", path: join(e.dir, CHECKPOINT_FILES.manifest), step: e.step });
      } else {
        // NOTE: each exported file on its own ("export-hf", "export-gguf"), so the GGUF a user copies elsewhere is findable by its sha256.
        for (const f of e.files) run.artifact({ kind: `export-${f.format}`, path: join(e.dir, f.name), step: e.step, sha256: f.sha256, bytes: f.bytes });
      }
    });
  }

  end(status: RunStatus): void {
    this.guard((run) => run.finish(status));
    this.store.close();
  }

  private guard(f: (run: Run) => void): void {
    if (this.broken) return;
    try {
      this.run ??= this.store.startRun({
        name: this.name,
        config: { ...this.cfg, ...(this.precisionPath ? { precisionPath: this.precisionPath } : {}), ...(this.resumedFrom === undefined ? {} : { resumedFrom: this.resumedFrom }) },
        seed: this.cfg.train.seed,
        backend: this.backend,
      });
      f(this.run);
    } catch (err) {
      this.broken = true;
      this.warn(`warning: tracking stopped, the run goes on unrecorded from here: ${(err as Error).message}`);
    }
  }
}

/** runTraining, recorded in `opts.tracking`'s database; a database that cannot be opened is one warning. */
export async function runTrackedTraining(cfg: TrainConfig, opts: TrackedRunOptions): Promise<TrackedRunResult> {
  const warn = opts.warn ?? console.warn;
  if (!opts.tracking) return runTraining(cfg, opts);
  let store: RunStore;
  try {
    store = RunStore.open(opts.tracking.db, { create: true });
  } catch (err) {
    if (!(err instanceof RunsDbError)) throw err;
    warn(`warning: this run is not tracked: ${err.message.split("\n")[0]}`);
    return runTraining(cfg, opts);
  }
  const recorder = new RunRecorder(store, opts.tracking.name, cfg, opts.backend.name, warn);
  const report = opts.report;
  let result: RunResult;
  try {
    result = await runTraining(cfg, { ...opts, report: (e) => { recorder.on(e); report?.(e); } });
  } catch (err) {
    recorder.end("failed");
    throw err;
  }
  recorder.end(opts.signal?.aborted ? "killed" : "finished");
  return { ...result, ...(recorder.runId ? { runId: recorder.runId } : {}) };
}
