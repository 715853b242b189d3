// engine_core.ts: the engine loop of one model: schedule -> model runner -> updateFromOutput, step
// after step while there is work, yielding to the event loop between steps (host.ts nextTurn) so that
// HTTP reads, new requests and disconnects are handled while it runs. Each request's step outputs
// (new token ids, their samples, the end) go to the sink given with it. It owns the loop and the
// hand-off; what runs is the scheduler's, how it runs the runner's, and text is the caller's
// (engine.ts turns token ids into chunks).

import type { SampleResult } from "../models/sampling/index.js";
import type { ModelRunner, RunnerOutput } from "./model_runner.js";
import type { RequestParams } from "./request.js";
import type { Scheduler } from "./scheduler.js";
import type { RequestOutput, SchedulerOutput, SchedulerStats } from "./types.js";
import { nextTurn } from "../core/host.js";

/** What one step did to a request, with the samples behind its new tokens. */
export interface StepOutput {
  readonly output: RequestOutput;
  /** One per new token id (their log-probabilities). */
  readonly samples: readonly SampleResult[];
}

/** Where a request's outputs go. */
export interface RequestSink {
  /** One step's output; the last one has output.finished set. */
  output(o: StepOutput): void;
  /** The engine loop itself broke (a bug, not a request's fault): no more outputs will come. */
  fail(err: Error): void;
}

/**
 * Let the event loop turn a few times between steps. NOTE: measured here, the HTTP server takes in
 * about one new connection per event-loop turn, so with one turn per step a burst of 32 clients
 * trickled in one per step (the 32nd waited ~600 ms for its first token); a turn with nothing to do
 * costs microseconds.
 */
const TURNS_BETWEEN_STEPS = 4;
const nextMacrotask = () =>
  new Promise<void>((resolve) => {
    let left = TURNS_BETWEEN_STEPS;
    const turn = () => (--left > 0 ? nextTurn(turn) : resolve());
    nextTurn(turn);
  });

export class EngineCore {
  private readonly sinks = new Map<string, RequestSink>();
  private running: Promise<void> | null = null;
  /** Work to run between two steps (resizeKv, compaction): the loop runs it before its next step. */
  private readonly betweenSteps: (() => Promise<void>)[] = [];
  /** Set when the loop broke; the core then refuses new requests. */
  failure: Error | null = null;
  /** Steps run and tokens generated since start. */
  numSteps = 0;
  numGeneratedTokens = 0;

  constructor(readonly scheduler: Scheduler, readonly runner: ModelRunner) {
    const k = scheduler.kv;
    if (k.blockSize !== runner.blockSize || k.pool.numBlocks !== runner.numBlocks) {
      throw new Error(`engine core: the scheduler has ${k.pool.numBlocks} blocks of ${k.blockSize} tokens, the runner ${runner.numBlocks} of ${runner.blockSize}`);
    }
  }

  get numRequests(): number {
    return this.sinks.size;
  }

  /** True while the loop runs. */
  get busy(): boolean {
    return this.running !== null;
  }

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /** Queue a request; `sink` gets its outputs, the last one with finished set. Throws on bad params (nothing queued). */
  add(params: RequestParams, sink: RequestSink): void {
    if (this.failure) throw new Error(`engine core: the engine loop failed earlier: ${this.failure.message}`);
    this.scheduler.addRequest(params);
    this.sinks.set(params.reqId, sink);
    this.kick();
  }

  /**
   * End a request now and free its blocks (client gone, stop string seen). Its sink is dropped at
   * once: it gets no more outputs. False if it is unknown or already finished.
   */
  abort(reqId: string, message?: string): boolean {
    this.sinks.delete(reqId);
    const known = this.scheduler.abort(reqId, message);
    // NOTE: the aborted request's output (and the runner's "finished" notice) go out with the next step.
    if (known) this.kick();
    return known;
  }

  /**
   * Run fn between two steps, never during one: at once (on the loop) when idle, else after the step
   * that runs now; the next step starts after fn settles. Rejects with fn's error, which does not stop the loop.
   */
  between<T>(fn: () => Promise<T>): Promise<T> {
    if (this.failure) return Promise.reject(new Error(`engine core: the engine loop failed earlier: ${this.failure.message}`));
    return new Promise<T>((resolve, reject) => {
      this.betweenSteps.push(() => fn().then(resolve, reject));
      this.kick();
    });
  }

  /** Resolves when the loop has nothing left to do. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running || this.failure) return;
    this.running = this.loop()
      .catch((err: Error) => {
        this.failure = err;
        const sinks = [...this.sinks.values()];
        this.sinks.clear();
        for (const s of sinks) s.fail(err);
      })
      .finally(() => {
        this.running = null;
      });
  }

  private async loop(): Promise<void> {
    // NOTE: start on a fresh macrotask, so every request added in the same turn joins the first step.
    await nextMacrotask();
    while (this.scheduler.hasWork || this.betweenSteps.length > 0) {
      for (const task of this.betweenSteps.splice(0)) await task();
      if (this.scheduler.hasWork) this.step(await this.execute(this.scheduler.schedule()));
      await nextMacrotask();
    }
  }

  /** Run the runner; if it fails, every request of the step fails with its message (the loop goes on). */
  private async execute(out: SchedulerOutput): Promise<[SchedulerOutput, RunnerOutput]> {
    try {
      return [out, await this.runner.execute(out)];
    } catch (err) {
      const message = `the model runner failed at step ${out.step}: ${(err as Error).message}`;
      for (const r of [...out.scheduledNewReqs, ...out.scheduledCachedReqs]) this.scheduler.finishRequest(r.reqId, "finished_error", message);
      return [out, { sampledTokenIds: {}, samples: {} }];
    }
  }

  private step([out, ran]: [SchedulerOutput, RunnerOutput]): void {
    this.numSteps++;
    for (const o of this.scheduler.updateFromOutput(out, ran)) {
      this.numGeneratedTokens += o.newTokenIds.length;
      const sink = this.sinks.get(o.reqId);
      if (o.finished) this.sinks.delete(o.reqId);
      sink?.output({ output: o, samples: ran.samples[o.reqId] ?? [] });
    }
  }
}
