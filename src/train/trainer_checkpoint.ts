// trainer_checkpoint.ts: a Trainer's state (TrainState) as the checkpoint layer's plain data
// (checkpoint/'s CheckpointState) and back. The model's tensors go by their names (f32, so the
// model.safetensors loads like any other), the optimizer's buffers (AdamW's m and v, SGD's momentum) as
// one flat array each in the parameters' layout, its scalars (kind, step, the layout itself) as the
// optimizer's JSON state, and the mixed precision's buffers (fp16 loss scale, fp8 scales) as precision.N.
// The batch source's position is the caller's (run.ts), passed through as rng or loader.
// NOTE: the bytes are the host's Float32Array bytes; kiln runs on little-endian hosts only (safetensors is LE).

import type { CheckpointState, CheckpointTensor, Json, ModelSignature } from "./checkpoint/index.js";
import { CheckpointError } from "./checkpoint/index.js";
import type { ParamLayout } from "./param_layout.js";
import type { OptimizerState } from "./optim/optimizer.js";
import type { TrainState } from "./trainer.js";

const bytesOf = (a: Float32Array, offset = 0, n = a.length) => new Uint8Array(a.buffer, a.byteOffset + offset * 4, n * 4);
// NOTE: a copy, so the Float32Array is aligned whatever offset the file's bytes had.
const f32Of = (b: Uint8Array) => new Float32Array(b.slice().buffer);

export interface CheckpointMeta {
  readonly architecture: string;
  readonly config: Json;
  readonly rng: Json;
  readonly loader: Json;
}

/** What a checkpoint of this trainer must hold: the architecture and the layout's names and shapes. */
export function trainerSignature(architecture: string, layout: ParamLayout): ModelSignature {
  return { architecture, params: layout.slots.map((s) => ({ name: s.name, shape: s.shape })) };
}

export function toCheckpointState(s: TrainState, meta: CheckpointMeta): CheckpointState {
  if (s.optimizerRange) throw new CheckpointError("bad-state", "toCheckpointState: a sharded optimizer's state is one part of it; save it with saveShardedCheckpoint (trainer_sharded_checkpoint.ts)");
  const model: CheckpointTensor[] = s.layout.map((slot) => {
    const n = slot.shape.reduce((a, b) => a * b, 1);
    return { name: slot.name, dtype: "F32", shape: slot.shape, bytes: bytesOf(s.params, slot.offset, n) };
  });
  const flat = (name: string, a: Float32Array): CheckpointTensor => ({ name, dtype: "F32", shape: [a.length], bytes: bytesOf(a) });
  const o = s.optimizer;
  const tensors = o.kind === "adamw" ? [flat("adamw.m", o.m), flat("adamw.v", o.v)] : o.momentum.length ? [flat("sgd.momentum", o.momentum)] : [];
  (s.precision ?? []).forEach((a, i) => tensors.push(flat(`precision.${i}`, a)));
  return {
    step: s.step,
    config: meta.config,
    model: { architecture: meta.architecture, tensors: model },
    optimizer: { tensors, state: { kind: o.kind, step: o.step, layout: s.layout } },
    rng: meta.rng,
    loader: meta.loader,
  };
}

/** The TrainState in a checkpoint written by toCheckpointState; a CheckpointError names what does not fit. */
export function fromCheckpointState(c: CheckpointState, where: string): TrainState {
  const bad = (msg: string): never => {
    throw new CheckpointError("bad-state", `${where}: ${msg}`);
  };
  const opt = c.optimizer.state as { kind?: Json; step?: Json; layout?: TrainState["layout"] } | null;
  if ((opt?.kind !== "adamw" && opt?.kind !== "sgd") || typeof opt.step !== "number" || !Array.isArray(opt.layout)) bad("the optimizer state is not AdamW's or SGD's (kind, step, layout)");
  const layout = opt!.layout!;
  // NOTE: the flat arrays end at the last slot's end: offsets may be padded (param_layout.ts align).
  const size = layout.reduce((n, s) => Math.max(n, (Number(s.offset) || 0) + s.shape.reduce((a, b) => a * b, 1)), 0);
  const params = new Float32Array(size);
  const byName = new Map(c.model.tensors.map((t) => [t.name, t]));
  for (const slot of layout) {
    const t = byName.get(slot.name);
    if (!t || t.dtype !== "F32" || t.shape.join() !== slot.shape.join()) bad(`model tensor '${slot.name}' is missing or not F32 [${slot.shape.join(", ")}]`);
    const n = slot.shape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(slot.offset) || slot.offset < 0 || slot.offset + n > size) bad(`the layout puts '${slot.name}' at offset ${slot.offset}, outside the ${size} parameters`);
    params.set(f32Of(t!.bytes), slot.offset);
  }
  const moment = (name: string, optional = false) => {
    const t = c.optimizer.tensors.find((x) => x.name === name);
    if (!t && optional) return new Float32Array(0);
    if (!t || t.dtype !== "F32" || t.shape.join() !== String(size)) bad(`optimizer tensor '${name}' is missing or not F32 [${size}]`);
    return f32Of(t!.bytes);
  };
  const step = opt!.step as number;
  // NOTE: SGD without momentum keeps no buffer, so its checkpoint has none.
  const optimizer: OptimizerState = opt!.kind === "adamw" ? { kind: "adamw", step, m: moment("adamw.m"), v: moment("adamw.v") } : { kind: "sgd", step, momentum: moment("sgd.momentum", true) };
  // The precision's buffers (fp16 loss scale, fp8 scales), numbered in order; none in fp32/bf16 runs.
  const precision = c.optimizer.tensors
    .flatMap((t) => {
      const m = /^precision\.(\d+)$/.exec(t.name);
      if (!m) return [];
      if (t.dtype !== "F32" || t.shape.length !== 1) bad(`optimizer tensor '${t.name}' is not a 1-D F32 array`);
      return [{ i: Number(m[1]), a: f32Of(t.bytes) }];
    })
    .sort((x, y) => x.i - y.i);
  if (precision.some((p, i) => p.i !== i)) bad(`the precision buffers are not numbered 0..${precision.length - 1}`);
  return { step: c.step, layout, params, optimizer, precision: precision.map((p) => p.a) };
}
