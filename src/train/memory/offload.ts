// offload.ts: activation offload. As an ActivationSaver (autograd/checkpoint.ts) it collects the
// inputs of checkpointed blocks during the forward; offload() then computes the forward (the loss,
// those inputs and the blocks' outputs), reads each input back to the host, puts its bytes in an
// ActivationStore (host memory or disk) and frees its device buffer; the backward's recompute takes
// them back out (restore) and uploads them again.
// NOTE: the training step is one lazy graph, so the backward is built (and the inputs uploaded) before
// it runs: the saving is device memory between forward and backward, not the backward's peak. Uploading
// each input just before its block's recompute needs a host-to-device step inside a schedule.

import type { ActivationSaver, Backend, Tensor } from "../../index.js";
import { memoryAccountant, realizeAll } from "../../index.js";
import { NO_ARG, Node } from "../../core/graph.js";
import { Tensor as TensorClass } from "../../tensor/tensor.js";
import type { ActivationStore } from "./store.js";

interface Saved {
  readonly t: Tensor;
  readonly key: string;
  stored: boolean;
  /** The re-uploaded value, once the backward asked for it (asked again: the same tensor). */
  back?: Tensor;
}

export class Offloader implements ActivationSaver {
  private saved: Saved[] = [];
  private outputs: Tensor[] = [];
  private count = 0;
  /** Bytes moved off the device so far. */
  offloadedBytes = 0;

  constructor(readonly store: ActivationStore) {}

  save(input: Tensor): () => Tensor {
    const s = this.saved.find((e) => e.t.node === input.node) ?? { t: input, key: `act-${this.count++}`, stored: false };
    if (!this.saved.includes(s)) this.saved.push(s);
    return () => this.restore(s);
  }

  output(y: Tensor): void {
    this.outputs.push(y);
  }

  /** Compute the forward built so far (with `also`, e.g. the loss), then move the saved inputs to the store. */
  async offload(also: readonly Tensor[]): Promise<void> {
    const pending = this.saved.filter((s) => !s.stored);
    await realizeAll([...also, ...pending.map((s) => s.t), ...this.outputs]);
    for (const s of pending) {
      const node = s.t.node;
      const bytes = await s.t.backend.read(node.buffer!, node.nbytes);
      this.store.put(s.key, bytes);
      s.stored = true;
      this.offloadedBytes += node.nbytes;
      s.t.dispose();
    }
    this.outputs = [];
  }

  /** Forget this step's inputs (restored or never offloaded); any the backward never asked for leave the store. */
  clear(): void {
    for (const s of this.saved) if (s.stored) this.store.take(s.key);
    this.saved = [];
    this.outputs = [];
  }

  private restore(s: Saved): Tensor {
    if (!s.stored) return s.back ?? s.t;
    const bytes = this.store.take(s.key);
    s.stored = false;
    s.back = upload(s.t.backend, bytes, s.t.shape, s.t.dtype);
    return s.back;
  }
}

/** A realized tensor holding these bytes, counted as activations. */
function upload(backend: Backend, bytes: Uint8Array, shape: readonly number[], dtype: Tensor["dtype"]): Tensor {
  const node = new Node(backend, "buffer", [], NO_ARG, shape, dtype);
  const alloc = () => backend.alloc(Math.max(bytes.byteLength, 4));
  const buf = memoryAccountant(backend)?.within("activations", alloc) ?? alloc();
  backend.write(buf, bytes);
  node.setBuffer(buf);
  return new TensorClass(node);
}
