// moe.ts: a mixture-of-experts feed-forward (Mixtral's sparse MoE block): a router (router.ts) picks k
// of E SwiGLU experts per token, each expert runs on the rows sent to it (a fixed (E, C, D) buffer, C
// the capacity), and each token's output is the gate-weighted sum of its experts' outputs. Parameter
// names are GGUF's (ffn_gate_inp: the router, ffn_gate_exps / ffn_up_exps / ffn_down_exps: the experts'
// stacked SwiGLU weights), registered on the owning block so a state dict reads like a llama.cpp file.
// Dispatch and combine are a gather of token rows into expert slots and a gather back (empty or dropped
// slots read 0), so autograd differentiates them with scatter-adds and the whole layer is kiln ops.
// Where the experts live is an ExpertExchange's business: here, all of them (the identity); with expert
// parallel (src/dist/expert_parallel.ts) each rank holds a contiguous share and rows travel by all-to-all.

import type { Tensor } from "../index.js";
import { arange, concat, matmul, noGrad, scatterAdd, silu } from "../index.js";
import { Linear } from "./linear.js";
import type { ParamOptions } from "./module.js";
import { Module, placeholder } from "./module.js";
import type { Routing } from "./router.js";
import { routeTokens } from "./router.js";

/** The MoE layer's shape and routing (Mixtral: 8 experts, top 2; Switch: capacityFactor 1 to 2). */
export interface MoeConfig {
  readonly numExperts: number;
  readonly topK: number;
  /** Slots per expert as a multiple of N * k / E; absent: unlimited (no token is ever dropped). */
  readonly capacityFactor?: number;
  /** Weight of the load-balancing loss in the training objective (HF Mixtral's router_aux_loss_coef). */
  readonly routerAuxLossCoef?: number;
}

/** What one MoE forward reports besides its output. */
export interface MoeStats {
  /** Switch's load-balancing loss (1 when balanced), differentiable through the router. */
  readonly auxLoss: Tensor;
  /** (token, choice) assignments dropped for capacity, a scalar. */
  readonly dropped: Tensor;
}

/**
 * Moves expert inputs to where the experts are and their outputs back. `first` and `count` are the
 * experts held here; dispatch takes this process's (E, C, D) slots for every expert to (count, R * C, D),
 * every process's slots for the experts held here (R processes); combine is its inverse.
 */
export interface ExpertExchange {
  readonly first: number;
  readonly count: number;
  dispatch(x: Tensor): Tensor;
  combine(y: Tensor): Tensor;
  /** The router's groupMean (router.ts): the mean of a statistic over the processes that route tokens. */
  groupMean?(x: Tensor): Tensor;
}

/** All experts here: the identity. */
export const localExperts = (numExperts: number): ExpertExchange => ({ first: 0, count: numExperts, dispatch: (x) => x, combine: (y) => y });

/** `count` experts' weights stacked: (count, out, in), each a Linear's (out, in). */
export class ExpertLinear extends Module {
  constructor(readonly count: number, readonly inFeatures: number, readonly outFeatures: number, opts: ParamOptions = {}) {
    super();
    this.setParameter("weight", placeholder([count, outFeatures, inFeatures], opts));
  }
  get weight(): Tensor { return this.parameter("weight"); }
  /** (count, rows, in) -> (count, rows, out): one batched matmul, the weight read transposed in place. */
  forward(x: Tensor): Tensor {
    return matmul(x, this.weight.transpose());
  }
}

/** Registers a submodule on the module that owns the layer (LlamaBlock's addModule). */
export type AddModule = <M extends Module>(name: string, m: M) => M;

export class MoeFeedForward {
  readonly router: Linear;
  readonly gate: ExpertLinear;
  readonly up: ExpertLinear;
  readonly down: ExpertLinear;

  constructor(add: AddModule, readonly dim: number, readonly hiddenDim: number, readonly cfg: MoeConfig, at: ParamOptions, readonly exchange: ExpertExchange = localExperts(cfg.numExperts)) {
    const { numExperts: e, topK } = cfg;
    if (!(Number.isInteger(e) && e >= 1)) throw new Error(`moe: numExperts must be a positive integer, got ${e}`);
    if (!(Number.isInteger(topK) && topK >= 1 && topK <= e)) throw new Error(`moe: topK must be an integer from 1 to numExperts (${e}), got ${topK}`);
    const { first, count } = exchange;
    if (!(Number.isInteger(first) && Number.isInteger(count) && first >= 0 && count >= 1 && first + count <= e)) {
      throw new Error(`moe: the experts held here [${first}, ${first + count}) are not within the ${e} experts`);
    }
    this.router = add("ffn_gate_inp", new Linear(dim, e, at));
    this.gate = add("ffn_gate_exps", new ExpertLinear(count, dim, hiddenDim, at));
    this.up = add("ffn_up_exps", new ExpertLinear(count, dim, hiddenDim, at));
    this.down = add("ffn_down_exps", new ExpertLinear(count, hiddenDim, dim, at));
  }

  /** x (N, D) -> (N, D) and the layer's statistics. */
  forward(x: Tensor): { out: Tensor; stats: MoeStats } {
    if (x.ndim !== 2 || x.shape[1] !== this.dim) throw new Error(`moe: input must be (tokens, ${this.dim}), got ${x}`);
    const n = x.shape[0]!;
    const e = this.cfg.numExperts;
    const ex = this.exchange;
    const routing = routeTokens(this.router.forward(x), { ...this.cfg, ...(ex.groupMean ? { groupMean: (t: Tensor) => ex.groupMean!(t) } : {}) });
    const slots = e * routing.capacity;
    const dispatched = x.gather(0, slotTokens(routing, n, slots)).reshape([e, routing.capacity, this.dim]); // (E, C, D)
    const xe = this.exchange.dispatch(dispatched); // (E_here, R C, D)
    const ye = this.down.forward(silu(this.gate.forward(xe)).mul(this.up.forward(xe)));
    const y = this.exchange.combine(ye).reshape([slots, this.dim]); // (E C, D)
    let out: Tensor | undefined;
    routing.slots.forEach((slot, j) => {
      const part = y.gather(0, slot).mul(routing.gates[j]!.unsqueeze(-1)); // (N, D); 0 where dropped
      out = out ? out.add(part) : part;
    });
    return { out: out!, stats: { auxLoss: routing.auxLoss, dropped: routing.dropped } };
  }
}

/** For each of the E * C slots, the token whose row it holds, or -1 (empty). */
function slotTokens(routing: Routing, n: number, slots: number): Tensor {
  return noGrad(() => {
    const like = routing.probs;
    // Each kept assignment writes its token index + 1 into its slot (slots are unique), so an empty slot is 0.
    const token = arange(n, undefined, 1, { backend: like.backend }).add(1).cast(like.dtype);
    const k = routing.slots.length;
    const idx = k === 1 ? routing.slots[0]! : concat(routing.slots, 0);
    const src = k === 1 ? token : concat(routing.slots.map(() => token), 0);
    return scatterAdd(slots, idx, src).sub(1).cast("i32");
  });
}
