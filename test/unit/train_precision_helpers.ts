// A model for the mixed-precision tests (train_precision*.test.ts): a GPT-2 whose backward can be made to
// overflow f16 at chosen steps, to exercise fp16's skip of an overflowed step.

import type { Backend, Tensor } from "../../src/index.js";
import { customGrad, realizeAll, tensor } from "../../src/index.js";
import type { Gpt2 } from "../../src/models/gpt2.js";
import { Module } from "../../src/nn/index.js";
import type { TrainableModel } from "../../src/train/loss.js";

/**
 * A GPT-2 whose backward can be poisoned at chosen steps: the gradient into its logits times 1e30. The
 * factor is a device tensor (1 or 1e30), not a host flag: a captured step reads it on every replay.
 */
export class Poisonable extends Module implements TrainableModel {
  readonly inner: Gpt2;
  private readonly factor: Tensor;
  constructor(inner: Gpt2, private readonly backend: Backend) {
    super();
    this.inner = this.addModule("inner", inner);
    this.factor = tensor(Float32Array.of(1), { backend });
  }
  get config() { return this.inner.config; }
  async poison(on: boolean): Promise<void> {
    await realizeAll([this.factor.assign(tensor(Float32Array.of(on ? 1e30 : 1), { backend: this.backend }))]);
  }
  forward(ids: Tensor): Tensor {
    const y = this.inner.forward(ids);
    // NOTE: finite in f32 (the gradients are ~1e-2), over f16's 65504 in the matmul backward: an overflow.
    const f = this.factor.reshape([]);
    return customGrad([y], () => y, (g) => [g.mul(f)]);
  }
}
