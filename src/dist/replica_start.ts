// replica_start.ts: what data parallel checks and does before the first step: every rank must have the same
// model (parameter names, shapes, dtypes) and the same training configuration, else the all-reduced
// gradients would mix unrelated numbers or the ranks would hang in collectives of different lengths; then
// rank 0's parameter values go to every rank, so the replicas start identical whatever seeds they used.
// Call it before constructing the Trainer (which then lays the parameters out flat).

import type { Tensor } from "../index.js";
import { tensor } from "../index.js";
import type { Communicator } from "./comm.js";
import { agreeOnConfig } from "./agree_config.js";

/** What replicaStart needs of a model (nn Module's methods). */
export interface ParameterOwner {
  parameters(): Map<string, Tensor>;
  loadStateDict(state: ReadonlyMap<string, Tensor>): void;
}

/**
 * Checks that every rank has the same model layout and `config` (any JSON-able value: batch shape,
 * optimizer, schedule), naming each rank that differs from rank 0; then broadcasts rank 0's parameters.
 */
export async function replicaStart(comm: Communicator, model: ParameterOwner, config: unknown = null): Promise<void> {
  const params = [...model.parameters()];
  const layout = params.map(([name, t]) => [name, t.dtype, t.shape]);
  const text = JSON.stringify({ layout, config });
  await agreeOnConfig(comm, "data parallel", text);
  await broadcastParameters(comm, model, params);
}

/**
 * Rank 0's values of every parameter (in the model's own order, checked equal above), in one broadcast.
 * A tensor under two names (tied weights) is sent once and stays one tensor.
 */
async function broadcastParameters(comm: Communicator, model: ParameterOwner, params: readonly [string, Tensor][]): Promise<void> {
  const distinct = [...new Set(params.map(([, t]) => t))];
  for (const [name, t] of params) if (t.dtype !== "f32") throw new Error(`replicaStart: parameter '${name}' is ${t.dtype}; only f32 parameters are broadcast so far`);
  const flat = new Float32Array(distinct.reduce((n, t) => n + t.numel, 0));
  if (comm.rank === 0) {
    let at = 0;
    for (const t of distinct) {
      flat.set((await t.data()) as Float32Array, at);
      at += t.numel;
    }
  }
  const values = await comm.broadcast(flat, 0);
  // NOTE: rank 0 keeps its own tensors, so every rank's values are rank 0's bit for bit.
  if (comm.rank === 0) return;
  const fresh = new Map<Tensor, Tensor>();
  let at = 0;
  for (const t of distinct) {
    fresh.set(t, tensor(values.slice(at, at + t.numel), { backend: t.backend, dtype: "f32", shape: [...t.shape] }));
    at += t.numel;
  }
  model.loadStateDict(new Map(params.map(([name, t]) => [name, fresh.get(t)!])));
  for (const t of distinct) t.dispose();
}
