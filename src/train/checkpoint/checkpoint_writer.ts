// checkpoint_writer.ts: writes one checkpoint folder durably. Everything goes into a temp folder
// `.step-000123.tmp-<pid>` (model.safetensors, optimizer.safetensors, state.json, then manifest.json
// with each file's size and sha256), every file is fsynced, then the folder, then it is renamed to
// `step-000123` and the parent is fsynced. A crash before the rename leaves only a temp folder (which
// resume ignores and cleans); after it, a complete checkpoint. A failed write (a full disk) removes its
// temp folder and says so; it never touches another checkpoint. Scheduling (async, one in flight) and
// retention are async_checkpointer.ts; the safetensors layout is src/models/formats/safetensors.ts.

import { requireNodeBuiltin } from "../../core/host.js";
import { encodeSafetensorsHeader } from "../../models/formats/safetensors.js";
import type { CheckpointFs } from "./checkpoint_fs.js";
import { nodeCheckpointFs } from "./checkpoint_fs.js";
import { CHECKPOINT_FILES, CHECKPOINT_FORMAT_VERSION, CheckpointError, joinPath, stepDirName, tempDirName } from "./checkpoint_layout.js";
import type { ManifestEntry } from "./checkpoint_manifest.js";
import { buildManifest } from "./checkpoint_manifest.js";
import type { CheckpointState, CheckpointTensor } from "./checkpoint_state.js";
import { checkState, modelSignature, signatureHash } from "./checkpoint_state.js";

export interface WriteOptions {
  /** The file system to write through (default: Node's); tests inject faults here. */
  readonly fs?: CheckpointFs;
  /** Names the temp folder (default: this process's id). */
  readonly pid?: number;
}

// NOTE: data goes to the disk (and through sha256) in 1 MiB slices, so the event loop gets a turn between
// slices and the training step running beside the write is never held up by a whole tensor's hash.
const SLICE = 1 << 20;

/** What state.json holds: everything but the tensors, which live in the two safetensors files. */
export function stateJson(state: CheckpointState): string {
  return JSON.stringify(
    {
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      step: state.step,
      config: state.config,
      // NOTE: the tensors' names, in order: a load gives them back in this order (the safetensors header is a
      // JSON object, whose key order a reader cannot rely on).
      model: { architecture: state.model.architecture, signature: signatureHash(modelSignature(state)), tensors: state.model.tensors.map((t) => t.name) },
      optimizer: { state: state.optimizer.state, tensors: state.optimizer.tensors.map((t) => t.name) },
      rng: state.rng,
      loader: state.loader,
    },
    null,
    2,
  );
}

/** Writes `parts` to a new file at `path`, fsynced; resolves to its size and sha256 (the manifest's entry). */
export async function writeFile(fs: CheckpointFs, path: string, parts: Iterable<Uint8Array>): Promise<ManifestEntry> {
  const hash = requireNodeBuiltin("node:crypto", "hashing a checkpoint").createHash("sha256");
  let size = 0;
  const file = await fs.create(path);
  try {
    for (const part of parts) {
      for (let at = 0; at < part.length; at += SLICE) {
        const slice = part.subarray(at, Math.min(at + SLICE, part.length));
        hash.update(slice);
        await file.write(slice);
        size += slice.length;
      }
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return { size, sha256: hash.digest("hex") };
}

export function* safetensorsParts(tensors: readonly CheckpointTensor[]): Iterable<Uint8Array> {
  yield encodeSafetensorsHeader(tensors);
  for (const t of tensors) yield t.bytes;
}

export function writeFailure(err: unknown, dir: string): Error {
  if (err instanceof CheckpointError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const msg = (err as Error).message;
  const after = "the partial write was removed and earlier checkpoints are untouched";
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new CheckpointError("disk-full", `disk full (${code}) while writing checkpoint ${dir}: ${after}; free some space (or keep fewer checkpoints) and save again`);
  }
  return new CheckpointError("write-failed", `writing checkpoint ${dir} failed (${msg}): ${after}`);
}

/**
 * Writes `state` as `<root>/step-NNNNNN/` and resolves to that folder once it is durable. A folder of
 * the same step already there (from a run resumed before it) is replaced only after the new one is
 * complete. The tensors' bytes must not change until this resolves (async_checkpointer.ts snapshots them).
 */
export async function writeCheckpoint(root: string, state: CheckpointState, opts: WriteOptions = {}): Promise<string> {
  checkState(state);
  const fs = opts.fs ?? nodeCheckpointFs();
  const pid = opts.pid ?? process.pid;
  const final = joinPath(root, stepDirName(state.step));
  const temp = joinPath(root, tempDirName(state.step, pid));
  try {
    await fs.mkdir(root);
    await fs.remove(temp);
    await fs.mkdir(temp);
    const files: Record<string, ManifestEntry> = {};
    files[CHECKPOINT_FILES.model] = await writeFile(fs, joinPath(temp, CHECKPOINT_FILES.model), safetensorsParts(state.model.tensors));
    files[CHECKPOINT_FILES.optimizer] = await writeFile(fs, joinPath(temp, CHECKPOINT_FILES.optimizer), safetensorsParts(state.optimizer.tensors));
    files[CHECKPOINT_FILES.state] = await writeFile(fs, joinPath(temp, CHECKPOINT_FILES.state), [new TextEncoder().encode(stateJson(state))]);
    const manifest = JSON.stringify(buildManifest(state.step, files), null, 2);
    await writeFile(fs, joinPath(temp, CHECKPOINT_FILES.manifest), [new TextEncoder().encode(manifest)]);
    await fs.syncDir(temp);
  } catch (err) {
    await fs.remove(temp).catch(() => undefined);
    throw writeFailure(err, final);
  }
  await commitFolder(fs, root, temp, final);
  return final;
}

/**
 * The commit point of a checkpoint written into `temp` (complete and fsynced): one rename to `final`. A
 * folder of the same step is moved aside first (rename cannot replace a non-empty folder) and removed once
 * the new one is in place. Shared with the distributed writer (sharded_checkpoint_writer.ts).
 */
export async function commitFolder(fs: CheckpointFs, root: string, temp: string, final: string): Promise<void> {
  const old = `${temp}-old`;
  let movedAside = false;
  try {
    if (await fs.exists(final)) {
      await fs.rename(final, old);
      movedAside = true;
    }
    await fs.rename(temp, final);
  } catch (err) {
    if (movedAside) await fs.rename(old, final).catch(() => undefined);
    await fs.remove(temp).catch(() => undefined);
    throw writeFailure(err, final);
  }
  await fs.syncDir(root);
  if (movedAside) await fs.remove(old);
}
