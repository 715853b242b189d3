// llama.ts: the Llama family: RMSNorm, rotary positions (rope.ts), grouped-query attention, SwiGLU MLP,
// and an output head that is separate or tied to the token embedding. Parameter names are GGUF's
// (token_embd.weight, blk.N.attn_q.weight, ...), so a LoadedModel loads with one loadStateDict; the
// inference layout (LlamaOptions: norms folded, one attn_qkv) is the file's, rewritten by llama_layout.ts.
// How attention reaches earlier tokens (no cache, prefill, decode) is the AttentionContext's business
// (kv_cache.ts); stepping and caching between calls is language_model.ts's.
// A config with `moe` makes each block's MLP a mixture of SwiGLU experts (nn/moe.ts; Mixtral's layout,
// GGUF's names ffn_gate_inp / ffn_*_exps), whose load-balancing loss forwardWithAux returns.

import type { Backend, DType, Tensor } from "../index.js";
import { noGrad, silu } from "../index.js";
import { isQuantFormat } from "../core/dtype.js";
import { Embedding, Linear, Module, ModuleList, RMSNorm } from "../nn/index.js";
import type { ParamOptions } from "../nn/index.js";
import type { ExpertExchange, MoeStats } from "../nn/moe.js";
import { MoeFeedForward } from "../nn/moe.js";
import type { AttentionContext, CacheShape, ModelOptions } from "./kv_cache.js";
import { contextLength, mergeHeads, splitHeads } from "./kv_cache.js";
import { BatchContext, batchShape } from "./batch_context.js";
import { applyRope, ropeFrequencies, ropeTables } from "./rope.js";
import type { RopeTables } from "./rope.js";
import type { PieceParameters, TrainingPieces } from "./training_pieces.js";
import type { LlamaConfig, LoadedModel } from "./types.js";
import { foldNorms, fuseQkv } from "./llama_layout.js";
import { loadWeights } from "./weights.js";

/** How the weights are laid out; the defaults suit inference, {foldNorms: false, fuseQkv: false} is the file's own layout. */
export interface LlamaOptions extends ModelOptions {
  /**
   * Block norm weights folded into the next linears (llama_layout.ts; default true):
   * rmsnorm(x) * g @ W^T = (x @ (W diag g)^T) * rsqrt(mean(x^2) + eps).
   * NOTE: saves a kernel per norm, and keeps the residual stream in a buffer (it is a matmul operand),
   * so the residual add becomes the previous matmul's epilogue instead of being recomputed by every reader.
   */
  readonly foldNorms?: boolean;
  /** One attn_qkv linear instead of attn_q, attn_k, attn_v (default true): one matmul instead of three. */
  readonly fuseQkv?: boolean;
  /** MoE configs: where each layer's experts are (expert parallel, src/dist/expert_parallel.ts); default all here. */
  readonly experts?: (layer: number) => ExpertExchange;
  /**
   * Keep the file's Q8_0/Q4_0 weights quantized and compute on them in place (matmul_q; default true for
   * f32 models). NOTE: folding norms and fusing q/k/v rewrite weights, so both are off for such a model.
   */
  readonly keepQuantized?: boolean;
}

/** Llama's SwiGLU MLP: ffn_down(silu(ffn_gate(x)) * ffn_up(x)). */
interface DenseMlp { readonly gate: Linear; readonly up: Linear; readonly down: Linear }

class LlamaBlock extends Module {
  readonly attnNorm: RMSNorm;
  /** attn_qkv, or attn_q, attn_k and attn_v (LlamaOptions.fuseQkv). */
  readonly attn: { readonly qkv: Linear } | { readonly q: Linear; readonly k: Linear; readonly v: Linear };
  readonly attnOutput: Linear;
  readonly ffnNorm: RMSNorm;
  /** SwiGLU, or a mixture of SwiGLU experts when the config has moe. */
  readonly mlp: DenseMlp | MoeFeedForward;

  constructor(private readonly cfg: LlamaConfig, at: ParamOptions, private readonly folded: boolean, fused: boolean, experts?: ExpertExchange) {
    super();
    const { dim, hiddenDim, nHeads, nKvHeads, headDim, normEps } = cfg;
    const [qRows, kvRows] = [nHeads * headDim, nKvHeads * headDim];
    this.attnNorm = this.addModule("attn_norm", new RMSNorm(dim, normEps, at));
    this.attn = fused
      ? { qkv: this.addModule("attn_qkv", new Linear(dim, qRows + 2 * kvRows, at)) }
      : {
          q: this.addModule("attn_q", new Linear(dim, qRows, at)),
          k: this.addModule("attn_k", new Linear(dim, kvRows, at)),
          v: this.addModule("attn_v", new Linear(dim, kvRows, at)),
        };
    this.attnOutput = this.addModule("attn_output", new Linear(nHeads * headDim, dim, at));
    this.ffnNorm = this.addModule("ffn_norm", new RMSNorm(dim, normEps, at));
    this.mlp = cfg.moe
      ? new MoeFeedForward((name, m) => this.addModule(name, m), dim, hiddenDim, cfg.moe, at, experts)
      : {
          gate: this.addModule("ffn_gate", new Linear(dim, hiddenDim, at)),
          up: this.addModule("ffn_up", new Linear(dim, hiddenDim, at)),
          down: this.addModule("ffn_down", new Linear(hiddenDim, dim, at)),
        };
  }

  /** x (T, dim) -> (T, dim); cos/sin (T, headDim) are this pass's rotary rows; a MoE block adds its statistics to `moeStats`. */
  forward(x: Tensor, layer: number, cos: Tensor, sin: Tensor, ctx: AttentionContext, moeStats?: MoeStats[]): Tensor {
    const { nHeads, nKvHeads, headDim } = this.cfg;
    const t = x.shape[0]!;
    const [qp, kp, vp] = this.projectQkv(this.normed(this.attnNorm, x));
    const q = applyRope(qp.reshape([t, nHeads, headDim]), cos, sin);
    const k = applyRope(kp.reshape([t, nKvHeads, headDim]), cos, sin);
    const v = vp.reshape([t, nKvHeads, headDim]);
    const o = ctx.attend(layer, splitHeads(q), splitHeads(k), splitHeads(v)); // (1, H, T, D)
    x = x.add(this.attnOutput.forward(mergeHeads(o)));
    if (this.mlp instanceof MoeFeedForward) {
      const { out, stats } = this.mlp.forward(this.ffnNorm.forward(x));
      moeStats?.push(stats);
      return x.add(out);
    }
    const ffnIn = this.normed(this.ffnNorm, x);
    return x.add(this.mlp.down.forward(silu(ffnIn(this.mlp.gate)).mul(ffnIn(this.mlp.up))));
  }

  /** q (T, H D), k and v (T, KVH D). */
  private projectQkv(input: (l: Linear) => Tensor): [Tensor, Tensor, Tensor] {
    if (!("qkv" in this.attn)) return [input(this.attn.q), input(this.attn.k), input(this.attn.v)];
    const { nHeads, nKvHeads, headDim } = this.cfg;
    const qkv = input(this.attn.qkv); // (T, (H + 2 KVH) D): q rows, then k, then v
    const [qEnd, kEnd] = [nHeads * headDim, (nHeads + nKvHeads) * headDim];
    return [qkv.slice(1, 0, qEnd), qkv.slice(1, qEnd, kEnd), qkv.slice(1, kEnd)];
  }

  /** linear(norm(x)) for the linears that read this norm, folded or not (see LlamaOptions.foldNorms). */
  private normed(norm: RMSNorm, x: Tensor): (l: Linear) => Tensor {
    if (!this.folded) {
      const h = norm.forward(x);
      return (l) => l.forward(h);
    }
    const scale = x.square().mean(-1, true).add(norm.eps).rsqrt(); // (T, 1)
    return (l) => l.forward(x).mul(scale);
  }
}

export class Llama extends Module {
  readonly tokenEmbd: Embedding;
  readonly blocks: ModuleList<LlamaBlock>;
  readonly outputNorm: RMSNorm;
  /** Absent when the head is tied to the token embedding. */
  readonly output: Linear | undefined;
  readonly rope: RopeTables;
  readonly dtype: DType;

  readonly normsFolded: boolean;
  readonly qkvFused: boolean;
  readonly contextLength: number;

  constructor(readonly config: LlamaConfig, readonly backend: Backend, opts: LlamaOptions = {}) {
    super();
    this.dtype = opts.dtype ?? "f32";
    this.normsFolded = opts.foldNorms ?? true;
    this.qkvFused = opts.fuseQkv ?? true;
    this.contextLength = contextLength(config.maxSeqLen, opts);
    const dtype = this.dtype;
    const at = { backend, dtype };
    const { dim, vocabSize, nLayers, normEps, nHeads, headDim } = config;
    if (nHeads % config.nKvHeads !== 0) throw new Error(`llama: nHeads (${nHeads}) must be a multiple of nKvHeads (${config.nKvHeads})`);
    // NOTE: folding moves ffn_norm into ffn_gate/ffn_up; a MoE block's norm feeds the router and the experts instead.
    if (config.moe && this.normsFolded) throw new Error("llama: a MoE config needs foldNorms: false (its ffn_norm feeds the router and the experts)");
    this.tokenEmbd = this.addModule("token_embd", new Embedding(vocabSize, dim, at));
    this.blocks = this.addModule("blk", new ModuleList(Array.from({ length: nLayers }, (_, l) => new LlamaBlock(config, at, this.normsFolded, this.qkvFused, opts.experts?.(l)))));
    this.outputNorm = this.addModule("output_norm", new RMSNorm(dim, normEps, at));
    this.output = config.tiedEmbeddings ? undefined : this.addModule("output", new Linear(dim, vocabSize, at));
    this.rope = ropeTables(this.contextLength, headDim, ropeFrequencies(headDim, config.ropeTheta, config.ropeScaling), backend, dtype);
  }

  /** Upload a loaded model's weights (dequantized, as `dtype`) and check every name and shape. */
  static fromLoaded(loaded: LoadedModel, backend: Backend, opts: LlamaOptions = {}): Llama {
    if (loaded.config.arch !== "llama") throw new Error(`llama: ${loaded.source} is a ${loaded.config.arch} model`);
    const quant = (opts.keepQuantized ?? (opts.dtype ?? "f32") === "f32") && hasQuantized(loaded);
    const model = new Llama(loaded.config, backend, quant ? { ...opts, foldNorms: false, fuseQkv: false } : opts);
    let layout = loaded;
    if (model.normsFolded) layout = foldNorms(layout);
    if (model.qkvFused) layout = fuseQkv(layout);
    // NOTE: GGUF's rope_freqs.weight holds Llama 3's frequency factors, which config.ropeScaling already gives.
    loadWeights(model, layout, backend, model.dtype, { ignorable: (name) => name === "rope_freqs.weight", keepQuantized: quant });
    return model;
  }

  get cacheShape(): CacheShape {
    const c = this.config;
    return { layers: c.nLayers, kvHeads: c.nKvHeads, maxSeq: this.contextLength, headDim: c.headDim };
  }

  /** Logits for token ids (T,) i32: (T, vocab), or (1, vocab) for the last position when lastOnly. */
  logits(ids: Tensor, ctx: AttentionContext, lastOnly = false): Tensor {
    return noGrad(() => {
      const x = this.hidden(ids, ctx);
      const t = x.shape[0]!;
      return this.head(lastOnly && t > 1 ? x.slice(0, t - 1, t) : x);
    });
  }

  /** Training forward: ids (B, T) i32 -> logits (B, T, vocab), causal within each sequence, gradients recorded. */
  forward(ids: Tensor): Tensor {
    return this.forwardWithAux(ids).logits;
  }

  /**
   * forward, and for a MoE config the mean over layers of the load-balancing loss (Switch's, 1 when
   * balanced) and the (token, choice) assignments dropped for capacity, summed over layers.
   */
  forwardWithAux(ids: Tensor): { logits: Tensor; auxLoss?: Tensor; dropped?: Tensor } {
    const [b, t] = batchShape("llama", ids, this.contextLength);
    const stats: MoeStats[] = [];
    const logits = this.head(this.hidden(ids.flatten(), new BatchContext(b, t), stats)).reshape([b, t, this.config.vocabSize]);
    if (stats.length === 0) return { logits };
    const auxLoss = stats.map((s) => s.auxLoss).reduce((a, c) => a.add(c)).div(stats.length);
    return { logits, auxLoss, dropped: stats.map((s) => s.dropped).reduce((a, c) => a.add(c)) };
  }

  /**
   * forward's pieces for batches of (b, t) (training_pieces.ts): pipeline stages run some of them each.
   * NOTE: a dense model's; a MoE block's load-balancing loss does not cross stages yet.
   */
  trainingPieces(b: number, t: number): TrainingPieces {
    const ctx = new BatchContext(b, t);
    const [cos, sin] = [ctx.rows(this.rope.cos), ctx.rows(this.rope.sin)];
    return {
      nBlocks: this.blocks.length,
      embed: (ids) => this.tokenEmbd.forward(ids),
      block: (i, x) => this.blocks.at(i).forward(x, i, cos, sin, ctx),
      head: (x) => this.head(x),
    };
  }

  /** Which parameters the embedding and the head read (the head: the token embedding's weight when tied). */
  pieceParameters(): PieceParameters {
    return { embed: ["token_embd.weight"], head: [...this.outputNorm.parameters().keys()].map((n) => `output_norm.${n}`).concat(this.output ? ["output.weight"] : ["token_embd.weight"]) };
  }

  /** Logits (R, vocab) of the positions `rows` (R,) i32: only those rows reach the output norm and head. */
  logitsAt(ids: Tensor, ctx: AttentionContext, rows: Tensor): Tensor {
    return noGrad(() => this.head(this.hidden(ids, ctx).gather(0, rows)));
  }

  /** The last block's output (T, dim). */
  private hidden(ids: Tensor, ctx: AttentionContext, moeStats?: MoeStats[]): Tensor {
    let x = this.tokenEmbd.forward(ids); // (T, dim)
    const [cos, sin] = [ctx.rows(this.rope.cos), ctx.rows(this.rope.sin)];
    let i = 0;
    for (const block of this.blocks) x = block.forward(x, i++, cos, sin, ctx, moeStats);
    return x;
  }

  /** Output norm and head: (R, dim) -> (R, vocab). */
  private head(x: Tensor): Tensor {
    x = this.outputNorm.forward(x);
    return this.output ? this.output.forward(x) : this.tokenEmbd.project(x);
  }
}

/** Whether any tensor of the file is stored in a block format matmul_q computes on, with its bytes at hand. */
function hasQuantized(loaded: LoadedModel): boolean {
  for (const e of loaded.tensors.values()) if (e.readRaw && isQuantFormat(e.stored)) return true;
  return false;
}
