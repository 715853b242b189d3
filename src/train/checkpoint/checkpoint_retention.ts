// checkpoint_retention.ts: which checkpoints a run keeps: the newest N, every M-th step, and always the
// one just written. It runs only after a new checkpoint is durable, so a run is never left without a
// good one. Folders of steps after the one just written (a run resumed from before them) are left
// alone: the resumed run replaces each when it reaches that step.

import type { CheckpointFs } from "./checkpoint_fs.js";
import { CheckpointError, joinPath, parseStepDir } from "./checkpoint_layout.js";

export interface RetentionPolicy {
  /** How many of the newest checkpoints to keep (>= 1). */
  readonly keepLast: number;
  /** Also keep every step that is a multiple of this (0 or absent: none). */
  readonly keepEvery?: number;
}

export function checkRetention(p: RetentionPolicy): void {
  if (!Number.isInteger(p.keepLast) || p.keepLast < 1) throw new CheckpointError("bad-state", `checkpoint keepLast must be a whole number >= 1, got ${p.keepLast}`);
  if (p.keepEvery !== undefined && (!Number.isInteger(p.keepEvery) || p.keepEvery < 0)) {
    throw new CheckpointError("bad-state", `checkpoint keepEvery must be a whole number >= 0 (0: off), got ${p.keepEvery}`);
  }
}

/** The steps of `steps` to delete once `current` has been written, under `policy`. */
export function stepsToDelete(steps: readonly number[], current: number, policy: RetentionPolicy): number[] {
  const older = [...new Set(steps)].filter((s) => s <= current).sort((a, b) => b - a);
  const every = policy.keepEvery ?? 0;
  return older.filter((s, rank) => s !== current && rank >= policy.keepLast && !(every > 0 && s % every === 0));
}

/** Deletes the checkpoint folders under `root` that `policy` does not keep; resolves to the deleted folders. */
export async function pruneCheckpoints(fs: CheckpointFs, root: string, current: number, policy: RetentionPolicy): Promise<string[]> {
  const dirs = new Map<number, string>();
  for (const name of await fs.list(root)) {
    const s = parseStepDir(name);
    if (s !== undefined) dirs.set(s, joinPath(root, name));
  }
  const deleted: string[] = [];
  for (const s of stepsToDelete([...dirs.keys()], current, policy)) {
    const dir = dirs.get(s)!;
    await fs.remove(dir);
    deleted.push(dir);
  }
  return deleted;
}
