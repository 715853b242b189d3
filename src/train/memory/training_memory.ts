// training_memory.ts: the trainer's memory side in one object: it applies the activation-checkpointing
// policy to the model, owns the offloader, tags what the accountant counts (parameters, gradients,
// optimizer state; everything else a step computes is activations) and releases the optimizer state
// a step replaced, so the live numbers are exact rather than waiting for the garbage collector.

import type { Backend, MemorySnapshot, Tensor } from "../../index.js";
import { memoryAccountant, tagNode } from "../../index.js";
import { isMovement } from "../../core/ops.js";
import type { Module } from "../../nn/index.js";
import { applyActivationCheckpointing } from "./checkpointing.js";
import type { ActivationCheckpointing } from "./config.js";
import { Offloader } from "./offload.js";
import type { ActivationStore } from "./store.js";

export interface TrainingMemoryOptions {
  readonly activationCheckpointing?: ActivationCheckpointing;
  /** Offload checkpointed blocks' inputs to this store between forward and backward. */
  readonly offload?: ActivationStore;
}

export class TrainingMemory {
  /** How many blocks (or attentions) recompute their forward in the backward. */
  readonly checkpointed: number;
  readonly offloader: Offloader | undefined;

  constructor(model: Module, private readonly backend: Backend, opts: TrainingMemoryOptions = {}) {
    const policy = opts.activationCheckpointing ?? "none";
    if (opts.offload && policy === "none") {
      throw new Error(`memory.offload moves the inputs of checkpointed blocks: set memory.activationCheckpointing to "layer", "attention" or { "every": k } too`);
    }
    this.offloader = opts.offload && new Offloader(opts.offload);
    this.checkpointed = applyActivationCheckpointing(model, policy, this.offloader);
  }

  /** The step's forward has been built: offload its checkpointed inputs (when offloading). */
  async afterForward(loss: Tensor): Promise<void> {
    await this.offloader?.offload([loss]);
  }

  /** Name what the step's realize computes, so the accountant counts each in its category. */
  tagStep(parts: { readonly parameters: readonly Tensor[]; readonly gradients: readonly Tensor[]; readonly optimizer: readonly Tensor[] }): void {
    for (const t of parts.parameters) tagNode(t.node, "parameters");
    for (const t of parts.optimizer) tagNode(t.node, "optimizer");
    // NOTE: a gradient is often a view (a transpose, a reshape) of the matmul or reduction that holds its buffer.
    for (const t of parts.gradients) {
      let n = t.node;
      while (isMovement(n.op) && !n.keep && n.src.length === 1) n = n.src[0]!;
      tagNode(n, "gradients");
    }
  }

  /** Parameters (or, with `category`, optimizer state) already on the device before the first step count as such. */
  tagParameters(params: readonly Tensor[], category: "parameters" | "optimizer" = "parameters"): void {
    const acct = memoryAccountant(this.backend);
    for (const p of params) if (p.node.buffer) acct?.assign(p.node.buffer, category);
  }

  /**
   * Whether the step must be built every time rather than captured once: offload writes the forward's
   * saved inputs out on the host between forward and backward, which a replay of launches cannot do.
   * NOTE: activation checkpointing alone is captured. A capture keeps realize's reuse pool for its replays,
   * which holds as much as the step's schedule had live at its peak, not every intermediate: the pool
   * hands a freed buffer to later kernels as it does in a built step, so the recompute lowers the peak
   * (and what the capture holds) the same way (test/unit/train_checkpointing.test.ts measures both).
   */
  get needsBuiltSteps(): boolean {
    return this.offloader !== undefined;
  }

  /** After the step: free the optimizer state it replaced (not any it kept: an in-place update), forget its offloaded inputs. */
  afterStep(replaced: readonly Tensor[], current: readonly Tensor[]): void {
    const kept = new Set(current.map((t) => t.node));
    for (const t of replaced) if (!kept.has(t.node)) t.dispose();
    this.offloader?.clear();
  }

  /** Live and peak bytes per category; undefined unless the backend was made with trackMemory. */
  snapshot(): MemorySnapshot | undefined {
    return memoryAccountant(this.backend)?.snapshot();
  }

  close(): void {
    this.offloader?.store.close();
  }
}
