// sharded_checkpoint_reader.ts: a rank's part of a distributed checkpoint (sharded_checkpoint_writer.ts), on
// any world size: given the reader's own flat layout and its part [start, end) of it, it finds, slot by slot,
// where those elements sit in the writer's layout, which writers' shards hold them, and reads only those byte
// ranges (positioned reads, never a whole file); so 4 ranks' shards load on 2, on 8 or on one process, and a
// layout with other padding (another backend's view alignment) still lines up by parameter name. A checkpoint
// of another model (architecture, parameter names or shapes) is refused naming the difference. Choosing which
// checkpoint (the newest good one, its hashing split over the ranks) is resumeSharded below.

import { requireNodeBuiltin } from "../../core/host.js";
import type { ByteSource } from "../../models/formats/file_source.js";
import { FileSource } from "../../models/formats/file_source.js";
import { readSafetensorsHeader } from "../../models/formats/safetensors.js";
import { CHECKPOINT_FILES, CheckpointError, joinPath, shardFileName, stepDirName } from "./checkpoint_layout.js";
import { manifestCovers, parseManifest } from "./checkpoint_manifest.js";
import type { Warn } from "./checkpoint_resume.js";
import { listCheckpoints } from "./checkpoint_resume.js";
import { verifyCheckpoint } from "./checkpoint_verify.js";
import type { Json } from "./checkpoint_state.js";
import { checkSignature } from "./checkpoint_state.js";
import type { CheckpointGroup, ShardedMeta, ShardedStateJson } from "./sharded_checkpoint_writer.js";
import { signatureOf } from "./sharded_checkpoint_writer.js";

type Layout = ShardedMeta["layout"];

export interface ShardPart {
  readonly step: number;
  readonly config: Json;
  readonly optimizer: Json;
  readonly rng: Json;
  readonly loader: Json;
  /** The world size that wrote the checkpoint. */
  readonly writtenBy: number;
  /** Each saved flat array's elements [start, end) of the reader's layout (zeros in its padding), by name. */
  readonly tensors: ReadonlyMap<string, Float32Array>;
  /** Bytes read from the shard files (headers and data): what this rank's part needed, not the files. */
  readonly bytesRead: number;
}

/** A run of elements: `n` of the reader's part from `at`, found at element `from` of the writer's flat arrays. */
interface Run {
  at: number;
  from: number;
  n: number;
}

/** Where the reader's elements [start, end) are in the writer's layout, slot by slot, adjacent runs joined. */
function runsOf(mine: Layout, saved: Layout, start: number, end: number): Run[] {
  const runs: Run[] = [];
  mine.forEach((s, i) => {
    const numel = s.shape.reduce((a, b) => a * b, 1);
    const [a, b] = [Math.max(start, s.offset), Math.min(end, s.offset + numel)];
    if (a >= b) return;
    const run = { at: a - start, from: saved[i]!.offset + (a - s.offset), n: b - a };
    const last = runs.at(-1);
    if (last && last.at + last.n === run.at && last.from + last.n === run.from) last.n += run.n;
    else runs.push(run);
  });
  return runs;
}

/** A file's positioned reads, counted. */
class CountingSource implements ByteSource {
  bytes = 0;
  private readonly file: FileSource;
  constructor(readonly path: string) {
    this.file = new FileSource(path);
  }
  get size(): number {
    return this.file.size;
  }
  read(offset: number, length: number, field: string): Uint8Array<ArrayBuffer> {
    this.bytes += length;
    return this.file.read(offset, length, field);
  }
  close(): void {
    this.file.close();
  }
}

/**
 * The elements [start, end) of `expect.layout` (the reader's flat layout) of every flat array in the
 * distributed checkpoint `dir`. Checks the manifest lists the files it reads with their sizes (the sha256s
 * are checked by whoever chose the checkpoint: resumeSharded); throws a CheckpointError naming what is wrong.
 */
export function readShardPart(dir: string, expect: { architecture: string; layout: Layout }, range: readonly [number, number]): ShardPart {
  const fs = requireNodeBuiltin("node:fs", "reading a distributed checkpoint");
  const manifest = parseManifest(fs.readFileSync(joinPath(dir, CHECKPOINT_FILES.manifest), "utf8"));
  if (typeof manifest === "string") throw new CheckpointError("corrupt", `${dir}/${CHECKPOINT_FILES.manifest}: ${manifest}`);
  if (manifest.shards === undefined) throw new CheckpointError("bad-state", `${dir} is a single process's checkpoint, not a distributed one: load it with loadCheckpoint`);
  const state = JSON.parse(fs.readFileSync(joinPath(dir, CHECKPOINT_FILES.state), "utf8")) as ShardedStateJson;
  const saved = state.model.layout;
  checkSignature(signatureOf(expect), signatureOf({ architecture: state.model.architecture, layout: saved }), dir);
  // NOTE: same names and shapes (checked), so slot i is the same parameter in both layouts; the order must match too.
  const moved = expect.layout.findIndex((s, i) => s.name !== saved[i]!.name);
  if (moved >= 0) throw new CheckpointError("model-mismatch", `${dir} is a checkpoint of another model: its parameter ${moved} is '${saved[moved]!.name}', the model's is '${expect.layout[moved]!.name}' (another order)`);
  const [start, end] = range;
  const runs = runsOf(expect.layout, saved, start, end);
  const { ranges, tensors: names, worldSize } = state.shards;
  if (worldSize !== manifest.shards) throw new CheckpointError("corrupt", `${dir}: state.json says ${worldSize} shards, the manifest ${manifest.shards}`);
  const out = new Map(names.map((n) => [n, new Float32Array(end - start)]));
  let bytesRead = 0;
  for (let w = 0; w < worldSize; w++) {
    const [wa, wb] = ranges[w]!;
    const pieces = runs.flatMap((r) => {
      const [a, b] = [Math.max(wa, r.from), Math.min(wb, r.from + r.n)];
      return a < b ? [{ at: r.at + (a - r.from), from: a - wa, n: b - a }] : [];
    });
    if (!pieces.length) continue;
    const name = shardFileName(w, worldSize);
    const path = joinPath(dir, name);
    const want = manifest.files[name]!;
    const size = fs.existsSync(path) ? fs.statSync(path).size : -1;
    if (size !== want.size) throw new CheckpointError("corrupt", `${path} is ${size < 0 ? "missing" : `${size} bytes`}, the manifest says ${want.size}`);
    const src = new CountingSource(path);
    try {
      const header = readSafetensorsHeader(src);
      for (const n of names) {
        const t = header.tensors.find((x) => x.name === n);
        if (!t || t.dtype !== "F32" || t.shape.join() !== String(wb - wa)) throw new CheckpointError("corrupt", `${path}: tensor '${n}' is missing or not F32 [${wb - wa}]`);
        const dst = out.get(n)!;
        for (const p of pieces) dst.set(new Float32Array(src.read(t.offset + 4 * p.from, 4 * p.n, `tensor '${n}'`).buffer), p.at);
      }
    } finally {
      src.close();
      bytesRead += src.bytes;
    }
  }
  return { step: state.step, config: state.config, optimizer: state.optimizer.state, rng: state.rng, loader: state.loader, writtenBy: worldSize, tensors: out, bytesRead };
}

/**
 * The newest good checkpoint under `root`, agreed by every rank, or undefined on every rank when there is
 * none. Rank 0 lists the candidates, newest first, and broadcasts each one's step; the ranks split its
 * verification (rank r hashes the files r, r + size, ... of the manifest's list, so no rank reads the whole
 * checkpoint) and the first candidate every rank found intact is taken. A skipped one is named in a warning by
 * the rank that found its problem, as a single process's resume does.
 */
export async function resumeSharded(root: string, comm: CheckpointGroup, warn: Warn = console.warn): Promise<string | undefined> {
  const { rank, size } = comm;
  const steps = rank === 0 ? listCheckpoints(root) : undefined;
  if (steps) for (const p of steps.partial) warn(`checkpoint: ignoring ${p.dir}, a partial write of step ${p.step} (a save by process ${p.pid} that did not finish)`);
  for (let i = 0; ; i++) {
    // NOTE: a step travels exactly as an f32 below 2^24 (16.7 million steps); -1: no more candidates.
    const [step] = await comm.broadcast(Float32Array.of(steps?.steps[i]?.step ?? -1), 0);
    if (step! < 0) return undefined;
    const dir = joinPath(root, stepDirName(step!));
    const fs = requireNodeBuiltin("node:fs", "reading a distributed checkpoint");
    const manifestPath = joinPath(dir, CHECKPOINT_FILES.manifest);
    const manifest = fs.existsSync(manifestPath) ? parseManifest(fs.readFileSync(manifestPath, "utf8")) : undefined;
    const files = manifest && typeof manifest !== "string" ? manifestCovers(manifest) : [];
    const mine = new Set(files.filter((_, k) => k % size === rank));
    // Rank 0 also checks the manifest itself (every rank reads it, but one warning is enough).
    const report = rank === 0 || mine.size ? verifyCheckpoint(dir, (f) => mine.has(f)) : { ok: true, problems: [] };
    if (!report.ok) warn(`checkpoint: skipping ${dir}, corrupted or incomplete (rank ${rank} found): ${report.problems.join("; ")}`);
    const [bad] = await comm.allReduce(Float32Array.of(report.ok ? 0 : 1), "max");
    if (bad === 0) return dir;
  }
}
