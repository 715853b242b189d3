// checkpoint_state.ts: what a training checkpoint holds, as plain data the trainer hands over and gets
// back: the step, the run's config, the model's and the optimizer's tensors (name, dtype, shape,
// little-endian bytes), the optimizer's scalar state, the RNG state and the data loader's position.
// It owns the checks on that data and the model signature (architecture + parameter names and
// shapes) that keeps a checkpoint of one model from being loaded into another. It knows no files.

import { requireNodeBuiltin } from "../../core/host.js";
import { SAFETENSORS_DTYPES } from "../../models/formats/safetensors.js";
import type { SafetensorsDtype } from "../../models/formats/safetensors.js";
import { CheckpointError } from "./checkpoint_layout.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface CheckpointTensor {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** The tensor's little-endian bytes: numel(shape) × the dtype's size. */
  readonly bytes: Uint8Array;
}

export interface CheckpointState {
  readonly step: number;
  /** The run's config as it was given (so a resume can check it, and a reader see it). */
  readonly config: Json;
  readonly model: { readonly architecture: string; readonly tensors: readonly CheckpointTensor[] };
  /** Optimizer state: its buffers (moments, master weights) and its scalars (step count, loss scale). */
  readonly optimizer: { readonly tensors: readonly CheckpointTensor[]; readonly state: Json };
  /** The RNG's state (kiln's RNG is counter-based: a seed and an offset). */
  readonly rng: Json;
  /** The data loader's position (epoch, shard, offset: the loader's own plain data). */
  readonly loader: Json;
}

/** What identifies a model's parameters: its architecture and each parameter's name and shape. */
export interface ModelSignature {
  readonly architecture: string;
  readonly params: readonly { readonly name: string; readonly shape: readonly number[] }[];
}

/** A short, order-independent hash of a signature (stored in state.json, compared on load). */
export function signatureHash(sig: ModelSignature): string {
  const params = [...sig.params].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((p) => [p.name, p.shape]);
  const text = JSON.stringify([sig.architecture, params]);
  return requireNodeBuiltin("node:crypto", "hashing a model signature").createHash("sha256").update(text).digest("hex").slice(0, 16);
}

export const modelSignature = (state: CheckpointState): ModelSignature => ({
  architecture: state.model.architecture,
  params: state.model.tensors.map((t) => ({ name: t.name, shape: t.shape })),
});

const MAX_LISTED = 5;
const list = (xs: readonly string[]): string =>
  xs.slice(0, MAX_LISTED).join(", ") + (xs.length > MAX_LISTED ? ` and ${xs.length - MAX_LISTED} more` : "");

/**
 * Throws a CheckpointError ("model-mismatch") naming how `found` (the checkpoint at `where`) differs
 * from `expected` (the model being trained): the architecture, missing or extra parameters, shapes.
 */
export function checkSignature(expected: ModelSignature, found: ModelSignature, where: string): void {
  const problems: string[] = [];
  if (expected.architecture !== found.architecture) {
    problems.push(`architecture is '${found.architecture}', the model is '${expected.architecture}'`);
  }
  const have = new Map(found.params.map((p) => [p.name, p.shape]));
  const want = new Map(expected.params.map((p) => [p.name, p.shape]));
  const missing = [...want.keys()].filter((n) => !have.has(n));
  const extra = [...have.keys()].filter((n) => !want.has(n));
  const shapes = [...want].filter(([n, s]) => have.has(n) && have.get(n)!.join(",") !== s.join(","));
  if (missing.length) problems.push(`missing parameters ${list(missing)}`);
  if (extra.length) problems.push(`parameters the model does not have: ${list(extra)}`);
  if (shapes.length) {
    problems.push(`shapes differ: ${list(shapes.map(([n, s]) => `${n} is [${have.get(n)!.join(", ")}] in the checkpoint, [${s.join(", ")}] in the model`))}`);
  }
  if (problems.length) throw new CheckpointError("model-mismatch", `${where} is a checkpoint of another model: ${problems.join("; ")}`);
}

function checkTensors(what: string, tensors: readonly CheckpointTensor[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    const where = `checkpoint ${what} tensor '${t.name}'`;
    if (seen.has(t.name)) throw new CheckpointError("bad-state", `${where} appears twice`);
    if (t.name === "__metadata__" || t.name === "") throw new CheckpointError("bad-state", `${where}: the name is reserved by safetensors`);
    seen.add(t.name);
    if (!(t.dtype in SAFETENSORS_DTYPES)) {
      throw new CheckpointError("bad-state", `${where}: dtype ${JSON.stringify(t.dtype)} is not one of ${Object.keys(SAFETENSORS_DTYPES).join(", ")}`);
    }
    if (!t.shape.every((n) => Number.isInteger(n) && n >= 0)) throw new CheckpointError("bad-state", `${where}: shape [${t.shape.join(", ")}] is not a list of sizes`);
    const want = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPES[t.dtype].size;
    if (t.bytes.byteLength !== want) {
      throw new CheckpointError("bad-state", `${where}: ${t.bytes.byteLength} bytes, but ${t.dtype} [${t.shape.join(", ")}] needs ${want}`);
    }
  }
}

/** Throws a CheckpointError ("bad-state") naming the first thing wrong with `state`. */
export function checkState(state: CheckpointState): void {
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw new CheckpointError("bad-state", `checkpoint step ${state.step} is not a whole number >= 0`);
  if (typeof state.model.architecture !== "string" || !state.model.architecture) throw new CheckpointError("bad-state", "checkpoint model architecture is empty");
  checkTensors("model", state.model.tensors);
  checkTensors("optimizer", state.optimizer.tensors);
}
