// linear.ts: Linear, y = x @ W^T + b, with W PyTorch-shaped: (out_features, in_features).
// W may instead stay in a quantized block format (Q8_0, Q4_0: loadQuantized), computed on in place by the
// matmul_q routine; the "weight" parameter is then the blocks' bytes (u8), so state dicts and memory see them.

import type { QuantizedTensor, Tensor } from "../index.js";
import { matmul, matmulQuantized } from "../index.js";
import type { ParamOptions } from "./module.js";
import { checkQuantizedShape, Module, placeholder } from "./module.js";

export class Linear extends Module {
  private quantized: QuantizedTensor | undefined;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: ParamOptions & { bias?: boolean } = {}) {
    super();
    this.setParameter("weight", placeholder([outFeatures, inFeatures], opts));
    if (opts.bias) this.setParameter("bias", placeholder([outFeatures], opts));
  }

  get weight(): Tensor { return this.parameter("weight"); }
  get bias(): Tensor | undefined { return this.optionalParameter("bias"); }
  /** The quantized weight, when it was loaded as one. */
  get weightQuantized(): QuantizedTensor | undefined { return this.quantized; }

  /** Keep W as `q`'s blocks (its shape must be (out, in)); the weight parameter becomes q.bytes. */
  loadQuantized(q: QuantizedTensor): void {
    checkQuantizedShape("Linear", q, [this.outFeatures, this.inFeatures]);
    this.quantized = q;
    this.setParameter("weight", q.bytes);
  }

  /** (..., in) -> (..., out). */
  forward(x: Tensor): Tensor {
    // NOTE: W.transpose() is a view, so the matmul routine reads W transposed in place (no copy),
    // and the bias add becomes the matmul's epilogue (one launch).
    const y = this.quantized ? matmulQuantized(x, this.quantized) : matmul(x, this.weight.transpose());
    const b = this.bias;
    return b ? y.add(b) : y;
  }
}
