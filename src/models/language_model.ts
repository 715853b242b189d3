// language_model.ts: a model as the sampler and the CLI see it: prefill a prompt, then decode one
// token at a time, each call returning the logits of the last position. CachedDecoder implements it
// for any CausalTransformer (llama.ts, gpt2.ts) with the contiguous KV cache of kv_cache.ts, which
// every pass writes in place:
//   - prefill: one forward over the whole prompt, jit-captured per prompt length (prefill_steps.ts keeps
//     the last few), whose inputs are the ids and their positions;
//   - decode: a jit-captured step whose inputs are the token id and its position (i32), so after the
//     first step each token replays the same launches: no graph, no scheduling, no compiling.
// Only the last position's logits are computed and read back. Sampling and stopping are the
// caller's (generate.ts runs the loop).

import type { Backend, DType, Tensor } from "../index.js";
import { jit, tensor } from "../index.js";
import type { AttentionContext, CacheShape, KvCache } from "./kv_cache.js";
import { allocateCache, CacheContext } from "./kv_cache.js";
import { Gpt2 } from "./gpt2.js";
import { Llama } from "./llama.js";
import type { LlamaOptions } from "./llama.js";
import type { LoadedModel, ModelConfig } from "./types.js";
import { checkModelFits } from "./fit_check.js";
import { PrefillSteps } from "./prefill_steps.js";
import { areRoutinesEnabled, currentMatmulPolicy } from "../tensor/context.js";

export interface LanguageModel {
  readonly config: ModelConfig;
  readonly backend: Backend;
  /** Run the prompt from the current position (0 after reset); the logits of its last token. */
  forwardPrefill(ids: number[]): Promise<Float32Array>;
  /** Feed one token at the current position; the logits for the next one. */
  decodeStep(id: number): Promise<Float32Array>;
  /** Forget the cached tokens (position back to 0). */
  reset(): void;
  /** How many tokens are in the cache. */
  readonly position: number;
  /** How many it can hold (the config's maxSeqLen unless the model was made with less). */
  readonly contextLength: number;
}

/** What CachedDecoder needs of a model. */
export interface CausalTransformer {
  readonly config: ModelConfig;
  readonly backend: Backend;
  readonly dtype: DType;
  readonly cacheShape: CacheShape;
  /** Logits for ids (T,) i32: (T, vocab), or (1, vocab) for the last position when lastOnly. */
  logits(ids: Tensor, ctx: AttentionContext, lastOnly?: boolean): Tensor;
  /**
   * Logits (R, vocab) of the positions `rows` (R,) i32 of ids (T,): only those rows reach the final norm
   * and the output head. A row outside [0, T) gives logits of a zero hidden state (gather reads 0 there).
   */
  logitsAt(ids: Tensor, ctx: AttentionContext, rows: Tensor): Tensor;
}

export class CachedDecoder implements LanguageModel {
  private cache: KvCache | undefined;
  private pos = 0;
  private step: ReturnType<typeof jit<[Tensor, Tensor]>> | undefined;
  private readonly prefills = new PrefillSteps();

  constructor(readonly model: CausalTransformer) {}

  get config(): ModelConfig { return this.model.config; }
  get backend(): Backend { return this.model.backend; }
  get position(): number { return this.pos; }
  get contextLength(): number { return this.model.cacheShape.maxSeq; }
  /** Launches per decode step (0 before the first). */
  get launchesPerStep(): number { return this.step?.launches ?? 0; }

  async forwardPrefill(ids: number[]): Promise<Float32Array> {
    const { maxSeq } = this.model.cacheShape;
    if (ids.length === 0) throw new Error("forwardPrefill: the prompt is empty (give at least one token, e.g. BOS)");
    if (this.pos + ids.length > maxSeq) {
      const after = this.pos > 0 ? ` after the ${this.pos} tokens already in it` : "";
      throw new Error(`forwardPrefill: a prompt of ${ids.length} tokens does not fit the context of ${maxSeq} tokens${after}`);
    }
    ids.forEach((id) => this.checkId("forwardPrefill", id));
    const start = this.pos;
    const i32 = (data: Int32Array) => tensor(data, { backend: this.backend, dtype: "i32" });
    const cache = this.storage();
    const tokens = i32(Int32Array.from(ids));
    const positions = i32(Int32Array.from(ids, (_, i) => start + i));
    let logits: ArrayLike<number>;
    if (!areRoutinesEnabled() || currentMatmulPolicy()) {
      // NOTE: a capture runs after an await, outside the caller's scope: a prefill inside withRoutines or
      // autocast runs eagerly, with the scope it was called in.
      logits = await this.model.logits(tokens, new CacheContext(cache, positions, (table) => table.slice(0, start, start + ids.length)), true).data();
    } else {
      // NOTE: the rotary rows are gathered at the positions (an input), not sliced at `start`, so one capture
      // serves a prompt of this length at any position; the cache is captured as it is, as in decodeStep.
      const step = this.prefills.get(ids.length, () =>
        jit((t: Tensor, p: Tensor) => this.model.logits(t, new CacheContext(cache, p, (table) => table.gather(0, p)), true)));
      logits = await (await step(tokens, positions))[0]!.data();
    }
    this.pos += ids.length;
    return f32(logits);
  }

  async decodeStep(id: number): Promise<Float32Array> {
    const { maxSeq } = this.model.cacheShape;
    if (this.pos === 0) throw new Error("decodeStep: nothing to continue from (call forwardPrefill first)");
    if (this.pos >= maxSeq) throw new Error(`decodeStep: the context of ${maxSeq} tokens is full`);
    this.checkId("decodeStep", id);
    const cache = this.storage();
    // NOTE: the cache is captured as it is (state written in place); only the id and the position change.
    this.step ??= jit((token: Tensor, pos: Tensor) => this.model.logits(token, new CacheContext(cache, pos, (table) => table.gather(0, pos)), true));
    const i32 = (x: number) => tensor(Int32Array.of(x), { backend: this.backend, dtype: "i32" });
    const [logits] = await this.step(i32(id), i32(this.pos));
    this.pos++;
    return f32(await logits!.data());
  }

  /** The cache, allocated on first use and then kept: a captured decode step writes into these buffers. */
  private storage(): KvCache {
    return (this.cache ??= allocateCache(this.model.cacheShape, this.backend, this.model.dtype));
  }

  /** Start over; rows past the position are never read, so the cache needs no clearing. */
  reset(): void {
    this.pos = 0;
  }

  /** Free the cache and the captured decode step; the model can still be used (both are made again). */
  dispose(): void {
    this.step?.dispose();
    this.step = undefined;
    this.prefills.dispose();
    for (const t of [...(this.cache?.k ?? []), ...(this.cache?.v ?? [])]) t.dispose();
    this.cache = undefined;
    this.pos = 0;
  }

  private checkId(what: string, id: number): void {
    const vocab = this.config.vocabSize;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`${what}: token id ${id} is not in the vocabulary of ${vocab} tokens`);
  }
}

const f32 = (d: ArrayLike<number>): Float32Array => (d instanceof Float32Array ? d : Float32Array.from(d));

/** The model of a LoadedModel's architecture with its weights on `backend` (f32 unless dtype says), ready to generate. Llama-only options are ignored for GPT-2. */
export function fromLoaded(loaded: LoadedModel, backend: Backend, opts: LlamaOptions = {}): CachedDecoder {
  checkModelFits(loaded, backend);
  const arch = loaded.config.arch;
  switch (arch) {
    case "llama": return new CachedDecoder(Llama.fromLoaded(loaded, backend, opts));
    case "gpt2": return new CachedDecoder(Gpt2.fromLoaded(loaded, backend, opts));
    default: {
      const never: never = arch;
      throw new Error(`${loaded.source}: unknown architecture ${String(never)}`);
    }
  }
}
