// flat_params.ts: the device side of param_layout.ts: one realized f32 buffer per flat array (the
// parameters, each optimizer state), the parameters' tensors as views of theirs (bufferView), the
// step's gradients joined into one flat buffer, and the weight-decay mask the optimizers apply
// over a whole flat buffer. It does not choose what the buffers hold (trainer.ts, optim/).

import type { Backend, Tensor } from "../index.js";
import { bufferView, concat, tensor } from "../index.js";
import { ParamLayout } from "./param_layout.js";

/** The layout of these parameters with offsets where `backend` can bind views (webgpu: 256-byte steps). */
export function deviceLayout(params: ReadonlyMap<string, Tensor>, backend: Backend): ParamLayout {
  return new ParamLayout(params, Math.max(1, (backend.caps.viewAlignBytes ?? 4) / 4));
}

/** A realized flat buffer holding `values` (default zeros) laid out as `layout`. */
export function flatBuffer(layout: ParamLayout, backend: Backend, values: Float32Array<ArrayBufferLike> = new Float32Array(layout.size)): Tensor {
  if (values.length !== layout.size) throw new Error(`flatBuffer: ${values.length} values for a layout of ${layout.size}`);
  return tensor(values, { backend, dtype: "f32", shape: [layout.size] });
}

/** One view per slot, in slot order and shape: they read and write `flat`'s memory. */
export function slotViews(layout: ParamLayout, flat: Tensor): Tensor[] {
  checkFlat("slotViews", layout, flat);
  return layout.slots.map((s) => bufferView(flat, s.offset, s.shape));
}

/** The flat array of per-slot tensors (slot order), padding zeros: one read per tensor. */
export async function gatherFlat(layout: ParamLayout, tensors: readonly Tensor[]): Promise<Float32Array> {
  if (tensors.length !== layout.slots.length) throw new Error(`gatherFlat: ${tensors.length} tensors for a layout of ${layout.slots.length} parameters`);
  const flat = new Float32Array(layout.size);
  for (let i = 0; i < tensors.length; i++) flat.set(await tensors[i]!.data() as Float32Array, layout.slots[i]!.offset);
  return flat;
}

/**
 * The per-slot gradients (slot order) as one flat tensor (size,): one concat (a copy of each), zeros in
 * the padding. Lazy: it is part of the step's graph.
 */
export function flatGradient(layout: ParamLayout, grads: readonly Tensor[]): Tensor {
  if (grads.length !== layout.slots.length) throw new Error(`flatGradient: ${grads.length} gradients for a layout of ${layout.slots.length} parameters`);
  const parts: Tensor[] = [];
  let at = 0;
  layout.slots.forEach((s, i) => {
    const g = grads[i]!;
    if (g.numel !== s.numel) throw new Error(`flatGradient: the gradient of '${s.name}' is ${g}, the parameter has ${s.numel} elements`);
    if (s.offset > at) parts.push(g.full([s.offset - at], 0));
    parts.push(g.reshape([s.numel]));
    at = s.offset + s.numel;
  });
  return join(parts);
}

/**
 * WebGPU binds 8 (its default limit) to 12 buffers per kernel: without a concat routine for all parts,
 * join them 7 at a time (and each part its own buffer, so no fused producer brings more).
 */
const JOIN_FAN_IN = 7;

/** The 1-D parts one after another: one concat where the backend has a routine for it, else a tree of joins. */
function join(parts: readonly Tensor[]): Tensor {
  if (parts.length === 1) return parts[0]!.contiguous();
  const spec = { outer: 1, parts: parts.map((p) => p.numel), dtype: parts[0]!.dtype };
  if (parts.length <= JOIN_FAN_IN || parts[0]!.backend.supportsRoutine("concat", spec)) return concat(parts, 0);
  const groups: Tensor[] = [];
  // NOTE: a constant part (padding zeros) is inlined into the join's kernel: no buffer, no copy.
  const own = parts.map((p) => (p.node.op === "const" ? p : p.contiguous()));
  for (let i = 0; i < own.length; i += JOIN_FAN_IN) groups.push(join(own.slice(i, i + JOIN_FAN_IN)).contiguous());
  return join(groups);
}

/**
 * The flat mask of the elements weight decay applies to (1 on the layout's decaying slots, 0 elsewhere
 * and in the padding), realized; undefined when no slot decays. Use it as `mask.ne(0).where(...)`.
 * NOTE: f32, not bool: the cpu's wasm SIMD elementwise kernels load f32 only, and a bool load sent the
 * whole update kernel back to the JS loop (2-3x slower on it).
 */
export function decayMask(layout: ParamLayout, backend: Backend): Tensor | undefined {
  if (!layout.slots.some((s) => s.decay)) return undefined;
  const mask = new Float32Array(layout.size);
  for (const s of layout.slots) if (s.decay) mask.fill(1, s.offset, s.offset + s.numel);
  return tensor(mask, { backend, dtype: "f32", shape: [layout.size] });
}

export function checkFlat(what: string, layout: ParamLayout, flat: Tensor): void {
  if (flat.dtype !== "f32" || flat.ndim !== 1 || flat.numel !== layout.size) throw new Error(`${what}: expected a flat f32 (${layout.size}) tensor of the layout, got ${flat}`);
}
