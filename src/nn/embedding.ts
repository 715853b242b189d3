// embedding.ts: Embedding, the rows of a (num_embeddings, dim) table picked by integer ids (a gather).

import type { Tensor } from "../index.js";
import type { ParamOptions } from "./module.js";
import { Module, placeholder } from "./module.js";

export class Embedding extends Module {
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: ParamOptions = {}) {
    super();
    this.setParameter("weight", placeholder([numEmbeddings, dim], opts));
  }

  get weight(): Tensor { return this.parameter("weight"); }

  /** Integer ids of any shape -> (...ids.shape, dim); an id out of range gives a row of zeros. */
  forward(ids: Tensor): Tensor {
    const rows = this.weight.gather(0, ids.ndim === 1 ? ids : ids.flatten());
    return ids.ndim === 1 ? rows : rows.reshape([...ids.shape, this.dim]);
  }
}
