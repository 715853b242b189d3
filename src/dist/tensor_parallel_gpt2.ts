// tensor_parallel_gpt2.ts: GPT-2 (models/gpt2.ts) over tp ranks, Megatron-style: each block's attention
// heads split (the fused qkv projection column-parallel, this rank's q, k and v heads; the output projection
// row-parallel), its MLP column- then row-parallel, the token embedding (and the tied head) vocab-parallel;
// the norms and the position embedding replicated. Same parameter names as Gpt2, so a Gpt2's weights
// shard onto it (tensor_parallel_shard.ts loadShards) and gather back.
// NOTE: the norms compute the mean as x @ ones / dim, as Gpt2's do, so the two differ only in the order of
// the split matmuls' sums.

import type { Backend, DType, Tensor } from "../index.js";
import { autocast, gelu, matmul, tensor } from "../index.js";
import { Embedding, LayerNorm, Module, ModuleList } from "../nn/index.js";
import type { ParamOptions } from "../nn/index.js";
import type { AttentionContext, CacheShape } from "../models/kv_cache.js";
import { contextLength, mergeHeads, splitHeads } from "../models/kv_cache.js";
import type { PieceParameters } from "../models/training_pieces.js";
import type { Gpt2Config } from "../models/types.js";
import type { TpContext } from "./tensor_parallel_layers.js";
import { ColumnParallelLinear, enterRegion, perRank, replicatedParam, RowParallelLinear, VocabParallelEmbedding } from "./tensor_parallel_layers.js";
import type { TpModelOptions } from "./tensor_parallel_model.js";
import { TpLanguageModel } from "./tensor_parallel_model.js";

/** Gpt2's LayerNorm (mean by a matmul with ones); the parameters read as replicated (replicatedParam). */
function layerNorm(norm: LayerNorm, x: Tensor, ones: Tensor, c: TpContext): Tensor {
  const centered = x.sub(autocast(undefined, () => matmul(x, ones)).mul(1 / norm.dim));
  const y = centered.mul(centered.square().mean(-1, true).add(norm.eps).rsqrt());
  return y.mul(replicatedParam(norm.weight, c)).add(replicatedParam(norm.bias, c));
}

class TpGpt2Block extends Module {
  readonly attnNorm: LayerNorm;
  readonly attnQkv: ColumnParallelLinear;
  readonly attnOutput: RowParallelLinear;
  readonly ffnNorm: LayerNorm;
  readonly ffnUp: ColumnParallelLinear;
  readonly ffnDown: RowParallelLinear;
  private readonly headsLocal: number;

  constructor(private readonly cfg: Gpt2Config, tp: number, at: ParamOptions) {
    super();
    const { dim, normEps, nHeads } = cfg;
    const lin = { ...at, bias: true };
    this.headsLocal = perRank(nHeads, tp, "gpt2's nHeads");
    this.attnNorm = this.addModule("attn_norm", new LayerNorm(dim, normEps, at));
    this.attnQkv = this.addModule("attn_qkv", new ColumnParallelLinear(dim, [dim, dim, dim], tp, lin));
    this.attnOutput = this.addModule("attn_output", new RowParallelLinear(dim, dim, tp, lin));
    this.ffnNorm = this.addModule("ffn_norm", new LayerNorm(dim, normEps, at));
    this.ffnUp = this.addModule("ffn_up", new ColumnParallelLinear(dim, [4 * dim], tp, lin));
    this.ffnDown = this.addModule("ffn_down", new RowParallelLinear(4 * dim, dim, tp, lin));
  }

  /** x (R, dim) outside the regions -> (R, dim); attention sees all T rows of this rank's heads. */
  forward(x: Tensor, layer: number, ctx: AttentionContext, ones: Tensor, c: TpContext): Tensor {
    const hd = this.cfg.dim / this.cfg.nHeads;
    const width = this.headsLocal * hd;
    const qkv = this.attnQkv.forward(enterRegion(layerNorm(this.attnNorm, x, ones, c), c)); // (T, 3 width): q, k, v of this rank's heads
    const t = qkv.shape[0]!;
    const part = (i: number) => splitHeads(qkv.slice(1, i * width, (i + 1) * width).reshape([t, this.headsLocal, hd]));
    const o = ctx.attend(layer, part(0), part(1), part(2));
    x = x.add(this.attnOutput.forward(mergeHeads(o), c));
    const up = this.ffnUp.forward(enterRegion(layerNorm(this.ffnNorm, x, ones, c), c));
    return x.add(this.ffnDown.forward(gelu(up, "tanh"), c));
  }
}

export class TpGpt2 extends TpLanguageModel {
  readonly tokenEmbd: VocabParallelEmbedding;
  readonly positionEmbd: Embedding;
  readonly blocks: ModuleList<TpGpt2Block>;
  readonly outputNorm: LayerNorm;
  /** A separate (vocab-parallel) head; absent when tied to the token embedding. */
  readonly output: ColumnParallelLinear | undefined;
  readonly dtype: DType;
  readonly contextLength: number;
  private readonly ones: Tensor;

  constructor(readonly config: Gpt2Config, readonly backend: Backend, opts: TpModelOptions & { separateHead?: boolean }) {
    super(opts);
    const dtype = (this.dtype = opts.dtype ?? "f32");
    this.contextLength = contextLength(config.maxSeqLen, opts);
    const at = { backend, dtype };
    const { dim, vocabSize, maxSeqLen, nLayers, normEps } = config;
    const tp = this.tp.size;
    this.tokenEmbd = this.addModule("token_embd", this.parallel("token_embd", new VocabParallelEmbedding(vocabSize, dim, this.tp, at)));
    this.positionEmbd = this.addModule("position_embd", new Embedding(maxSeqLen, dim, at));
    const blocks = Array.from({ length: nLayers }, () => new TpGpt2Block(config, tp, at));
    this.blocks = this.addModule("blk", new ModuleList(blocks));
    blocks.forEach((b, i) => {
      for (const [name, layer] of [["attn_qkv", b.attnQkv], ["attn_output", b.attnOutput], ["ffn_up", b.ffnUp], ["ffn_down", b.ffnDown]] as const) {
        this.parallel(`blk.${i}.${name}`, layer);
      }
    });
    this.outputNorm = this.addModule("output_norm", new LayerNorm(dim, normEps, at));
    this.output = opts.separateHead ? this.addModule("output", this.parallel("output", new ColumnParallelLinear(dim, [vocabSize], tp, at))) : undefined;
    this.ones = tensor(new Float32Array(dim).fill(1), { backend, dtype, shape: [dim, 1] });
  }

  get cacheShape(): CacheShape {
    const c = this.config;
    return { layers: c.nLayers, kvHeads: c.nHeads / this.tp.size, maxSeq: this.contextLength, headDim: c.dim / c.nHeads };
  }

  protected passPieces(ctx: AttentionContext, c: TpContext) {
    return {
      embed: (ids: Tensor) => this.tokenEmbd.forward(ids, c).add(this.outsideRows(ctx.rows(replicatedParam(this.positionEmbd.weight, c)), c)), // (R, dim)
      block: (i: number, x: Tensor) => this.blocks.at(i).forward(x, i, ctx, this.ones, c),
    };
  }

  pieceParameters(): PieceParameters {
    return { embed: ["token_embd.weight", "position_embd.weight"], head: ["output_norm.weight", "output_norm.bias", this.output ? "output.weight" : "token_embd.weight"] };
  }

  protected headLocal(x: Tensor, c: TpContext): Tensor {
    const h = enterRegion(layerNorm(this.outputNorm, x, this.ones, c), c);
    return this.output ? this.output.forward(h) : this.tokenEmbd.logits(h);
  }
}
