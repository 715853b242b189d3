// checkpoint_layout.ts: how a training checkpoint sits on disk, and its error type. A run's checkpoint
// root holds one folder per saved step, `step-000123/`, each with the same four files; a save in
// progress is a hidden temp folder `.step-000123.tmp-<pid>` that becomes `step-000123/` by one rename.
// It owns the names and their parsing; writing, verifying and loading are the other files here.

/** The files of one checkpoint folder; manifest.json lists the other three with their sha256. */
export const CHECKPOINT_FILES = {
  model: "model.safetensors",
  optimizer: "optimizer.safetensors",
  state: "state.json",
  manifest: "manifest.json",
} as const;

/** The files the manifest covers (everything but itself). */
export const MANIFEST_COVERS = [CHECKPOINT_FILES.model, CHECKPOINT_FILES.optimizer, CHECKPOINT_FILES.state] as const;

/**
 * The shard file rank `rank` of `size` writes into a distributed checkpoint (sharded_checkpoint_writer.ts):
 * such a folder holds state.json, one shard per rank and manifest.json instead of the two safetensors files.
 */
export function shardFileName(rank: number, size: number): string {
  return `shard-${String(rank).padStart(5, "0")}-of-${String(size).padStart(5, "0")}.safetensors`;
}

/** Bumped when the layout or state.json changes incompatibly; a reader refuses versions it does not know. */
export const CHECKPOINT_FORMAT_VERSION = 1;

const STEP_DIR = /^step-(\d{6,})$/;
// NOTE: `-old` marks a checkpoint being replaced by a new save of the same step (a resumed run reaching it again).
const TEMP_DIR = /^\.step-(\d{6,})\.tmp-(\d+)(-old)?$/;

/** `step-000123` (zero-padded to 6 digits so names sort like steps; longer steps just grow). */
export function stepDirName(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

/** The temp folder a process with id `pid` writes step `step` into before renaming it. */
export function tempDirName(step: number, pid: number): string {
  return `.${stepDirName(step)}.tmp-${pid}`;
}

/** The step a checkpoint folder's name says, or undefined when it is not one. */
export function parseStepDir(name: string): number | undefined {
  const m = STEP_DIR.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The step and writer pid of a temp folder's name (a save, or a replacement, that has not finished), or undefined. */
export function parseTempDir(name: string): { step: number; pid: number; old: boolean } | undefined {
  const m = TEMP_DIR.exec(name);
  return m ? { step: Number(m[1]), pid: Number(m[2]), old: m[3] !== undefined } : undefined;
}

/** The last part of a path (either separator), without a trailing one. */
export function baseName(path: string): string {
  const parts = path.replace(/[\\/]+$/, "").split(/[\\/]/);
  return parts[parts.length - 1] ?? path;
}

export const joinPath = (dir: string, name: string): string => `${dir.replace(/[\\/]+$/, "")}/${name}`;

/**
 * Why a checkpoint cannot be written or used. `kind` says which: the disk filled up, the files are
 * damaged or incomplete, or the checkpoint belongs to another model or format.
 */
export class CheckpointError extends Error {
  constructor(
    readonly kind: "disk-full" | "write-failed" | "corrupt" | "model-mismatch" | "bad-state",
    message: string,
  ) {
    super(message);
    this.name = "CheckpointError";
  }
}
