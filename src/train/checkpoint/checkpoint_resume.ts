// checkpoint_resume.ts: finding and loading the checkpoint to resume from. It lists a root's
// checkpoints, walks them newest to oldest and takes the first that verifies, warning about each one
// it skips (which, and why) and about temp folders of interrupted saves; it loads a checkpoint back
// into plain data, refusing one whose files do not verify or whose model is not the one being trained.
// It also removes the temp folders dead writers left. Writing is checkpoint_writer.ts.

import { requireNodeBuiltin } from "../../core/host.js";
import { FileSource } from "../../models/formats/file_source.js";
import { readSafetensorsHeader } from "../../models/formats/safetensors.js";
import { CHECKPOINT_FILES, CheckpointError, joinPath, parseStepDir, parseTempDir, stepDirName } from "./checkpoint_layout.js";
import type { CheckpointState, CheckpointTensor, Json, ModelSignature } from "./checkpoint_state.js";
import { checkSignature } from "./checkpoint_state.js";
import { verifyCheckpoint } from "./checkpoint_verify.js";

export type Warn = (message: string) => void;

export interface CheckpointListing {
  /** Checkpoint folders (complete or not: verify says), newest step first. */
  readonly steps: readonly { readonly step: number; readonly dir: string }[];
  /** Temp folders of saves that have not finished (or were killed). */
  readonly partial: readonly { readonly step: number; readonly pid: number; readonly old: boolean; readonly dir: string }[];
}

export function listCheckpoints(root: string): CheckpointListing {
  const fs = requireNodeBuiltin("node:fs", "listing checkpoints");
  const names = fs.existsSync(root) ? fs.readdirSync(root) : [];
  const steps = names.flatMap((n) => {
    const step = parseStepDir(n);
    return step === undefined ? [] : [{ step, dir: joinPath(root, n) }];
  });
  const partial = names.flatMap((n) => {
    const t = parseTempDir(n);
    return t ? [{ ...t, dir: joinPath(root, n) }] : [];
  });
  return { steps: steps.sort((a, b) => b.step - a.step), partial };
}

/**
 * The newest checkpoint under `root` that verifies, or undefined when there is none. Every corrupted
 * or incomplete newer one, and every temp folder of an unfinished save, is named in a warning with why.
 */
export function latestGoodCheckpoint(root: string, warn: Warn = console.warn): { step: number; dir: string } | undefined {
  const { steps, partial } = listCheckpoints(root);
  for (const p of partial) warn(`checkpoint: ignoring ${p.dir}, a partial write of step ${p.step} (a save by process ${p.pid} that did not finish)`);
  let skipped = 0;
  for (const c of steps) {
    const report = verifyCheckpoint(c.dir);
    if (report.ok) {
      if (skipped) warn(`checkpoint: resuming from ${c.dir} (step ${c.step}), the newest good checkpoint; ${skipped} newer one${skipped > 1 ? "s were" : " was"} skipped`);
      return c;
    }
    skipped++;
    warn(`checkpoint: skipping ${c.dir}, corrupted or incomplete: ${report.problems.join("; ")}`);
  }
  if (skipped) warn(`checkpoint: no good checkpoint under ${root} (${skipped} skipped)`);
  return undefined;
}

/** The tensors of a safetensors file, in `order` (their names as state.json lists them). */
function readTensors(path: string, order: readonly string[]): CheckpointTensor[] {
  const header = readSafetensorsHeader(path);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  if (header.tensors.length !== order.length || !order.every((n) => byName.has(n))) {
    throw new CheckpointError("corrupt", `${path} holds tensors [${[...byName.keys()].join(", ")}], but state.json lists [${order.join(", ")}]`);
  }
  const src = new FileSource(path);
  try {
    return order.map((name) => {
      const t = byName.get(name)!;
      return { name, dtype: t.dtype, shape: t.shape, bytes: src.read(t.offset, t.nbytes, `tensor '${name}'`) };
    });
  } finally {
    src.close();
  }
}

export interface LoadOptions {
  /** The model being trained: a checkpoint of another architecture or other parameters is refused. */
  readonly expect?: ModelSignature;
}

/** Loads a checkpoint folder after verifying it; throws a CheckpointError naming what is wrong. */
export function loadCheckpoint(dir: string, opts: LoadOptions = {}): CheckpointState {
  const report = verifyCheckpoint(dir);
  if (!report.ok) throw new CheckpointError("corrupt", `checkpoint ${dir} cannot be used: ${report.problems.join("; ")}`);
  const fs = requireNodeBuiltin("node:fs", "loading a checkpoint");
  const s = JSON.parse(fs.readFileSync(joinPath(dir, CHECKPOINT_FILES.state), "utf8")) as {
    step: number;
    config: Json;
    model: { architecture: string; tensors: string[] };
    optimizer: { state: Json; tensors: string[] };
    rng: Json;
    loader: Json;
    shards?: { worldSize: number };
  };
  if (s.shards) throw new CheckpointError("bad-state", `${dir} is a distributed checkpoint written by ${s.shards.worldSize} ranks: load it part by part (trainer_sharded_checkpoint.ts loadShardedCheckpoint, on any world size)`);
  const modelTensors = readTensors(joinPath(dir, CHECKPOINT_FILES.model), s.model.tensors);
  if (opts.expect) {
    checkSignature(opts.expect, { architecture: s.model.architecture, params: modelTensors.map((t) => ({ name: t.name, shape: t.shape })) }, dir);
  }
  return {
    step: s.step,
    config: s.config,
    model: { architecture: s.model.architecture, tensors: modelTensors },
    optimizer: { tensors: readTensors(joinPath(dir, CHECKPOINT_FILES.optimizer), s.optimizer.tensors), state: s.optimizer.state },
    rng: s.rng,
    loader: s.loader,
  };
}

/**
 * The newest good checkpoint under `root`, loaded, or undefined when there is none. A corrupted newest
 * one falls back to the previous with a warning; a good one of another model is an error (the run's
 * config is wrong, and falling back past it would resume the wrong thing).
 */
export function resumeFromLatest(root: string, opts: LoadOptions & { warn?: Warn } = {}): CheckpointState | undefined {
  const good = latestGoodCheckpoint(root, opts.warn);
  return good ? loadCheckpoint(good.dir, opts) : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temp folders of saves whose writer is gone (killed mid-write), with a warning each; returns
 * how many. Call it before this process starts saving: a folder named with this process's own id is then
 * a leftover of an earlier process that had the same id (containers reuse ids), never a write in flight.
 */
export async function removePartialWrites(root: string, warn: Warn = console.warn): Promise<number> {
  const fs = requireNodeBuiltin("node:fs", "cleaning checkpoints");
  const fsp = fs.promises;
  let removed = 0;
  for (const p of listCheckpoints(root).partial) {
    if (p.pid !== process.pid && processAlive(p.pid)) continue;
    const final = joinPath(root, stepDirName(p.step));
    if (p.old && !fs.existsSync(final)) {
      // NOTE: the writer died between moving a same-step checkpoint aside and renaming its replacement in:
      // the moved one is complete, so it goes back (the replacement's temp folder is removed as partial).
      await fsp.rename(p.dir, final);
      warn(`checkpoint: restored ${final} from ${p.dir}, which a save interrupted while replacing it`);
      continue;
    }
    await fsp.rm(p.dir, { recursive: true, force: true });
    warn(`checkpoint: removed ${p.dir}, a partial write of step ${p.step} left by process ${p.pid}`);
    removed++;
  }
  return removed;
}
