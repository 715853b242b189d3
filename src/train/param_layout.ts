// param_layout.ts: where each trained parameter sits in one flat f32 buffer of all of them (as in
// llm.c): its name, shape, offset and size, and whether weight decay applies to it. The gradient and
// each optimizer state (AdamW's m and v, SGD's momentum) follow the same layout, so the optimizer updates
// each as one buffer, a checkpoint writes each as one flat array and a later ZeRO shards them by offset.
// On the device the parameters are views of one allocation (flat_params.ts; tensor/buffer_view.ts).
// NOTE: offsets are rounded up to `align` elements, since a view must start where the backend can bind
// one: webgpu binds at multiples of minStorageBufferOffsetAlignment (256 bytes: 64 f32s), the cpu
// anywhere (align 1: no padding, the layout of checkpoints written before views existed). The padding
// between slots is zeros in every flat buffer (no gradient reaches it, so the update keeps it zero).

import type { Tensor } from "../index.js";

export interface ParamSlot {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly numel: number;
  /** nanoGPT's rule: matrices and embeddings (2-D and up) decay; biases and norm weights (1-D) do not. */
  readonly decay: boolean;
}

/** A layout as plain data (in checkpoints: a resumed run checks it against the model's, and moves values by name). */
export type LayoutDescription = { name: string; shape: number[]; offset: number }[];

export class ParamLayout {
  readonly slots: readonly ParamSlot[];
  /** Elements in the flat buffer (padding included). */
  readonly size: number;

  /** From the parameters (in order), or from slots already placed (range() below). */
  constructor(params: ReadonlyMap<string, Tensor> | { readonly slots: readonly ParamSlot[]; readonly size: number }, readonly align = 1) {
    if (!(Number.isInteger(align) && align > 0)) throw new Error(`ParamLayout: align must be a positive integer of elements, got ${align}`);
    if (!(params instanceof Map)) {
      const placed = params as { readonly slots: readonly ParamSlot[]; readonly size: number };
      this.slots = placed.slots;
      this.size = placed.size;
      return;
    }
    let offset = 0;
    const slots: ParamSlot[] = [];
    for (const [name, t] of params) {
      if (t.dtype !== "f32") throw new Error(`ParamLayout: parameter '${name}' is ${t.dtype}; training keeps f32 master weights`);
      offset = Math.ceil(offset / align) * align;
      slots.push({ name, shape: [...t.shape], offset, numel: t.numel, decay: t.ndim >= 2 });
      offset += t.numel;
    }
    this.slots = slots;
    this.size = offset;
  }

  /**
   * The elements [start, end) as a layout of their own (end - start elements, offsets from start): the part
   * of every flat buffer a ZeRO rank's optimizer owns (train/sharded_step.ts). A slot cut by an edge keeps
   * its name and decay with the shape [elements inside]; the padding stays padding.
   */
  range(start: number, end: number): ParamLayout {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= this.size)) {
      throw new Error(`ParamLayout.range: [${start}, ${end}) is not a range of the ${this.size} elements`);
    }
    const slots = this.slots.flatMap((s) => {
      const [a, b] = [Math.max(start, s.offset), Math.min(end, s.offset + s.numel)];
      if (a >= b) return [];
      const whole = a === s.offset && b === s.offset + s.numel;
      return [{ ...s, shape: whole ? s.shape : [b - a], offset: a - start, numel: b - a }];
    });
    return new ParamLayout({ slots, size: end - start }, 1);
  }

  /** Plain data describing the layout (for checkpoints: a resumed run checks it matches the model). */
  describe(): LayoutDescription {
    return this.slots.map((s) => ({ name: s.name, shape: [...s.shape], offset: s.offset }));
  }

  /**
   * A flat array laid out as `saved` (same names and shapes, other offsets: a checkpoint of another
   * backend's padding) moved to this layout. The caller has checked names and shapes (Trainer.loadState).
   */
  relayout(flat: Float32Array, saved: LayoutDescription): Float32Array {
    if (saved.every((s, i) => s.offset === this.slots[i]?.offset) && flat.length === this.size) return flat;
    const out = new Float32Array(this.size);
    saved.forEach((s, i) => {
      const slot = this.slots[i]!;
      if (s.offset + slot.numel > flat.length) throw new Error(`ParamLayout.relayout: '${s.name}' at ${s.offset} is outside the ${flat.length} values`);
      out.set(flat.subarray(s.offset, s.offset + slot.numel), slot.offset);
    });
    return out;
  }
}
