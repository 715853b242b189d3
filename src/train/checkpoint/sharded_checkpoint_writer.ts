// sharded_checkpoint_writer.ts: a distributed checkpoint, written by every rank together with a two-phase
// commit. The folder is the single-process one's (checkpoint_layout.ts: `step-000123/`, built in a temp
// folder and renamed), holding one shard file per rank instead of model/optimizer.safetensors:
//   phase 1: rank 0 makes the temp folder; every rank writes its shard (its part [start, end) of every flat
//            array: parameters, optimizer moments), fsyncs it and reports success, size and sha256 to every
//            rank (one all-gather);
//   phase 2: only when every rank reported success, rank 0 writes state.json (step, config, layout, each rank's
//            part) and manifest.json (every file's size and sha256), fsyncs and renames the folder: the commit
//            point; then it tells every rank whether it committed (one broadcast).
// A rank that fails its write makes the whole save fail on every rank, naming it, and rank 0 removes the temp
// folder; a rank that dies mid-write leaves the others' all-gather to time out (the communicator names it), and
// its temp folder is never renamed: resume ignores it (checkpoint_resume.ts) and the next save removes it.
// Either way the previous checkpoint stays the newest good one. Reading parts back on any world size is
// sharded_checkpoint_reader.ts; a Trainer's parts are trainer_sharded_checkpoint.ts.
// NOTE: the ranks share one file system (one host, or a shared mount): the temp folder is named with rank 0's
// process id, and removing a dead writer's temp folder asks whether that process still runs on this host.

import type { CheckpointFs } from "./checkpoint_fs.js";
import { nodeCheckpointFs } from "./checkpoint_fs.js";
import { CHECKPOINT_FILES, CHECKPOINT_FORMAT_VERSION, CheckpointError, joinPath, shardFileName, stepDirName, tempDirName } from "./checkpoint_layout.js";
import type { ManifestEntry } from "./checkpoint_manifest.js";
import { buildManifest } from "./checkpoint_manifest.js";
import type { Warn } from "./checkpoint_resume.js";
import { removePartialWrites } from "./checkpoint_resume.js";
import type { RetentionPolicy } from "./checkpoint_retention.js";
import { checkRetention, pruneCheckpoints } from "./checkpoint_retention.js";
import type { CheckpointTensor, Json, ModelSignature } from "./checkpoint_state.js";
import { signatureHash } from "./checkpoint_state.js";
import { commitFolder, safetensorsParts, writeFailure, writeFile } from "./checkpoint_writer.js";

/**
 * What the two-phase commit (and resumeSharded) needs of the ranks: src/dist's Communicator has it (restated here, as train does
 * not import dist: the caller passes its communicator).
 */
export interface CheckpointGroup {
  readonly rank: number;
  readonly size: number;
  allGather(data: Float32Array): Promise<Float32Array>;
  broadcast(data: Float32Array, root: number): Promise<Float32Array>;
  allReduce(data: Float32Array, op?: "sum" | "max"): Promise<Float32Array>;
}

/** One rank's part of a distributed checkpoint. */
export interface CheckpointShard {
  readonly step: number;
  /** The elements [start, end) of every flat array this rank writes. */
  readonly range: readonly [number, number];
  /** Every flat array's length (the same on every rank). */
  readonly total: number;
  /** The parts, each 1-D of end - start elements, named alike on every rank (e.g. params, adamw.m, adamw.v). */
  readonly tensors: readonly CheckpointTensor[];
}

/** What only rank 0 writes (state.json): the same on every rank. */
export interface ShardedMeta {
  readonly config: Json;
  readonly architecture: string;
  /** The flat layout the arrays are in (param_layout.ts describe()): names, shapes and offsets. */
  readonly layout: readonly { readonly name: string; readonly shape: readonly number[]; readonly offset: number }[];
  /** The optimizer's scalars (kind, step). */
  readonly optimizer: Json;
  readonly rng: Json;
  readonly loader: Json;
}

/** state.json of a distributed checkpoint. */
export interface ShardedStateJson {
  readonly formatVersion: number;
  readonly step: number;
  readonly config: Json;
  readonly model: { readonly architecture: string; readonly signature: string; readonly layout: ShardedMeta["layout"] };
  readonly optimizer: { readonly state: Json };
  readonly rng: Json;
  readonly loader: Json;
  readonly shards: { readonly worldSize: number; readonly total: number; readonly tensors: readonly string[]; readonly ranges: readonly (readonly [number, number])[] };
}

export interface ShardedWriteOptions extends Partial<RetentionPolicy> {
  /** The file system to write through (default: Node's); tests inject faults here. */
  readonly fs?: CheckpointFs;
  readonly warn?: Warn;
}

// A rank's report, as f32 words exact for integers below 2^24: ok, step, start, end, size (3 x 16 bits each),
// then the sha256 (16 x 16 bits).
const INT_WORDS = 3;
const SHA_WORDS = 16;
const REPORT = 1 + 4 * INT_WORDS + SHA_WORDS;

function putInt(out: Float32Array, at: number, x: number): void {
  for (let i = 0; i < INT_WORDS; i++) out[at + i] = Math.floor(x / 65536 ** i) % 65536;
}

function getInt(a: Float32Array, at: number): number {
  let x = 0;
  for (let i = INT_WORDS - 1; i >= 0; i--) x = x * 65536 + a[at + i]!;
  return x;
}

function report(step: number, range: readonly [number, number], entry: ManifestEntry | undefined): Float32Array {
  const out = new Float32Array(REPORT);
  out[0] = entry ? 1 : 0;
  [step, range[0], range[1], entry?.size ?? 0].forEach((x, i) => putInt(out, 1 + i * INT_WORDS, x));
  if (entry) for (let i = 0; i < SHA_WORDS; i++) out[1 + 4 * INT_WORDS + i] = parseInt(entry.sha256.slice(4 * i, 4 * i + 4), 16);
  return out;
}

interface Report {
  ok: boolean;
  step: number;
  range: [number, number];
  entry: ManifestEntry;
}

function parseReports(all: Float32Array, size: number): Report[] {
  return Array.from({ length: size }, (_, r) => {
    const a = all.subarray(r * REPORT, (r + 1) * REPORT);
    const int = (i: number) => getInt(a, 1 + i * INT_WORDS);
    const sha = Array.from(a.subarray(1 + 4 * INT_WORDS), (w) => w.toString(16).padStart(4, "0")).join("");
    return { ok: a[0] === 1, step: int(0), range: [int(1), int(2)], entry: { size: int(3), sha256: sha } };
  });
}

/**
 * Every rank calls it with its shard (same step); rank 0's `meta` is written. Resolves on every rank to the
 * committed folder, or rejects on every rank (a CheckpointError naming the ranks that failed) when any failed.
 */
export async function writeShardedCheckpoint(root: string, comm: CheckpointGroup, shard: CheckpointShard, meta: ShardedMeta, opts: ShardedWriteOptions = {}): Promise<string> {
  const fs = opts.fs ?? nodeCheckpointFs();
  const warn = opts.warn ?? console.warn;
  const policy = { keepLast: opts.keepLast ?? 3, keepEvery: opts.keepEvery ?? 0 };
  checkRetention(policy);
  const { rank, size } = comm;
  const final = joinPath(root, stepDirName(shard.step));
  const where = `distributed checkpoint ${final} (rank ${rank} of ${size})`;
  for (const t of shard.tensors) {
    const n = shard.range[1] - shard.range[0];
    if (t.shape.length !== 1 || t.shape[0] !== n) throw new CheckpointError("bad-state", `${where}: tensor '${t.name}' is [${t.shape.join(", ")}], not this rank's part of ${n} elements`);
  }

  // Phase 0: rank 0 makes the temp folder (and removes dead writers' ones) and names it with its process id.
  let made: string | undefined;
  if (rank === 0) {
    try {
      await fs.mkdir(root);
      await removePartialWrites(root, warn);
      made = joinPath(root, tempDirName(shard.step, process.pid));
      await fs.remove(made);
      await fs.mkdir(made);
    } catch (err) {
      made = undefined;
      warn(`${where}: could not make the temp folder: ${(err as Error).message}`);
    }
  }
  const [pid] = await comm.broadcast(Float32Array.of(made ? process.pid : -1), 0);
  if (pid! < 0) throw new CheckpointError("write-failed", `${where}: rank 0 could not make the temp folder under ${root}; earlier checkpoints are untouched`);
  const temp = joinPath(root, tempDirName(shard.step, pid!));

  // Phase 1: every rank writes its shard and reports.
  let entry: ManifestEntry | undefined;
  let failure: Error | undefined;
  try {
    entry = await writeFile(fs, joinPath(temp, shardFileName(rank, size)), safetensorsParts(shard.tensors));
  } catch (err) {
    failure = writeFailure(err, final);
  }
  let reports: Report[];
  try {
    reports = parseReports(await comm.allGather(report(shard.step, shard.range, entry)), size);
  } catch (err) {
    // NOTE: a rank died or hung: nothing is committed; rank 0 removes what was written.
    if (rank === 0) await fs.remove(temp).catch(() => undefined);
    throw new CheckpointError("write-failed", `${where}: not committed, a rank did not report its shard (${(err as Error).message}); earlier checkpoints are untouched`);
  }
  const problems = reports.flatMap((r, i) => {
    if (!r.ok) return [`rank ${i} failed to write its shard${i === rank && failure ? ` (${failure.message})` : ""}`];
    if (r.step !== shard.step) return [`rank ${i} saved step ${r.step}, rank ${rank} step ${shard.step}`];
    return [];
  });
  const tiles = reports.every((r, i) => r.range[0] === (i === 0 ? 0 : reports[i - 1]!.range[1])) && reports[size - 1]!.range[1] === shard.total;
  if (!problems.length && !tiles) problems.push(`the ranks' parts ${reports.map((r) => `[${r.range.join(", ")})`).join(" ")} do not tile the ${shard.total} elements in rank order`);

  // Phase 2: rank 0 commits only when every rank succeeded, and tells the others.
  let committed = 0;
  if (rank === 0) {
    try {
      if (!problems.length) {
        const files: Record<string, ManifestEntry> = {};
        const state: ShardedStateJson = {
          formatVersion: CHECKPOINT_FORMAT_VERSION,
          step: shard.step,
          config: meta.config,
          model: { architecture: meta.architecture, signature: signatureHash(signatureOf(meta)), layout: meta.layout },
          optimizer: { state: meta.optimizer },
          rng: meta.rng,
          loader: meta.loader,
          shards: { worldSize: size, total: shard.total, tensors: shard.tensors.map((t) => t.name), ranges: reports.map((r) => r.range) },
        };
        files[CHECKPOINT_FILES.state] = await writeFile(fs, joinPath(temp, CHECKPOINT_FILES.state), [new TextEncoder().encode(JSON.stringify(state, null, 2))]);
        reports.forEach((r, i) => (files[shardFileName(i, size)] = r.entry));
        const manifest = JSON.stringify(buildManifest(shard.step, files, size), null, 2);
        await writeFile(fs, joinPath(temp, CHECKPOINT_FILES.manifest), [new TextEncoder().encode(manifest)]);
        await fs.syncDir(temp);
        await commitFolder(fs, root, temp, final);
        committed = 1;
      }
    } catch (err) {
      problems.push(`rank 0 could not commit it (${writeFailure(err, final).message})`);
    }
    if (!committed) await fs.remove(temp).catch(() => undefined);
  }
  const [done] = await comm.broadcast(Float32Array.of(committed), 0);
  if (done !== 1) {
    const why = problems.length ? problems.join("; ") : "rank 0 could not commit it";
    throw new CheckpointError(failure && (failure as CheckpointError).kind === "disk-full" ? "disk-full" : "write-failed", `${where}: not committed: ${why}; earlier checkpoints are untouched`);
  }
  if (rank === 0) {
    try {
      await pruneCheckpoints(fs, root, shard.step, policy);
    } catch (err) {
      warn(`checkpoint: could not delete old checkpoints under ${root}: ${(err as Error).message}`);
    }
  }
  return final;
}

/** The model signature of a distributed checkpoint's layout (checkpoint_state.ts checkSignature compares them). */
export function signatureOf(meta: Pick<ShardedMeta, "architecture" | "layout">): ModelSignature {
  return { architecture: meta.architecture, params: meta.layout.map((s) => ({ name: s.name, shape: s.shape })) };
}
