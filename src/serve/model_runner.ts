// model_runner.ts: runs one engine step: a SchedulerOutput in, one sampled token per request that
// reached the end of its tokens out. It owns the model (a CausalTransformer of src/models), one paged K
// and V cache per layer, the runner-side request state (runner_batch.ts), one ragged forward over all
// scheduled tokens, and per-request sampling. It never chooses what runs (the scheduler does).
//
// Speed: a step is captured with jit once per (token bucket, sequence bucket) and replayed after that:
// no graph building, scheduling or compiling per step, just the launches. Token counts are padded up to
// a bucket (runner_batch.ts; padding tokens have position -1 and slot -1); steps with more than
// maxJitTokens tokens (long prompt chunks) run eagerly, where graph building is small next to the work.
// Only the rows that are sampled reach the output head (CausalTransformer.logitsAt); their logits are
// read back once per step.

import type { Backend, Tensor } from "../index.js";
import { jit, tensor } from "../index.js";
import { Module } from "../nn/index.js";
import type { CausalTransformer } from "../models/language_model.js";
import type { SampleResult, SamplingParams } from "../models/sampling/index.js";
import { createSampler } from "../models/sampling/index.js";
import type { JitFunction } from "../tensor/jit.js";
import { itemsize } from "../core/dtype.js";
import type { CompactionPlan } from "./block_pool.js";
import type { KvCaches, KvMemoryOptions, KvSizing } from "./kv_memory.js";
import { allocateKvCaches, sizeKvCache } from "./kv_memory.js";
import { PagedContext } from "./paged_context.js";
import type { HostBatch } from "./runner_batch.js";
import { RunnerState, tokenBucket } from "./runner_batch.js";
import type { ModelRunnerOutput, SchedulerOutput } from "./types.js";
import type { SpecSequence, SpeculativeConfig, SpeculativeStats } from "./speculative/speculative_decoder.js";
import { SpeculativeDecoder } from "./speculative/speculative_decoder.js";

export interface ModelRunnerOptions extends KvMemoryOptions {
  /** Tokens per KV block. Default 16. */
  readonly blockSize?: number;
  /** Most tokens of one request (prompt + output); default the model's context length. */
  readonly maxModelLen?: number;
  /** Most requests running at once (sizes the KV cache by default). Default 64. */
  readonly maxNumSeqs?: number;
  /** Steps with up to this many tokens are captured and replayed; longer ones run eagerly. Default 256. */
  readonly maxJitTokens?: number;
  /**
   * Called with every batch before it runs (warmup's too), and awaited: tensor-parallel serving sends it to
   * the other ranks (step_messages.ts), which run the same batch on their shards (ModelRunner.runBatch).
   */
  readonly onBatch?: (batch: HostBatch, runner: ModelRunner) => Promise<void>;
  /** Speculative decoding (docs/speculative.md): a drafter proposes tokens, each step verifies them. Default off. */
  readonly speculative?: SpeculativeConfig;
}

/** ModelRunnerOutput plus each sample's log-probabilities (plain data too). */
export interface RunnerOutput extends ModelRunnerOutput {
  readonly samples: Readonly<Record<string, readonly SampleResult[]>>;
}

type StepFn = (ids: Tensor, positions: Tensor, slots: Tensor, tokenSeq: Tensor, blockTables: Tensor, sampleRows: Tensor) => Tensor;

const f32 = (d: ArrayLike<number>): Float32Array => (d instanceof Float32Array ? d : Float32Array.from(d));

function weightsBytes(model: CausalTransformer): number {
  if (!(model instanceof Module)) return 0;
  let n = 0;
  for (const t of model.parameters().values()) n += t.numel * itemsize(t.dtype);
  return n;
}

export class ModelRunner {
  readonly blockSize: number;
  readonly maxModelLen: number;
  readonly maxJitTokens: number;
  readonly backend: Backend;
  private readonly state: RunnerState;
  private readonly steps = new Map<string, JitFunction<Tensor[]>>();
  private readonly stepFn: StepFn;
  private readonly onBatch: ModelRunnerOptions["onBatch"];
  private readonly spec: SpeculativeDecoder | undefined;
  /** Tokens computed and steps run since start (for throughput reports). */
  numSteps = 0;
  numTokens = 0;

  private constructor(readonly model: CausalTransformer, private kvSizing: KvSizing, private kvCaches: KvCaches, opts: ModelRunnerOptions, spec?: SpeculativeDecoder) {
    this.backend = model.backend;
    this.spec = spec;
    this.blockSize = kvSizing.blockSize;
    this.maxModelLen = opts.maxModelLen ?? model.cacheShape.maxSeq;
    this.maxJitTokens = opts.maxJitTokens ?? 256;
    this.onBatch = opts.onBatch;
    const maxBlocksPerSeq = Math.ceil(this.maxModelLen / this.blockSize);
    // NOTE: a request resumed after a preemption has drawn one token per output token so far.
    this.state = new RunnerState(this.blockSize, maxBlocksPerSeq, (p, draws) => createSampler((p ?? {}) as SamplingParams, draws));
    this.stepFn = (ids, positions, slots, tokenSeq, blockTables, sampleRows) => {
      // NOTE: this.kvCaches, read when a step is built: resizeKv replaces the caches.
      const ctx = new PagedContext(model.cacheShape, this.kvCaches, { positions, slots, tokenSeq, blockTables }, this.blockSize);
      return model.logitsAt(ids, ctx, sampleRows);
    };
  }

  /** Size and allocate the KV cache for `model`, then build the runner. */
  static async create(model: CausalTransformer, opts: ModelRunnerOptions = {}): Promise<ModelRunner> {
    const shape = model.cacheShape;
    const maxModelLen = opts.maxModelLen ?? shape.maxSeq;
    if (!(Number.isInteger(maxModelLen) && maxModelLen >= 1 && maxModelLen <= shape.maxSeq)) {
      throw new Error(`model runner: maxModelLen must be an integer in [1, ${shape.maxSeq}] (the model's context), got ${maxModelLen}`);
    }
    const maxJit = opts.maxJitTokens ?? 256;
    if (!(Number.isInteger(maxJit) && maxJit >= 1)) throw new Error(`model runner: maxJitTokens must be a positive integer, got ${maxJit}`);
    const blockSize = opts.blockSize ?? 16;
    const dtype = model.dtype; // K and V are stored in the model's activation dtype
    const rowSize = shape.kvHeads * shape.headDim;
    // NOTE: the reference kv_write returns a new cache instead of writing the persistent one, so a
    // backend without the in-place routine would silently lose every step's K/V.
    if (!model.backend.supportsRoutine("kv_write", { numSlots: blockSize, rowSize, rows: 1, dtype })) {
      throw new Error(`model runner: the paged KV cache needs the in-place kv_write routine, which ${model.backend.name} lacks for ${dtype}`);
    }
    const perSeq = Math.ceil(maxModelLen / blockSize);
    const sizing = sizeKvCache({
      ...opts, backend: model.backend, shape, dtype, blockSize, weightsBytes: weightsBytes(model),
      useful: (opts.maxNumSeqs ?? 64) * perSeq, need: perSeq,
    });
    let spec: SpeculativeDecoder | undefined;
    if (opts.speculative) {
      // NOTE: the tensor-parallel step message carries one sampled row per sequence.
      if (opts.onBatch) throw new Error("model runner: speculative decoding with tensor-parallel serving is not supported yet");
      spec = new SpeculativeDecoder({ ...opts.speculative, drafter: await opts.speculative.drafter(model) });
    }
    const caches = await allocateKvCaches(model.backend, shape, sizing.numBlocks, blockSize, dtype);
    return new ModelRunner(model, sizing, caches, { ...opts, maxModelLen, blockSize }, spec);
  }

  /** Block-table columns per sequence (a batch's blockTables is (seqBucket, this)). */
  get maxBlocksPerSeq(): number {
    return this.state.maxBlocksPerSeq;
  }

  get numBlocks(): number {
    return this.kvSizing.numBlocks;
  }

  get sizing(): KvSizing {
    return this.kvSizing;
  }

  /** Per layer K and V caches (replaced by resizeKv: do not keep them across steps). */
  get caches(): KvCaches {
    return this.kvCaches;
  }

  /** Bytes the K and V caches take on the device. */
  get kvBytes(): number {
    return this.kvSizing.numBlocks * this.kvSizing.bytesPerBlock;
  }

  /**
   * Give the KV cache plan.numBlocks blocks, renumbered as the block pool planned (planCompaction): each
   * layer's K and V are gathered through the plan's source rows into a new buffer (a graph op, so every
   * backend does it on the device), then the old buffers are freed. Run it between steps only. The
   * request tables are renumbered with the plan; the captured steps are dropped (they hold the old
   * buffers and sizes) and are captured again on first use. NOTE: every new buffer is made before any
   * old one is freed, so a failure leaves the runner as it was; the peak is old + new bytes.
   * `holders`: the requests the KV manager holds blocks for (see RunnerState.remapBlocks).
   */
  async resizeKv(plan: CompactionPlan, holders: ReadonlySet<string>): Promise<void> {
    if (this.onBatch) throw new Error("model runner: resizing the KV cache of a tensor-parallel runner is not supported yet (every rank holds its own shard of it)");
    if (plan.fromBlocks !== this.numBlocks) throw new Error(`model runner: a KV compaction planned for ${plan.fromBlocks} blocks, the runner has ${this.numBlocks}`);
    const bs = this.blockSize;
    const rows = new Int32Array(plan.numBlocks * bs);
    for (let n = 0; n < plan.numBlocks; n++) {
      // NOTE: a block with no source is free: kv_write fills its rows before attention reads them.
      const from = Math.max(0, plan.source[n]!) * bs;
      for (let p = 0; p < bs; p++) rows[n * bs + p] = from + p;
    }
    const index = tensor(rows, { backend: this.backend, dtype: "i32", shape: [rows.length] });
    const made: Tensor[] = [];
    try {
      for (const old of [...this.kvCaches.k, ...this.kvCaches.v]) made.push(await old.gather(0, index).realize());
    } catch (err) {
      for (const t of made) t.dispose();
      throw err;
    } finally {
      index.dispose();
    }
    const L = this.kvCaches.k.length;
    for (const s of this.steps.values()) s.dispose();
    this.steps.clear();
    for (const t of [...this.kvCaches.k, ...this.kvCaches.v]) t.dispose();
    this.kvCaches = { k: made.slice(0, L), v: made.slice(L) };
    this.kvSizing = { ...this.kvSizing, numBlocks: plan.numBlocks, reason: "resized at run time" };
    this.state.remapBlocks(plan.mapping, holders);
  }

  /** A request's block table as the runner holds it (undefined if it holds none). */
  blockIdsOf(reqId: string): readonly number[] | undefined {
    return this.state.blockIds(reqId);
  }

  /** Requests the runner holds state for. */
  get numRequests(): number {
    return this.state.size;
  }

  /** Captured step shapes so far (token bucket x sequence bucket). */
  get capturedBuckets(): string[] {
    return [...this.steps.keys()];
  }

  /**
   * Capture the decode-shaped steps (n tokens of n requests, n a power of two up to maxNumSeqs) before
   * the first request, so no client waits for a capture. Each runs once on padding only: nothing is
   * written to the cache and nothing is sampled.
   */
  async warmup(maxNumSeqs: number): Promise<void> {
    const M = this.state.maxBlocksPerSeq;
    // NOTE: every (token bucket, sequence bucket) pair a step can take, not only decode's (n, n): a
    // burst of new prompts is a prefill step of many tokens over many sequences, and capturing its
    // shape on first use delayed those requests' first tokens by the capture.
    const tokenBuckets = [...new Set(Array.from({ length: this.maxJitTokens }, (_, i) => tokenBucket(i + 1, this.maxJitTokens)))];
    for (let s = 1; s <= Math.min(maxNumSeqs, this.maxJitTokens); s *= 2) {
      for (const t of tokenBuckets.filter((b) => b >= s)) {
        const pad = (n: number) => new Int32Array(n).fill(-1);
        await this.forward({
          numTokens: 0, tokenBucket: t, seqBucket: s, ids: pad(t), positions: pad(t), slots: pad(t), tokenSeq: new Int32Array(t),
          blockTables: new Int32Array(s * M), sampleRows: pad(s), sampled: [],
        });
      }
    }
    await this.warmDecodeSteps(maxNumSeqs);
  }

  /**
   * Runs each decode shape (s sequences, one token each) several times on real positions, discarding the
   * results. NOTE: capture compiles the kernels, but on cpu they are JavaScript and WebAssembly that V8
   * optimizes only once they have run hot, and the padding-only capture steps skip attention's loops.
   * Measured on stories260K: the first benchmark at concurrency 32 after start ran at half the speed of
   * the third; with this at 3/4 (2.6k -> 3.1k tokens/s) for 0.6 s more start-up. Warming the mixed
   * prefill shapes as well cost 5 s and bought nothing. Nothing is written to the KV cache (every slot
   * is -1); attention reads block 0, whatever it holds.
   */
  private async warmDecodeSteps(maxNumSeqs: number, reps = 8): Promise<void> {
    const M = this.state.maxBlocksPerSeq;
    const pos = Math.min(this.maxModelLen - 1, 2 * this.blockSize - 1);
    for (let s = 1; s <= Math.min(maxNumSeqs, this.maxJitTokens); s *= 2) {
      const t = tokenBucket(s, this.maxJitTokens);
      const batch = {
        numTokens: s, tokenBucket: t, seqBucket: s, ids: new Int32Array(t), positions: new Int32Array(t).fill(-1).fill(pos, 0, s),
        slots: new Int32Array(t).fill(-1), tokenSeq: Int32Array.from({ length: t }, (_, i) => (i < s ? i : 0)),
        blockTables: new Int32Array(s * M), sampleRows: Int32Array.from({ length: s }, (_, i) => i), sampled: [],
      };
      for (let i = 0; i < reps; i++) await this.forward(batch);
    }
  }

  /** Speculative decoding's counters since start; undefined when it is off. */
  specStats(): SpeculativeStats | undefined {
    return this.spec?.stats();
  }

  /**
   * One step: update state from the diffs, run every scheduled token, sample those at their end.
   * With speculative decoding a request's scheduled draft tokens are verified (its rejected positions
   * rolled back), and the drafter proposes the next step's.
   */
  async execute(out: SchedulerOutput): Promise<RunnerOutput> {
    this.state.update(out);
    if (this.spec) for (const id of [...out.finishedReqIds, ...out.preemptedReqIds]) this.spec.drop(id);
    if (out.totalNumScheduledTokens === 0) return { sampledTokenIds: {}, samples: {} };
    const batch = this.state.flatten(out, this.maxJitTokens);
    const logits = await this.forward(batch);
    this.numSteps++;
    this.numTokens += batch.numTokens;
    const vocab = this.model.config.vocabSize;
    const sampledTokenIds: Record<string, number[]> = {};
    const samples: Record<string, SampleResult[]> = {};
    const next: SpecSequence[] = [];
    let at = 0;
    batch.sampled.forEach((r, i) => {
      const n = batch.numRows?.[i] ?? 1;
      const row = logits.subarray(at * vocab, (at + n) * vocab);
      at += n;
      if (this.spec && r.speculative) {
        const draft = out.scheduledSpecTokens?.[r.reqId] ?? [];
        const s = this.spec.verify(r, row, vocab, draft, r.tokens.slice(r.numPromptTokens));
        r.numComputed -= draft.length + 1 - s.length; // roll back the rejected draft positions
        sampledTokenIds[r.reqId] = s.map((x) => x.id);
        samples[r.reqId] = s;
        next.push({ reqId: r.reqId, tokens: [...r.tokens, ...sampledTokenIds[r.reqId]!], numPromptTokens: r.numPromptTokens, sampler: r.sampler });
        return;
      }
      const p = r.sampler.params;
      // NOTE: penalties look at the generated tokens only (OpenAI's and vLLM's presence/frequency semantics).
      const penalised = p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
      const s = r.sampler.sample(row, penalised ? r.tokens.slice(r.numPromptTokens) : undefined);
      sampledTokenIds[r.reqId] = [s.id];
      samples[r.reqId] = [s];
    });
    if (!this.spec) return { sampledTokenIds, samples };
    return { sampledTokenIds, samples, draftTokenIds: await this.spec.propose(next) };
  }

  /**
   * Runs a batch another rank flattened (tensor-parallel serving's workers): the same step as that rank's,
   * on this rank's shards; the logits are the sampled rows' (every rank gets them whole).
   */
  runBatch(b: HostBatch): Promise<Float32Array> {
    if (b.blockTables.length !== b.seqBucket * this.maxBlocksPerSeq) {
      throw new Error(`model runner: a batch of ${b.seqBucket} sequences has ${b.blockTables.length} block-table entries, this runner takes ${this.maxBlocksPerSeq} per sequence`);
    }
    return this.forward(b);
  }

  /** Upload the batch, run the (captured) step, read the sampled rows' logits. */
  private async forward(b: HostBatch): Promise<Float32Array> {
    await this.onBatch?.(b, this);
    const i32 = (data: Int32Array, shape: readonly number[]) => tensor(data, { backend: this.backend, dtype: "i32", shape });
    const inputs = [
      i32(b.ids, [b.tokenBucket]), i32(b.positions, [b.tokenBucket]), i32(b.slots, [b.tokenBucket]), i32(b.tokenSeq, [b.tokenBucket]),
      i32(b.blockTables, [b.seqBucket, this.state.maxBlocksPerSeq]), i32(b.sampleRows, [b.sampleRows.length]),
    ] as const;
    if (b.tokenBucket > this.maxJitTokens) {
      const logits = this.stepFn(...inputs);
      const data = await logits.data();
      logits.dispose();
      return f32(data);
    }
    const key = `${b.tokenBucket}x${b.seqBucket}` + (b.sampleRows.length === b.seqBucket ? "" : `r${b.sampleRows.length}`);
    let step = this.steps.get(key);
    if (!step) this.steps.set(key, (step = jit((...t: Tensor[]) => this.stepFn(...(t as unknown as Parameters<StepFn>)))));
    // NOTE: the logits are the jit's own buffer, overwritten by the next replay: read them now.
    const [logits] = (await step(...inputs)) as [Tensor];
    return f32(await logits.data());
  }

  /** Free the captured steps' buffers and the KV caches. */
  dispose(): void {
    for (const s of this.steps.values()) s.dispose();
    this.steps.clear();
    for (const t of [...this.kvCaches.k, ...this.kvCaches.v]) t.dispose();
    this.spec?.dispose();
  }
}
