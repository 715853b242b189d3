// engine.ts: the continuous-batching engine behind the EngineClient interface, in process. Each served
// model gets its own engine core (scheduler + model runner + paged KV cache, engine_core.ts); a
// request is checked and encoded (served_model.ts), queued with its tier and tenant, and its sampled
// tokens become chunks (output_builder.ts: detokenizer, stop strings, logprobs, usage). It owns
// admission (model lookup, checks, queue limit), the per-request streams, cancellation and the
// engine's life (loading, ready, draining, failed), and adding or removing a model's core while it
// serves (addModel, removeModel; which model a request's name means is a ModelRouter's choice, e.g.
// model_registry.ts); not scheduling, the forward pass or the HTTP side.

import type { ChatTemplate } from "../models/chat_template.js";
import { compileChatTemplate } from "../models/chat_template.js";
import { CachedDecoder } from "../models/language_model.js";
import type { SamplingParams } from "../models/sampling/index.js";
import { SamplingParamError, validateSamplingParams } from "../models/sampling/index.js";
import { AsyncQueue } from "./async_queue.js";
import type { EngineClient, EngineHealth, EngineStats, EngineStatus, GenerateChunk, GenerateRequest, ModelCard } from "./engine_client.js";
import { EngineError } from "./engine_client.js";
import type { RequestSink, StepOutput } from "./engine_core.js";
import { EngineCore } from "./engine_core.js";
import type { AddModelOptions, EngineOptions, ModelRouter, RemoveModelOptions } from "./engine_options.js";
import type { KvResizeReport } from "./kv_compaction.js";
import { resizeKvCache } from "./kv_compaction.js";
import { ModelRunner } from "./model_runner.js";
import { OutputBuilder } from "./output_builder.js";
import { Scheduler } from "./scheduler.js";
import { speculativeStatsOf } from "./speculative/speculative_decoder.js";
import type { ServedModel } from "./served_model.js";
import { encodePrompt, modelCard } from "./served_model.js";

export type { AddModelOptions, EngineOptions, ModelRouter, RemoveModelOptions } from "./engine_options.js";

interface Entry {
  readonly served: ServedModel;
  readonly template: ChatTemplate;
  /** Replaced when the KV cache is resized (kvTokens). */
  card: ModelCard;
  readonly core: EngineCore;
  /** Requests in flight on this model, and who waits for them to end (removeModel). */
  inflight: number;
  idleWaiters: (() => void)[];
}

interface Job {
  readonly reqId: string;
  readonly entry: Entry;
  readonly out: OutputBuilder;
  readonly queue: AsyncQueue<GenerateChunk>;
  done: boolean;
}

const invalid = (message: string, param: string) => new EngineError({ code: "invalid_request", message, param });

export class Engine implements EngineClient {
  private status: EngineStatus = "loading";
  private closed = false;
  private failure: string | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly jobs = new Map<string, Job>();
  private readonly loaded: Promise<void>;
  private idleWaiters: (() => void)[] = [];
  private readonly maxWaiting: number;
  private readonly maxNumSeqs: number;
  private readonly retryAfterS: number;
  private router: ModelRouter | undefined;
  /** Ids being added (addModel), so two loads of one id conflict before either finishes. */
  private readonly adding = new Set<string>();

  /** The models may still be loading (a promise): health() says "loading" until their caches are allocated. */
  constructor(models: readonly ServedModel[] | Promise<readonly ServedModel[]>, private readonly opts: EngineOptions = {}) {
    this.maxWaiting = opts.maxWaiting ?? 256;
    this.maxNumSeqs = opts.maxNumSeqs ?? 64;
    this.retryAfterS = opts.retryAfterS ?? 1;
    if (!(Number.isSafeInteger(this.maxWaiting) && this.maxWaiting >= 0)) throw new Error(`Engine: maxWaiting must be an integer >= 0, got ${this.maxWaiting}`);
    this.loaded = this.load(models);
    // NOTE: a load failure is reported by health() and ready(); it must not also crash the process as an unhandled rejection.
    this.loaded.catch(() => {});
  }

  private async load(models: readonly ServedModel[] | Promise<readonly ServedModel[]>): Promise<void> {
    try {
      const now = Math.floor(Date.now() / 1000);
      for (const m of await models) {
        if (this.entries.has(m.id)) throw new Error(`Engine: two models named '${m.id}'`);
        this.entries.set(m.id, await this.makeEntry(m, now));
      }
      if (this.status === "loading") this.status = "ready";
    } catch (err) {
      this.status = "failed";
      this.failure = `loading the models failed: ${(err as Error).message}`;
      throw err;
    }
  }

  private async makeEntry(m: ServedModel, now: number, add: AddModelOptions = {}): Promise<Entry> {
    const template = compileChatTemplate(m.chatTemplate, `model '${m.id}' chat template`);
    const core = await this.makeCore(m, add);
    return {
      served: m, template, card: {
        ...modelCard(m, now), maxModelLen: core.runner.maxModelLen, maxRequests: this.maxNumSeqs + this.maxWaiting,
        maxRunning: this.maxNumSeqs, kvTokens: core.runner.numBlocks * core.runner.blockSize,
      },
      core, inflight: 0, idleWaiters: [],
    };
  }

  private async makeCore(m: ServedModel, add: AddModelOptions): Promise<EngineCore> {
    if (!(m.model instanceof CachedDecoder)) throw new Error(`Engine: model '${m.id}' is not a transformer of src/models (fromLoaded builds one)`);
    const o = { ...this.opts, ...(add.numBlocks === undefined ? {} : { numBlocks: add.numBlocks }) };
    const runner = await ModelRunner.create(m.model.model, { ...o, maxModelLen: o.maxModelLen ?? m.model.contextLength });
    if (o.warmup) await runner.warmup(this.maxNumSeqs);
    const scheduler = new Scheduler({
      maxNumBatchedTokens: o.maxNumBatchedTokens ?? 256,
      maxNumSeqs: this.maxNumSeqs,
      maxModelLen: runner.maxModelLen,
      ...(o.maxPrefillChunk === undefined ? {} : { maxPrefillChunk: o.maxPrefillChunk }),
      cache: { numBlocks: runner.numBlocks, blockSize: runner.blockSize, enablePrefixCaching: o.enablePrefixCaching ?? true, namespace: m.id },
      ...(o.tiers === undefined ? {} : { tiers: o.tiers }),
      ...(o.defaultTier === undefined ? {} : { defaultTier: o.defaultTier }),
      ...(o.prefillFirst === undefined ? {} : { prefillFirst: o.prefillFirst }),
    });
    return new EngineCore(scheduler, runner);
  }

  /** Resolves once every model's runner is ready; rejects with the load error. */
  ready(): Promise<void> {
    return this.loaded;
  }

  /** Route every request's model name through `router` from now on (undefined: names are served ids). */
  setRouter(router: ModelRouter | undefined): void {
    this.router = router;
  }

  /**
   * Serve one more model while the others keep serving (hot load): its core gets its own KV cache of
   * opts.numBlocks blocks. Throws if the id is taken (or being added) or the engine is not ready.
   */
  async addModel(m: ServedModel, opts: AddModelOptions = {}): Promise<ModelCard> {
    await this.loaded;
    if (this.status !== "ready") throw new Error(`Engine: cannot add model '${m.id}' while the engine is ${this.status}`);
    if (this.entries.has(m.id) || this.adding.has(m.id)) throw new Error(`Engine: a model named '${m.id}' is already served`);
    this.adding.add(m.id);
    try {
      const entry = await this.makeEntry(m, Math.floor(Date.now() / 1000), opts);
      this.entries.set(m.id, entry);
      return entry.card;
    } finally {
      this.adding.delete(m.id);
    }
  }

  /**
   * Stop serving a model: new requests for it are refused at once (model_not_found), the ones in flight
   * finish (or are aborted after opts.abortAfterMs), then its loop stops and its KV cache is freed.
   * The model's weights stay with the caller. Throws EngineError model_not_found for an unknown id.
   */
  async removeModel(id: string, opts: RemoveModelOptions = {}): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) throw new EngineError({ code: "model_not_found", param: "model", message: `model '${id}' is not served` });
    this.entries.delete(id);
    if (entry.inflight > 0) {
      const idle = new Promise<void>((resolve) => entry.idleWaiters.push(resolve));
      let timer: NodeJS.Timeout | undefined;
      if (opts.abortAfterMs !== undefined) {
        timer = setTimeout(() => {
          for (const job of [...this.jobs.values()]) if (job.entry === entry) this.cancel(job);
        }, opts.abortAfterMs);
      }
      await idle;
      clearTimeout(timer);
    }
    await entry.core.idle();
    entry.core.runner.dispose();
  }

  /**
   * Give a served model's KV cache numBlocks blocks while it serves: between two of its steps, live
   * blocks move down and the buffers are reallocated at the new size (kv_compaction.ts), so a smaller
   * size returns memory to the device and the same size defragments. Throws EngineError model_not_found
   * for an unknown id, invalid_request when the size does not fit (the message says why; nothing changed).
   */
  async resizeKv(id: string, numBlocks: number): Promise<KvResizeReport> {
    if (this.closed) throw new EngineError({ code: "unavailable", message: `the engine is closed: model '${id}' has no KV cache to resize` });
    const entry = this.entries.get(id);
    if (!entry) throw new EngineError({ code: "model_not_found", param: "model", message: `model '${id}' is not served` });
    const { core } = entry;
    let report: KvResizeReport;
    try {
      report = await core.between(() => resizeKvCache(core, numBlocks));
    } catch (err) {
      throw invalid(`resizing the KV cache of model '${id}' failed: ${(err as Error).message}`, "kvBlocks");
    }
    entry.card = { ...entry.card, kvTokens: core.runner.numBlocks * core.runner.blockSize };
    return report;
  }

  /** The engine core serving a model (tests and benchmarks read its scheduler and runner). */
  core(model: string): EngineCore | undefined {
    return this.entries.get(model)?.core;
  }

  async models(): Promise<readonly ModelCard[]> {
    const cards = [...this.entries.values()].map((e) => e.card);
    for (const [alias, id] of this.router?.aliases() ?? []) {
      const e = this.entries.get(id);
      if (e && !this.entries.has(alias)) cards.push({ ...e.card, id: alias });
    }
    return cards;
  }

  async health(): Promise<EngineHealth> {
    const broken = [...this.entries.values()].find((e) => e.core.failure);
    if (broken) return { status: "failed", message: `model '${broken.card.id}': ${broken.core.failure!.message}` };
    return this.failure === undefined ? { status: this.status } : { status: this.status, message: this.failure };
  }

  async stats(): Promise<EngineStats> {
    let running = 0, waiting = 0, preempted = 0, used = 0, blocks = 0, queried = 0, hits = 0, unused = 0, tail = 0, holes = 0, bytes = 0;
    for (const { core } of this.entries.values()) {
      const s = core.stats();
      running += s.numRunning;
      waiting += s.numWaiting;
      preempted += s.numPreemptedWaiting;
      used += s.numBlocks - s.numFreeBlocks;
      blocks += s.numBlocks;
      queried += s.prefixCacheQueriedTokens;
      hits += s.prefixCacheHitTokens;
      unused += s.numUnusedSlots;
      tail += s.numTailFreeBlocks;
      holes += s.numHoleBlocks;
      bytes += core.runner.kvBytes;
    }
    return {
      running, waiting, preempted, kvCacheUsage: blocks > 0 ? used / blocks : 0, prefixCacheHitRate: queried > 0 ? hits / queried : 0,
      kvBlocks: blocks, kvBytes: bytes, kvUnusedSlots: unused, kvTailFreeBlocks: tail, kvHoleBlocks: holes,
      ...speculativeStatsOf([...this.entries.values()].map((e) => e.core.runner.specStats())),
    };
  }

  async abort(reqId: string): Promise<void> {
    const job = this.jobs.get(reqId);
    if (job) this.cancel(job);
  }

  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateChunk> {
    return this.stream(req, signal);
  }

  /** Refuse new requests, let the ones in flight finish; resolves when none is left. */
  async drain(): Promise<void> {
    if (this.status === "ready" || this.status === "loading") this.status = "draining";
    if (this.jobs.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Abort every request and refuse new ones; resolves when the engine loops have stopped and their memory is freed. */
  async close(): Promise<void> {
    const draining = this.drain();
    for (const job of [...this.jobs.values()]) this.cancel(job);
    await draining;
    if (this.closed) return;
    this.closed = true;
    for (const e of this.entries.values()) {
      await e.core.idle();
      e.core.runner.dispose();
    }
  }

  private async *stream(req: GenerateRequest, signal: AbortSignal | undefined): AsyncGenerator<GenerateChunk> {
    const job = this.admit(req);
    const onAbort = () => this.cancel(job);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal?.aborted) this.cancel(job);
      yield* job.queue;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // NOTE: a reader that stops early (break, a disconnected client) must not leave its request running.
      if (!job.done) this.cancel(job);
    }
  }

  private unavailable(): EngineError {
    const why = this.status === "loading" ? "the models are still loading" : this.status === "draining" ? "the engine is shutting down" : (this.failure ?? "the engine failed");
    return new EngineError({ code: "unavailable", message: why, ...(this.status === "loading" ? { retryAfterS: this.retryAfterS } : {}) });
  }

  /** Check a request, encode it and queue it on its model's core; throws EngineError. */
  private admit(req: GenerateRequest): Job {
    if (this.status !== "ready") throw this.unavailable();
    const id = this.router?.route(req) ?? req.model;
    const entry = this.entries.get(id);
    if (!entry) {
      const via = id === req.model ? "" : ` (routed to '${id}')`;
      throw new EngineError({ code: "model_not_found", param: "model", message: `model '${req.model}'${via} does not exist (served: ${[...this.entries.keys()].join(", ")})` });
    }
    if (this.jobs.has(req.reqId)) throw invalid(`request id '${req.reqId}' is already in flight`, "reqId");
    const { core, served } = entry;
    if (core.failure) throw new EngineError({ code: "unavailable", message: `model '${req.model}' failed: ${core.failure.message}` });
    const tiers = core.scheduler.tiers.tiers;
    if (req.tier !== undefined && !tiers.some((t) => t.name === req.tier)) {
      throw invalid(`unknown tier '${req.tier}' (known: ${tiers.map((t) => t.name).join(", ")})`, "tier");
    }
    const prompt = encodePrompt(served, entry.template, req.prompt, req.maxTokens, req.ignoreEos ?? false);
    const maxTokens = this.fitContext(entry, req, prompt.ids.length, prompt.maxTokens);
    const sampling = resolveSampling(req, served.model.config.vocabSize);
    // NOTE: requests that a free seat will take at the next step do not count as waiting, so a burst
    // into an idle engine fills its seats first (and maxWaiting 0 still serves what can start at once).
    const { numWaiting, numRunning } = core.scheduler;
    const seatsFree = Math.max(0, this.maxNumSeqs - numRunning);
    if (numWaiting >= this.maxWaiting + seatsFree) {
      throw new EngineError({
        code: "queue_full", retryAfterS: this.retryAfterS,
        message: `the queue of model '${req.model}' is full (${numWaiting - seatsFree} requests waiting for a seat, the limit is ${this.maxWaiting}); retry later`,
      });
    }
    let out: OutputBuilder;
    try {
      out = new OutputBuilder(served.tokenizer, {
        promptTokens: prompt.ids.length, maxTokens, logprobs: req.logprobs ?? false,
        continuesText: prompt.ids.some((id) => served.tokenizer.tokenBytes(id).length > 0),
        stopTokenIds: prompt.stopTokenIds, stopStrings: [...(req.stop ?? []), ...prompt.stopStrings],
      });
    } catch (err) {
      throw invalid((err as Error).message, "stop");
    }
    const job: Job = { reqId: req.reqId, entry, out, queue: new AsyncQueue(), done: false };
    try {
      core.add({
        reqId: req.reqId, promptTokenIds: prompt.ids, samplingParams: sampling, maxTokens,
        stopTokenIds: prompt.stopTokenIds,
        ...(req.tier === undefined ? {} : { tier: req.tier }),
        ...(req.tenant === undefined ? {} : { tenant: req.tenant }), ...(req.speculative === false ? { speculative: false } : {}),
      }, this.sink(job));
    } catch (err) {
      throw invalid((err as Error).message, "prompt");
    }
    this.jobs.set(req.reqId, job);
    entry.inflight++;
    return job;
  }

  /**
   * maxTokens within the runner's context, which may be shorter than the model's (maxModelLen):
   * encodePrompt checked against the model's. Throws context_length_exceeded naming the lengths.
   */
  private fitContext(entry: Entry, req: GenerateRequest, promptTokens: number, maxTokens: number): number {
    const limit = entry.card.maxModelLen;
    const asked = req.maxTokens ?? 1;
    if (promptTokens + asked <= limit) return Math.min(maxTokens, limit - promptTokens);
    const param = promptTokens < limit ? "maxTokens" : req.prompt.kind === "chat" ? "messages" : "prompt";
    throw new EngineError({
      code: "context_length_exceeded", param,
      message: `model '${req.model}' is served with a context of ${limit} tokens, but ${promptTokens + asked} were requested (${promptTokens} in the prompt, ${asked} to generate)`,
    });
  }

  /** Where the core delivers a job's outputs: tokens become chunks; the end closes (or fails) its stream. */
  private sink(job: Job): RequestSink {
    return {
      output: ({ output: o, samples }: StepOutput) => {
        if (job.done) return;
        for (let i = 0; i < o.newTokenIds.length; i++) {
          const chunk = job.out.token(o.newTokenIds[i]!, samples[i]);
          if (job.out.finished) {
            // A stop string (or the output's own limit) ended it before the scheduler did: free it now.
            if (!o.finished) job.entry.core.abort(job.reqId);
            return this.finish(job, chunk);
          }
          job.queue.push(chunk);
        }
        if (!o.finished) return;
        switch (o.finishReason) {
          case "stop": case "length": case "abort":
            return this.finish(job, job.out.end(o.finishReason));
          case "timeout":
            return this.fail(job, new EngineError({ code: "queue_timeout", message: o.message ?? `request ${job.reqId} timed out in the queue`, retryAfterS: this.retryAfterS }));
          default:
            return this.fail(job, new EngineError({ code: "internal", message: `model '${job.entry.card.id}' failed on request '${job.reqId}': ${o.message ?? "unknown error"}` }));
        }
      },
      fail: (err: Error) => this.fail(job, new EngineError({ code: "internal", message: `model '${job.entry.card.id}' failed on request '${job.reqId}': ${err.message}` })),
    };
  }

  private cancel(job: Job): void {
    if (job.done) return;
    job.entry.core.abort(job.reqId);
    this.finish(job, job.out.end("abort"));
  }

  private finish(job: Job, last: GenerateChunk): void {
    job.done = true;
    job.queue.push(last);
    job.queue.close();
    this.forget(job);
  }

  private fail(job: Job, err: EngineError): void {
    job.done = true;
    job.queue.fail(err);
    this.forget(job);
  }

  private forget(job: Job): void {
    this.jobs.delete(job.reqId);
    const e = job.entry;
    if (--e.inflight === 0) for (const w of e.idleWaiters.splice(0)) w();
    if (this.jobs.size > 0) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }
}

/**
 * The request's sampling parameters, validated, with the seed fixed now: a request resumed after a
 * preemption makes a new sampler, which must draw from the same stream. EngineError (invalid_request,
 * param "sampling.<field>") for a bad parameter.
 */
function resolveSampling(req: GenerateRequest, vocabSize: number): SamplingParams {
  const bias = req.sampling.logitBias;
  const keys = bias instanceof Map ? [...bias.keys()] : Object.keys(bias ?? {}).map(Number);
  const outside = keys.find((id) => !(id < vocabSize));
  if (outside !== undefined) {
    throw invalid(`logit_bias names token ${outside}, outside model '${req.model}''s vocabulary of ${vocabSize}`, "sampling.logitBias");
  }
  try {
    return { ...req.sampling, seed: validateSamplingParams(req.sampling).seed };
  } catch (err) {
    throw invalid((err as Error).message, err instanceof SamplingParamError ? `sampling.${err.field}` : "sampling");
  }
}
