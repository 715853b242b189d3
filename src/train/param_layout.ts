// param_layout.ts: where each trained parameter sits in one flat f32 buffer of all of them (as in
// llm.c): its name, shape, offset and size, and whether weight decay applies to it. The gradient and
// each optimizer state (AdamW's m and v) follow the same layout, so a checkpoint writes each as one
// flat array and a later ZeRO shards them by offset.
// NOTE: kiln's device buffers have no offset views yet (a DeviceBuffer is a whole allocation), so the
// device side keeps one tensor per parameter and this layout gathers them into a flat host array and
// scatters one back (checkpoints). Aliasing views need a buffer offset in core/backend.ts; when that
// exists, the per-parameter tensors become views of one allocation and nothing above this file changes.

import type { Backend, Tensor } from "../index.js";
import { tensor } from "../index.js";

export interface ParamSlot {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly numel: number;
  /** nanoGPT's rule: matrices and embeddings (2-D and up) decay; biases and norm weights (1-D) do not. */
  readonly decay: boolean;
}

export class ParamLayout {
  readonly slots: readonly ParamSlot[];
  /** Elements in the flat buffer. */
  readonly size: number;

  constructor(params: ReadonlyMap<string, Tensor>) {
    let offset = 0;
    const slots: ParamSlot[] = [];
    for (const [name, t] of params) {
      if (t.dtype !== "f32") throw new Error(`ParamLayout: parameter '${name}' is ${t.dtype}; training keeps f32 master weights`);
      slots.push({ name, shape: [...t.shape], offset, numel: t.numel, decay: t.ndim >= 2 });
      offset += t.numel;
    }
    this.slots = slots;
    this.size = offset;
  }

  /** One tensor per slot, in slot order -> the flat f32 array. */
  async gather(tensors: readonly Tensor[]): Promise<Float32Array> {
    this.checkCount("gather", tensors.length);
    const flat = new Float32Array(this.size);
    for (let i = 0; i < tensors.length; i++) flat.set(await tensors[i]!.data() as Float32Array, this.slots[i]!.offset);
    return flat;
  }

  /** The flat array -> one f32 tensor per slot on `backend`. */
  scatter(flat: Float32Array, backend: Backend): Tensor[] {
    if (flat.length !== this.size) throw new Error(`ParamLayout.scatter: ${flat.length} values for a layout of ${this.size}`);
    return this.slots.map((s) => tensor(flat.subarray(s.offset, s.offset + s.numel), { backend, dtype: "f32", shape: s.shape }));
  }

  /** Plain data describing the layout (for checkpoints: a resumed run checks it matches the model). */
  describe(): { name: string; shape: number[]; offset: number }[] {
    return this.slots.map((s) => ({ name: s.name, shape: [...s.shape], offset: s.offset }));
  }

  private checkCount(what: string, n: number): void {
    if (n !== this.slots.length) throw new Error(`ParamLayout.${what}: ${n} tensors for a layout of ${this.slots.length} parameters`);
  }
}
