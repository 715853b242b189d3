// linear.ts: Linear, y = x @ W^T + b, with W PyTorch-shaped: (out_features, in_features).

import type { Tensor } from "../index.js";
import { matmul } from "../index.js";
import type { ParamOptions } from "./module.js";
import { Module, placeholder } from "./module.js";

export class Linear extends Module {
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: ParamOptions & { bias?: boolean } = {}) {
    super();
    this.setParameter("weight", placeholder([outFeatures, inFeatures], opts));
    if (opts.bias) this.setParameter("bias", placeholder([outFeatures], opts));
  }

  get weight(): Tensor { return this.parameter("weight"); }
  get bias(): Tensor | undefined { return this.optionalParameter("bias"); }

  /** (..., in) -> (..., out). */
  forward(x: Tensor): Tensor {
    // NOTE: W.transpose() is a view, so the matmul routine reads W transposed in place (no copy),
    // and the bias add becomes the matmul's epilogue (one launch).
    const y = matmul(x, this.weight.transpose());
    const b = this.bias;
    return b ? y.add(b) : y;
  }
}
