// tensor_parallel_llama.ts: Llama (models/llama.ts, the training layout: norms not folded, one fused qkv)
// over tp ranks, Megatron-style: the query heads and the key/value heads (grouped-query attention) split
// evenly, so each rank's queries attend to its own key/value heads; attn_qkv column-parallel with q, k and v
// cut separately (TpSplit parts), attn_output row-parallel; the SwiGLU MLP's gate and up column-parallel,
// down row-parallel; the token embedding and the head vocab-parallel; RMSNorm weights replicated.
// Same parameter names as Llama, so its weights shard onto it and gather back (tensor_parallel_shard.ts).

import type { Backend, DType, Tensor } from "../index.js";
import { rmsnorm, silu } from "../index.js";
import { Module, ModuleList, RMSNorm } from "../nn/index.js";
import type { ParamOptions } from "../nn/index.js";
import type { AttentionContext, CacheShape } from "../models/kv_cache.js";
import { contextLength, mergeHeads, splitHeads } from "../models/kv_cache.js";
import { applyRope, ropeFrequencies, ropeTables } from "../models/rope.js";
import type { RopeTables } from "../models/rope.js";
import type { PieceParameters } from "../models/training_pieces.js";
import type { LlamaConfig } from "../models/types.js";
import type { TpContext } from "./tensor_parallel_layers.js";
import { ColumnParallelLinear, enterRegion, perRank, replicatedParam, RowParallelLinear, VocabParallelEmbedding } from "./tensor_parallel_layers.js";
import type { TpModelOptions } from "./tensor_parallel_model.js";
import { TpLanguageModel } from "./tensor_parallel_model.js";

const norm = (n: RMSNorm, x: Tensor, c: TpContext) => rmsnorm(x, replicatedParam(n.weight, c), n.eps);

class TpLlamaBlock extends Module {
  readonly attnNorm: RMSNorm;
  readonly attnQkv: ColumnParallelLinear;
  readonly attnOutput: RowParallelLinear;
  readonly ffnNorm: RMSNorm;
  readonly ffnGate: ColumnParallelLinear;
  readonly ffnUp: ColumnParallelLinear;
  readonly ffnDown: RowParallelLinear;
  private readonly heads: number;
  private readonly kvHeads: number;

  constructor(private readonly cfg: LlamaConfig, tp: number, at: ParamOptions) {
    super();
    const { dim, hiddenDim, nHeads, nKvHeads, headDim, normEps } = cfg;
    this.heads = perRank(nHeads, tp, "llama's nHeads");
    this.kvHeads = perRank(nKvHeads, tp, "llama's nKvHeads");
    this.attnNorm = this.addModule("attn_norm", new RMSNorm(dim, normEps, at));
    this.attnQkv = this.addModule("attn_qkv", new ColumnParallelLinear(dim, [nHeads * headDim, nKvHeads * headDim, nKvHeads * headDim], tp, at));
    this.attnOutput = this.addModule("attn_output", new RowParallelLinear(nHeads * headDim, dim, tp, at));
    this.ffnNorm = this.addModule("ffn_norm", new RMSNorm(dim, normEps, at));
    this.ffnGate = this.addModule("ffn_gate", new ColumnParallelLinear(dim, [hiddenDim], tp, at));
    this.ffnUp = this.addModule("ffn_up", new ColumnParallelLinear(dim, [hiddenDim], tp, at));
    this.ffnDown = this.addModule("ffn_down", new RowParallelLinear(hiddenDim, dim, tp, at));
  }

  /** x (R, dim) outside the regions -> (R, dim); cos/sin (T, headDim) are the pass's rotary rows (all T). */
  forward(x: Tensor, layer: number, cos: Tensor, sin: Tensor, ctx: AttentionContext, c: TpContext): Tensor {
    const d = this.cfg.headDim;
    const [qEnd, kEnd] = [this.heads * d, (this.heads + this.kvHeads) * d];
    const qkv = this.attnQkv.forward(enterRegion(norm(this.attnNorm, x, c), c)); // (T, (Hl + 2 KVHl) D)
    const t = qkv.shape[0]!;
    const q = applyRope(qkv.slice(1, 0, qEnd).reshape([t, this.heads, d]), cos, sin);
    const k = applyRope(qkv.slice(1, qEnd, kEnd).reshape([t, this.kvHeads, d]), cos, sin);
    const v = qkv.slice(1, kEnd).reshape([t, this.kvHeads, d]);
    const o = ctx.attend(layer, splitHeads(q), splitHeads(k), splitHeads(v));
    x = x.add(this.attnOutput.forward(mergeHeads(o), c));
    const f = enterRegion(norm(this.ffnNorm, x, c), c);
    return x.add(this.ffnDown.forward(silu(this.ffnGate.forward(f)).mul(this.ffnUp.forward(f)), c));
  }
}

export class TpLlama extends TpLanguageModel {
  readonly tokenEmbd: VocabParallelEmbedding;
  readonly blocks: ModuleList<TpLlamaBlock>;
  readonly outputNorm: RMSNorm;
  /** Absent when the head is tied to the token embedding. */
  readonly output: ColumnParallelLinear | undefined;
  readonly rope: RopeTables;
  readonly dtype: DType;
  readonly contextLength: number;

  constructor(readonly config: LlamaConfig, readonly backend: Backend, opts: TpModelOptions) {
    super(opts);
    const dtype = (this.dtype = opts.dtype ?? "f32");
    this.contextLength = contextLength(config.maxSeqLen, opts);
    const at = { backend, dtype };
    const { dim, vocabSize, nLayers, normEps, headDim } = config;
    const tp = this.tp.size;
    if (config.nHeads % config.nKvHeads !== 0) throw new Error(`llama: nHeads (${config.nHeads}) must be a multiple of nKvHeads (${config.nKvHeads})`);
    this.tokenEmbd = this.addModule("token_embd", this.parallel("token_embd", new VocabParallelEmbedding(vocabSize, dim, this.tp, at)));
    const blocks = Array.from({ length: nLayers }, () => new TpLlamaBlock(config, tp, at));
    this.blocks = this.addModule("blk", new ModuleList(blocks));
    blocks.forEach((b, i) => {
      const layers = [["attn_qkv", b.attnQkv], ["attn_output", b.attnOutput], ["ffn_gate", b.ffnGate], ["ffn_up", b.ffnUp], ["ffn_down", b.ffnDown]] as const;
      for (const [name, layer] of layers) this.parallel(`blk.${i}.${name}`, layer);
    });
    this.outputNorm = this.addModule("output_norm", new RMSNorm(dim, normEps, at));
    this.output = config.tiedEmbeddings ? undefined : this.addModule("output", this.parallel("output", new ColumnParallelLinear(dim, [vocabSize], tp, at)));
    this.rope = ropeTables(this.contextLength, headDim, ropeFrequencies(headDim, config.ropeTheta, config.ropeScaling), backend, dtype);
  }

  get cacheShape(): CacheShape {
    const c = this.config;
    return { layers: c.nLayers, kvHeads: c.nKvHeads / this.tp.size, maxSeq: this.contextLength, headDim: c.headDim };
  }

  protected passPieces(ctx: AttentionContext, c: TpContext) {
    const [cos, sin] = [ctx.rows(this.rope.cos), ctx.rows(this.rope.sin)];
    return {
      embed: (ids: Tensor) => this.tokenEmbd.forward(ids, c), // (R, dim)
      block: (i: number, x: Tensor) => this.blocks.at(i).forward(x, i, cos, sin, ctx, c),
    };
  }

  pieceParameters(): PieceParameters {
    return { embed: ["token_embd.weight"], head: ["output_norm.weight", this.output ? "output.weight" : "token_embd.weight"] };
  }

  protected headLocal(x: Tensor, c: TpContext): Tensor {
    const h = enterRegion(norm(this.outputNorm, x, c), c);
    return this.output ? this.output.forward(h) : this.tokenEmbd.logits(h);
  }
}
