// embedding.ts: Embedding, the rows of a (num_embeddings, dim) table picked by integer ids (a gather), and
// the table used as a tied output head (project). The table may stay quantized (Q8_0, Q4_0: loadQuantized):
// a lookup then dequantizes only the gathered rows, and the head runs the matmul_q routine.

import type { QuantizedTensor, Tensor } from "../index.js";
import { gatherQuantizedRows, matmul, matmulQuantized } from "../index.js";
import type { ParamOptions } from "./module.js";
import { checkQuantizedShape, Module, placeholder } from "./module.js";

export class Embedding extends Module {
  private quantized: QuantizedTensor | undefined;
  private readonly dtype: NonNullable<ParamOptions["dtype"]>;

  constructor(readonly numEmbeddings: number, readonly dim: number, opts: ParamOptions = {}) {
    super();
    this.dtype = opts.dtype ?? "f32";
    this.setParameter("weight", placeholder([numEmbeddings, dim], opts));
  }

  get weight(): Tensor { return this.parameter("weight"); }

  /** Keep the table as `q`'s blocks (its shape must be (num_embeddings, dim)); the weight parameter becomes q.bytes. */
  loadQuantized(q: QuantizedTensor): void {
    checkQuantizedShape("Embedding", q, [this.numEmbeddings, this.dim]);
    this.quantized = q;
    this.setParameter("weight", q.bytes);
  }

  /** Integer ids of any shape -> (...ids.shape, dim); an id out of range gives a row of zeros. */
  forward(ids: Tensor): Tensor {
    if (this.quantized) return gatherQuantizedRows(this.quantized, ids, this.dtype);
    const rows = this.weight.gather(0, ids.ndim === 1 ? ids : ids.flatten());
    return ids.ndim === 1 ? rows : rows.reshape([...ids.shape, this.dim]);
  }

  /** x (..., dim) @ table^T: (..., num_embeddings), the output head of a model whose head is tied to its embedding. */
  project(x: Tensor): Tensor {
    return this.quantized ? matmulQuantized(x, this.quantized) : matmul(x, this.weight.transpose());
  }
}
