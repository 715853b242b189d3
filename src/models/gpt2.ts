// gpt2.ts: GPT-2: learned position embeddings, pre-LayerNorm blocks, one fused qkv projection,
// GELU (tanh approximation) MLP, every linear with a bias, output head tied to the token embedding
// (or GGUF's output.weight when the file has one). Parameter names are GGUF's (token_embd.weight,
// position_embd.weight, blk.N.attn_qkv.weight, ...). Attention goes through an AttentionContext
// (kv_cache.ts) like Llama's, with as many kv heads as heads.

import type { Backend, DType, Tensor } from "../index.js";
import { autocast, gelu, matmul, noGrad, tensor } from "../index.js";
import { Embedding, LayerNorm, Linear, Module, ModuleList } from "../nn/index.js";
import type { ParamOptions } from "../nn/index.js";
import type { AttentionContext, CacheShape, ModelOptions } from "./kv_cache.js";
import { contextLength, mergeHeads, splitHeads } from "./kv_cache.js";
import { BatchContext, batchShape } from "./batch_context.js";
import type { PieceParameters, TrainingPieces } from "./training_pieces.js";
import type { Gpt2Config, LoadedModel } from "./types.js";
import { loadWeights } from "./weights.js";

class Gpt2Block extends Module {
  readonly attnNorm: LayerNorm;
  readonly attnQkv: Linear;
  readonly attnOutput: Linear;
  readonly ffnNorm: LayerNorm;
  readonly ffnUp: Linear;
  readonly ffnDown: Linear;

  constructor(private readonly cfg: Gpt2Config, at: ParamOptions) {
    super();
    const { dim, normEps } = cfg;
    const lin = { ...at, bias: true };
    this.attnNorm = this.addModule("attn_norm", new LayerNorm(dim, normEps, at));
    this.attnQkv = this.addModule("attn_qkv", new Linear(dim, 3 * dim, lin));
    this.attnOutput = this.addModule("attn_output", new Linear(dim, dim, lin));
    this.ffnNorm = this.addModule("ffn_norm", new LayerNorm(dim, normEps, at));
    this.ffnUp = this.addModule("ffn_up", new Linear(dim, 4 * dim, lin));
    this.ffnDown = this.addModule("ffn_down", new Linear(4 * dim, dim, lin));
  }

  /** x (T, dim) -> (T, dim); `ones` is a (dim, 1) column of ones (see layerNorm). */
  forward(x: Tensor, layer: number, ctx: AttentionContext, ones: Tensor): Tensor {
    const { dim, nHeads } = this.cfg;
    const t = x.shape[0]!;
    const qkv = this.attnQkv.forward(layerNorm(this.attnNorm, x, ones)); // (T, 3 * dim): q, then k, then v
    const part = (i: number) => splitHeads(qkv.slice(1, i * dim, (i + 1) * dim).reshape([t, nHeads, dim / nHeads]));
    const o = ctx.attend(layer, part(0), part(1), part(2));
    x = x.add(this.attnOutput.forward(mergeHeads(o)));
    return x.add(this.ffnDown.forward(gelu(this.ffnUp.forward(layerNorm(this.ffnNorm, x, ones)), "tanh")));
  }
}

/**
 * The LayerNorm module's math, with the mean taken as x @ ones / dim.
 * NOTE: the matmul makes x a routine operand, which the scheduler keeps in a buffer: the residual
 * add that produced x then becomes the previous matmul's epilogue, instead of the whole residual
 * chain being recomputed inside every kernel that reads x (which also runs out of buffer bindings).
 * It is a reduction, not a layer: mixed precision (autocast) leaves it in the model's dtype.
 */
function layerNorm(norm: LayerNorm, x: Tensor, ones: Tensor): Tensor {
  const centered = x.sub(autocast(undefined, () => matmul(x, ones)).mul(1 / norm.dim));
  return centered.mul(centered.square().mean(-1, true).add(norm.eps).rsqrt()).mul(norm.weight).add(norm.bias);
}

export class Gpt2 extends Module {
  readonly tokenEmbd: Embedding;
  readonly positionEmbd: Embedding;
  readonly blocks: ModuleList<Gpt2Block>;
  readonly outputNorm: LayerNorm;
  /** Present only when the file has a separate output head. */
  readonly output: Linear | undefined;
  private readonly ones: Tensor;
  readonly dtype: DType;
  readonly contextLength: number;

  constructor(readonly config: Gpt2Config, readonly backend: Backend, opts: ModelOptions & { separateHead?: boolean } = {}) {
    super();
    const dtype = (this.dtype = opts.dtype ?? "f32");
    this.contextLength = contextLength(config.maxSeqLen, opts);
    const at = { backend, dtype };
    const { dim, vocabSize, maxSeqLen, nLayers, nHeads, normEps } = config;
    if (dim % nHeads !== 0) throw new Error(`gpt2: dim (${dim}) must be a multiple of nHeads (${nHeads})`);
    this.tokenEmbd = this.addModule("token_embd", new Embedding(vocabSize, dim, at));
    this.positionEmbd = this.addModule("position_embd", new Embedding(maxSeqLen, dim, at));
    this.blocks = this.addModule("blk", new ModuleList(Array.from({ length: nLayers }, () => new Gpt2Block(config, at))));
    this.outputNorm = this.addModule("output_norm", new LayerNorm(dim, normEps, at));
    this.output = opts.separateHead ? this.addModule("output", new Linear(dim, vocabSize, at)) : undefined;
    this.ones = tensor(new Float32Array(dim).fill(1), { backend, dtype, shape: [dim, 1] });
  }

  static fromLoaded(loaded: LoadedModel, backend: Backend, opts: ModelOptions = {}): Gpt2 {
    if (loaded.config.arch !== "gpt2") throw new Error(`gpt2: ${loaded.source} is a ${loaded.config.arch} model`);
    const model = new Gpt2(loaded.config, backend, { ...opts, separateHead: loaded.tensors.has("output.weight") });
    loadWeights(model, loaded, backend, model.dtype);
    return model;
  }

  get cacheShape(): CacheShape {
    const c = this.config;
    return { layers: c.nLayers, kvHeads: c.nHeads, maxSeq: this.contextLength, headDim: c.dim / c.nHeads };
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
    const [b, t] = batchShape("gpt2", ids, this.contextLength);
    const p = this.trainingPieces(b, t);
    let x = p.embed(ids.flatten());
    for (let i = 0; i < p.nBlocks; i++) x = p.block(i, x);
    return p.head(x).reshape([b, t, this.config.vocabSize]);
  }

  /** forward's pieces for batches of (b, t) (training_pieces.ts): pipeline stages run some of them each. */
  trainingPieces(b: number, t: number): TrainingPieces {
    const ctx = new BatchContext(b, t);
    return {
      nBlocks: this.blocks.length,
      embed: (ids) => this.tokenEmbd.forward(ids).add(ctx.rows(this.positionEmbd.weight)),
      block: (i, x) => this.blocks.at(i).forward(x, i, ctx, this.ones),
      head: (x) => this.head(x),
    };
  }

  /** Which parameters the embedding and the head read (the head: the token embedding's weight when tied). */
  pieceParameters(): PieceParameters {
    return { embed: ["token_embd.weight", "position_embd.weight"], head: [...this.outputNorm.parameters().keys()].map((n) => `output_norm.${n}`).concat(this.output ? ["output.weight"] : ["token_embd.weight"]) };
  }

  /** Logits (R, vocab) of the positions `rows` (R,) i32: only those rows reach the output norm and head. */
  logitsAt(ids: Tensor, ctx: AttentionContext, rows: Tensor): Tensor {
    return noGrad(() => this.head(this.hidden(ids, ctx).gather(0, rows)));
  }

  /** The last block's output (T, dim). */
  private hidden(ids: Tensor, ctx: AttentionContext): Tensor {
    let x = this.tokenEmbd.forward(ids).add(ctx.rows(this.positionEmbd.weight)); // (T, dim)
    let i = 0;
    for (const block of this.blocks) x = block.forward(x, i++, ctx, this.ones);
    return x;
  }

  /** Output norm and head: (R, dim) -> (R, vocab). */
  private head(x: Tensor): Tensor {
    x = layerNorm(this.outputNorm, x, this.ones);
    return this.output ? this.output.forward(x) : matmul(x, this.tokenEmbd.weight.transpose());
  }
}
