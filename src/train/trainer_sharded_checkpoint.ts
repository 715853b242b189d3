// trainer_sharded_checkpoint.ts: a Trainer's state as a distributed checkpoint's parts and back
// (checkpoint/sharded_checkpoint_writer.ts, sharded_checkpoint_reader.ts): each process writes the part
// [start, end) of the flat arrays its optimizer owns (Trainer.optimizerRange: the parameters' part, AdamW's m
// and v or SGD's momentum), rank 0 the run's scalars; a load on any world size reads the part the loading
// trainer owns, in its own layout, and hands it to Trainer.loadShard (the processes gather the parameters).
// The batch source's position and the config are the caller's, passed through as with trainer_checkpoint.ts.
// NOTE: mixed precision's buffers (fp16, fp8) are not saved here: a sharded trainer runs fp32 or bf16 only.
// A ZeRO-3 trainer (zero3_trainer.ts) keeps other chunks than the part it stores: it makes its part itself (part()).

import type { CheckpointGroup, CheckpointTensor, Json, ShardedWriteOptions } from "./checkpoint/index.js";
import { CheckpointError, readShardPart, writeShardedCheckpoint } from "./checkpoint/index.js";
import type { OptimizerState } from "./optim/optimizer.js";
import type { Trainer, TrainShard } from "./trainer.js";
import type { CheckpointMeta } from "./trainer_checkpoint.js";

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const part = (name: string, a: Float32Array): CheckpointTensor => ({ name, dtype: "F32", shape: [a.length], bytes: bytesOf(a) });

/** A trainer that makes its stored part itself (Zero3Trainer): its part is the contiguous optimizerRange all the same. */
export interface PartTrainer {
  readonly layout: Trainer["layout"];
  readonly optimizer: Pick<Trainer["optimizer"], "kind">;
  readonly optimizerRange: readonly [number, number];
  part(): Promise<TrainShard>;
  loadShard(s: TrainShard): Promise<void>;
}

/** Every process calls it after the same step: resolves to the committed folder (or rejects on every process). */
export async function saveShardedCheckpoint(root: string, comm: CheckpointGroup, trainer: Trainer | PartTrainer, meta: CheckpointMeta, opts: ShardedWriteOptions = {}): Promise<string> {
  const [a, b] = trainer.optimizerRange;
  const s = "part" in trainer ? await trainer.part() : await trainer.state();
  if (s.precision?.length) throw new CheckpointError("bad-state", "saveShardedCheckpoint: the precision's state (fp16, fp8) is not saved in a distributed checkpoint yet");
  const o = s.optimizer;
  const tensors = [part("params", "part" in trainer ? s.params : s.params.slice(a, b))];
  if (o.kind === "adamw") tensors.push(part("adamw.m", o.m), part("adamw.v", o.v));
  else if (o.momentum.length) tensors.push(part("sgd.momentum", o.momentum));
  const shard = { step: s.step, range: [a, b] as const, total: trainer.layout.size, tensors };
  const optimizer: Json = { kind: o.kind, step: o.step };
  return writeShardedCheckpoint(root, comm, shard, { config: meta.config, architecture: meta.architecture, layout: s.layout, optimizer, rng: meta.rng, loader: meta.loader }, opts);
}

/**
 * Every process calls it on the same checkpoint folder: each reads its own part (on any world size the
 * checkpoint was written by) and the trainer continues from it. Returns what the caller restores itself
 * (config, rng, loader) and how many bytes this process read.
 */
export async function loadShardedCheckpoint(dir: string, trainer: Trainer | PartTrainer, architecture: string): Promise<{ config: Json; rng: Json; loader: Json; step: number; writtenBy: number; bytesRead: number }> {
  const layout = trainer.layout.describe();
  const range = trainer.optimizerRange;
  const p = readShardPart(dir, { architecture, layout }, range);
  const o = p.optimizer as { kind?: string; step?: number } | null;
  const bad = (msg: string): never => {
    throw new CheckpointError("bad-state", `${dir}: ${msg}`);
  };
  if (o?.kind !== trainer.optimizer.kind) bad(`the checkpoint's optimizer is ${JSON.stringify(o?.kind)}, this run uses ${trainer.optimizer.kind}`);
  const get = (name: string) => p.tensors.get(name) ?? bad(`no '${name}' in the checkpoint's shards`);
  const step = o!.step!;
  const optimizer: OptimizerState = o!.kind === "adamw"
    ? { kind: "adamw", step, m: get("adamw.m"), v: get("adamw.v") }
    : { kind: "sgd", step, momentum: p.tensors.get("sgd.momentum") ?? new Float32Array(0) };
  await trainer.loadShard({ step: p.step, layout, range, params: get("params"), optimizer });
  return { config: p.config, rng: p.rng, loader: p.loader, step: p.step, writtenBy: p.writtenBy, bytesRead: p.bytesRead };
}
