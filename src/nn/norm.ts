// norm.ts: RMSNorm (Llama) and LayerNorm (GPT-2) over the last axis, on the composites of the core.

import type { Tensor } from "../index.js";
import { layernorm, rmsnorm } from "../index.js";
import type { ParamOptions } from "./module.js";
import { Module, placeholder } from "./module.js";

export class RMSNorm extends Module {
  constructor(readonly dim: number, readonly eps = 1e-5, opts: ParamOptions = {}) {
    super();
    this.setParameter("weight", placeholder([dim], opts));
  }
  get weight(): Tensor { return this.parameter("weight"); }
  forward(x: Tensor): Tensor {
    return rmsnorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends Module {
  constructor(readonly dim: number, readonly eps = 1e-5, opts: ParamOptions = {}) {
    super();
    this.setParameter("weight", placeholder([dim], opts));
    this.setParameter("bias", placeholder([dim], opts));
  }
  get weight(): Tensor { return this.parameter("weight"); }
  get bias(): Tensor { return this.parameter("bias"); }
  forward(x: Tensor): Tensor {
    return layernorm(x, this.weight, this.bias, this.eps);
  }
}
