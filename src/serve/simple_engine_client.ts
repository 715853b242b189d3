// simple_engine_client.ts: an in-process EngineClient that runs ONE request at a time through
// src/models' generate() loop and sampler, the others waiting in a first-come queue of bounded length.
// It is the stepping stone that lets the HTTP server run for real (stories260K end to end) until the
// continuous-batching engine core replaces it behind the same interface. It owns admission (model
// lookup, prompt and parameter checks, queue limit), the FIFO and cancellation; prompts are
// served_model.ts's, output chunks output_builder.ts's. NOTE: tier and tenant are accepted
// and ignored: with one request running at a time there is nothing to schedule.

import type { ChatTemplate } from "../models/chat_template.js";
import { compileChatTemplate } from "../models/chat_template.js";
import { generate } from "../models/generate.js";
import type { SampleResult, Sampler } from "../models/sampling/index.js";
import { SamplingParamError, createSampler } from "../models/sampling/index.js";
import { AsyncQueue } from "./async_queue.js";
import type { EngineClient, EngineHealth, EngineStats, EngineStatus, GenerateChunk, GenerateRequest, ModelCard } from "./engine_client.js";
import { EngineError } from "./engine_client.js";
import { OutputBuilder } from "./output_builder.js";
import type { EncodedPrompt, ServedModel } from "./served_model.js";
import { encodePrompt, modelCard } from "./served_model.js";

export interface SimpleEngineOptions {
  /** Most requests waiting behind the running one; the next gets queue_full. Default 64. */
  readonly maxWaiting?: number;
  /** Seconds a client is told to wait after queue_full or while loading. Default 1. */
  readonly retryAfterS?: number;
}

interface Entry {
  readonly served: ServedModel;
  readonly template: ChatTemplate;
  readonly card: ModelCard;
}

interface Job {
  readonly req: GenerateRequest;
  readonly entry: Entry;
  readonly prompt: EncodedPrompt;
  readonly sampler: Sampler;
  readonly out: OutputBuilder;
  readonly queue: AsyncQueue<GenerateChunk>;
  aborted: boolean;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class SimpleEngineClient implements EngineClient {
  private status: EngineStatus = "loading";
  private failure: string | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly waiting: Job[] = [];
  private running: Job | undefined;
  private readonly jobs = new Map<string, Job>();
  private readonly loaded: Promise<void>;
  private idleWaiters: (() => void)[] = [];
  private readonly maxWaiting: number;
  private readonly retryAfterS: number;

  /** Given as a promise, the models may still be loading: health() says "loading" until they are there. */
  constructor(models: readonly ServedModel[] | Promise<readonly ServedModel[]>, opts: SimpleEngineOptions = {}) {
    this.maxWaiting = opts.maxWaiting ?? 64;
    this.retryAfterS = opts.retryAfterS ?? 1;
    if (!(Number.isSafeInteger(this.maxWaiting) && this.maxWaiting >= 0)) throw new Error(`SimpleEngineClient: maxWaiting must be an integer >= 0, got ${this.maxWaiting}`);
    if (models instanceof Promise) this.loaded = this.load(models);
    else {
      this.register(models);
      this.loaded = Promise.resolve();
    }
    // NOTE: a load failure is reported by health() and ready(); it must not also crash the process as an unhandled rejection.
    this.loaded.catch(() => {});
  }

  private async load(models: Promise<readonly ServedModel[]>): Promise<void> {
    try {
      this.register(await models);
    } catch (err) {
      this.status = "failed";
      this.failure = `loading the models failed: ${(err as Error).message}`;
      throw err;
    }
  }

  private register(models: readonly ServedModel[]): void {
    const now = Math.floor(Date.now() / 1000);
    for (const m of models) {
      if (this.entries.has(m.id)) throw new Error(`SimpleEngineClient: two models named '${m.id}'`);
      this.entries.set(m.id, { served: m, template: compileChatTemplate(m.chatTemplate, `model '${m.id}' chat template`), card: modelCard(m, now) });
    }
    if (this.status === "loading") this.status = "ready";
  }

  /** Resolves once the models are loaded; rejects with the load error. */
  ready(): Promise<void> {
    return this.loaded;
  }

  async models(): Promise<readonly ModelCard[]> {
    return [...this.entries.values()].map((e) => e.card);
  }

  async health(): Promise<EngineHealth> {
    return this.failure === undefined ? { status: this.status } : { status: this.status, message: this.failure };
  }

  async stats(): Promise<EngineStats> {
    return { running: this.running ? 1 : 0, waiting: this.waiting.length };
  }

  async abort(reqId: string): Promise<void> {
    const job = this.jobs.get(reqId);
    if (job) this.cancel(job);
  }

  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateChunk> {
    return this.stream(req, signal);
  }

  /** Refuse new requests, let the queued and running ones finish; resolves when none is left. */
  async drain(): Promise<void> {
    if (this.status === "ready" || this.status === "loading") this.status = "draining";
    if (!this.running && this.waiting.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Abort every request and refuse new ones; resolves when the running one has stopped. */
  async close(): Promise<void> {
    const draining = this.drain();
    for (const job of [...this.waiting, ...(this.running ? [this.running] : [])]) this.cancel(job);
    await draining;
  }

  private async *stream(req: GenerateRequest, signal: AbortSignal | undefined): AsyncGenerator<GenerateChunk> {
    const job = this.admit(req);
    const onAbort = () => this.cancel(job);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal?.aborted) this.cancel(job);
      this.pump();
      yield* job.queue;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // NOTE: a reader that stops early (break, a disconnected client) must not leave its request running.
      if (!job.out.finished) this.cancel(job);
    }
  }

  private unavailable(): EngineError {
    const why = this.status === "loading" ? "the models are still loading" : this.status === "draining" ? "the engine is shutting down" : (this.failure ?? "the engine failed");
    return new EngineError({ code: "unavailable", message: why, ...(this.status === "loading" ? { retryAfterS: this.retryAfterS } : {}) });
  }

  /** Check a request and queue it; throws EngineError. */
  private admit(req: GenerateRequest): Job {
    if (this.status !== "ready") throw this.unavailable();
    const entry = this.entries.get(req.model);
    if (!entry) {
      throw new EngineError({ code: "model_not_found", param: "model", message: `model '${req.model}' does not exist (served: ${[...this.entries.keys()].join(", ")})` });
    }
    if (this.jobs.has(req.reqId)) throw new EngineError({ code: "invalid_request", param: "reqId", message: `request id '${req.reqId}' is already in flight` });
    const prompt = encodePrompt(entry.served, entry.template, req.prompt, req.maxTokens, req.ignoreEos ?? false);
    const sampler = makeSampler(req, entry.served.model.config.vocabSize);
    // NOTE: a request that can start at once never waits, so it is never refused (even with maxWaiting 0).
    if ((this.running || this.waiting.length > 0) && this.waiting.length >= this.maxWaiting) {
      throw new EngineError({
        code: "queue_full", retryAfterS: this.retryAfterS,
        message: `the queue is full (${this.waiting.length} requests waiting behind the running one, the limit is ${this.maxWaiting}); retry later`,
      });
    }
    let out: OutputBuilder;
    try {
      out = new OutputBuilder(entry.served.tokenizer, {
        promptTokens: prompt.ids.length, maxTokens: prompt.maxTokens, logprobs: req.logprobs ?? false,
        stopTokenIds: prompt.stopTokenIds, stopStrings: [...(req.stop ?? []), ...prompt.stopStrings],
      });
    } catch (err) {
      throw new EngineError({ code: "invalid_request", param: "stop", message: (err as Error).message });
    }
    const job: Job = { req, entry, prompt, sampler, out, queue: new AsyncQueue(), aborted: false };
    this.jobs.set(req.reqId, job);
    this.waiting.push(job);
    return job;
  }

  private cancel(job: Job): void {
    if (job.aborted || job.out.finished) return;
    job.aborted = true;
    const at = this.waiting.indexOf(job);
    if (at >= 0) {
      this.waiting.splice(at, 1);
      this.finish(job, job.out.end("abort"));
      this.notifyIdle();
    }
    // NOTE: the running job sees `aborted` after its current step and ends there (run()).
  }

  private finish(job: Job, last: GenerateChunk): void {
    job.queue.push(last);
    job.queue.close();
    this.jobs.delete(job.req.reqId);
  }

  private pump(): void {
    if (this.running) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.running = job;
    void this.run(job).finally(() => {
      this.running = undefined;
      this.notifyIdle();
      this.pump();
    });
  }

  private notifyIdle(): void {
    if (this.running || this.waiting.length > 0) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  private async run(job: Job): Promise<void> {
    const { entry, prompt, sampler, out } = job;
    let last: SampleResult | undefined;
    let stoppedByToken = false;
    try {
      // NOTE: one macrotask turn per token, so the server reads new requests and disconnects while this one runs.
      await yieldToEventLoop();
      if (!job.aborted) {
        const tokens = generate(entry.served.model, prompt.ids, {
          maxTokens: prompt.maxTokens,
          // NOTE: penalties see the generated tokens only (OpenAI's and vLLM's presence/frequency semantics).
          sample: (logits, history) => (last = sampler.sample(logits, history.slice(prompt.ids.length))).id,
          isStop: (id) => (stoppedByToken = out.isStopToken(id)),
        });
        for await (const id of tokens) {
          const chunk = out.token(id, last);
          if (out.finished) return this.finish(job, chunk);
          job.queue.push(chunk);
          await yieldToEventLoop();
          if (job.aborted) break;
        }
      }
      this.finish(job, out.end(job.aborted ? "abort" : stoppedByToken ? "stop" : "length"));
    } catch (err) {
      this.jobs.delete(job.req.reqId);
      job.queue.fail(new EngineError({ code: "internal", message: `model '${entry.card.id}' failed on request '${job.req.reqId}': ${(err as Error).message}` }));
    }
  }
}

/** The request's sampler; EngineError (invalid_request, param "sampling.<field>") for a bad parameter. */
function makeSampler(req: GenerateRequest, vocabSize: number): Sampler {
  const bias = req.sampling.logitBias;
  const keys = bias instanceof Map ? [...bias.keys()] : Object.keys(bias ?? {}).map(Number);
  const outside = keys.find((id) => !(id < vocabSize));
  if (outside !== undefined) {
    throw new EngineError({ code: "invalid_request", param: "sampling.logitBias", message: `logit_bias names token ${outside}, outside model '${req.model}''s vocabulary of ${vocabSize}` });
  }
  try {
    return createSampler(req.sampling);
  } catch (err) {
    const param = err instanceof SamplingParamError ? `sampling.${err.field}` : "sampling";
    throw new EngineError({ code: "invalid_request", param, message: (err as Error).message });
  }
}
