// scheduler.ts: one engine step's decision: which requests run and how many tokens each computes,
// under a token budget and a cap on running requests; admission by tier and tenant; preemption when
// KV blocks run out; queue timeouts and aborts; and, after the runner's step, appending sampled
// tokens and ending requests at their stop conditions. It sees token ids and block ids only; the
// forward pass and sampling are the model runner's, the block tables kv_cache_manager.ts's.
//
// One step: the running requests first, most important tier then oldest first: each gets what it
// still lacks (numTokens - numComputedTokens: a whole or partial prompt, or the one token it just
// sampled), capped by the remaining budget and maxPrefillChunk. Then waiting requests in
// WaitingQueue order, while budget, seats and blocks last. Chunked prefill falls out: a long prompt
// takes what budget is left and continues next step, after that step's decodes.
//
// Protocol: schedule() -> the runner executes the SchedulerOutput -> updateFromOutput(output,
// runnerOutput), always in that order (also when nothing was scheduled, with no samples).

import { assertNever } from "../core/ops.js";
import { type ComputedBlocks, type KVCacheConfig, KVCacheManager } from "./kv_cache_manager.js";
import { type FinishedStatus, Request, type RequestParams } from "./request.js";
import { type SlaTier, TierTable } from "./sla.js";
import { prefillOnlyStep } from "./prefill_first.js";
import { scheduleDrafts, scheduledSpecTokensOf } from "./speculative/spec_schedule.js";
import type { CachedRequestData, FinishReason, ModelRunnerOutput, NewRequestData, RequestOutput, SchedulerOutput, SchedulerStats } from "./types.js";
import { WaitingQueue } from "./waiting_queue.js";

export interface SchedulerConfig {
  /** Token budget of one step (all requests' scheduled tokens together). */
  readonly maxNumBatchedTokens: number;
  /** Most requests running (holding blocks) at once. */
  readonly maxNumSeqs: number;
  /** Most tokens (prompt + output) of one request: the model's context length. */
  readonly maxModelLen: number;
  /** Most tokens one request computes in one step, so one long prompt cannot take a step's whole budget. Default: the budget. */
  readonly maxPrefillChunk?: number;
  readonly cache: KVCacheConfig;
  /** Most important first; default sla.DEFAULT_TIERS. */
  readonly tiers?: readonly SlaTier[];
  readonly defaultTier?: string;
  /** Clock in ms (arrival, deadlines, timings); default performance.now. */
  readonly now?: () => number;
  /** Run waiting prompts in a step of their own before the decodes (prefill_first.ts). Default false. */
  readonly prefillFirst?: boolean;
}

interface Scheduled {
  numTokens: number;
  newBlockIds: number[];
  drafts?: readonly number[]; // speculative draft tokens among numTokens, after the request's last token
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`scheduler: ${name} must be a positive integer, got ${v}`);
  return v;
}

/** Lower is more important: tier rank, then arrival. */
function urgency(a: Request, b: Request): number {
  return a.priority - b.priority || a.arrivalTime - b.arrivalTime || a.seq - b.seq;
}

function finishReason(s: FinishedStatus): FinishReason {
  switch (s) {
    case "finished_stopped": return "stop";
    case "finished_length": return "length";
    case "finished_aborted": return "abort";
    case "finished_timeout": return "timeout";
    case "finished_error": return "error";
    default: return assertNever(s, "request status");
  }
}

export class Scheduler {
  readonly kv: KVCacheManager;
  readonly tiers: TierTable;
  readonly now: () => number;
  private readonly maxNumBatchedTokens: number;
  private readonly maxNumSeqs: number;
  private readonly maxModelLen: number;
  private readonly maxPrefillChunk: number;
  /** Every request not finished, by id. */
  private readonly requests = new Map<string, Request>();
  private readonly waiting: WaitingQueue;
  private readonly running: Request[] = [];
  /** Ended since the last schedule() while the runner held their state. */
  private finishedForRunner: string[] = [];
  /** Outputs of requests ended outside updateFromOutput (abort, timeout, error): returned by the next one. */
  private pendingOutputs: RequestOutput[] = [];
  private inFlight: SchedulerOutput | null = null;
  private step = 0;
  private seq = 0;
  private totalPreemptions = 0;
  private numSpecSkippedForMemory = 0; // request-steps whose speculative drafts the KV pool could not hold
  private readonly prefillFirst: boolean;
  private lastWasPrefillOnly = false;

  constructor(config: SchedulerConfig) {
    this.maxNumBatchedTokens = positiveInt("maxNumBatchedTokens", config.maxNumBatchedTokens);
    this.maxNumSeqs = positiveInt("maxNumSeqs", config.maxNumSeqs);
    this.maxModelLen = positiveInt("maxModelLen", config.maxModelLen);
    this.maxPrefillChunk = positiveInt("maxPrefillChunk", config.maxPrefillChunk ?? config.maxNumBatchedTokens);
    this.kv = new KVCacheManager(config.cache);
    // NOTE: one request of maxModelLen tokens must fit in the whole pool, or it could never finish.
    if (config.cache.numBlocks * config.cache.blockSize < this.maxModelLen) {
      throw new Error(`scheduler: ${config.cache.numBlocks} blocks of ${config.cache.blockSize} tokens cannot hold one request of maxModelLen ${this.maxModelLen} tokens`);
    }
    this.tiers = new TierTable(config.tiers, config.defaultTier);
    this.waiting = new WaitingQueue(this.tiers.size);
    this.now = config.now ?? (() => performance.now());
    this.prefillFirst = config.prefillFirst ?? false;
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  /** True while a step would do something: requests to run, or outputs and finished ids to deliver. */
  get hasWork(): boolean {
    return this.requests.size > 0 || this.pendingOutputs.length > 0 || this.finishedForRunner.length > 0;
  }

  getRequest(reqId: string): Request | undefined {
    return this.requests.get(reqId);
  }

  runningRequests(): readonly Request[] {
    return this.running;
  }

  waitingRequests(): Request[] {
    return [...this.waiting];
  }

  /** Queue a request. Throws (naming the problem) on a duplicate id, unknown tier or a prompt that leaves no room to generate. */
  addRequest(params: RequestParams): Request {
    if (this.requests.has(params.reqId)) throw new Error(`scheduler: request ${params.reqId} already exists`);
    const tierName = params.tier ?? this.tiers.defaultTier;
    const tier = this.tiers.get(tierName);
    const arrivalTime = this.now();
    const req = new Request(params, {
      tier: tierName,
      priority: this.tiers.rank(tierName),
      arrivalTime,
      deadline: params.deadline ?? arrivalTime + tier.queueTimeoutMs,
      seq: this.seq++,
    });
    if (req.numPromptTokens >= this.maxModelLen) {
      throw new Error(`scheduler: request ${req.reqId} has a prompt of ${req.numPromptTokens} tokens; the context length is ${this.maxModelLen}, leaving no room for output`);
    }
    this.requests.set(req.reqId, req);
    this.waiting.push(req);
    return req;
  }

  /** End a request now (client gone) and free its blocks; false if it is unknown or already finished. */
  abort(reqId: string, message = `request ${reqId} was aborted`): boolean {
    return this.finishRequest(reqId, "finished_aborted", message);
  }

  /** End a live request with a status other than stop/length (abort, timeout, error); its output comes with the next updateFromOutput. */
  finishRequest(reqId: string, status: "finished_aborted" | "finished_timeout" | "finished_error", message: string): boolean {
    const req = this.requests.get(reqId);
    if (req === undefined) return false;
    this.finish(req, status, message);
    this.pendingOutputs.push(this.outputOf(req, []));
    return true;
  }

  schedule(): SchedulerOutput {
    if (this.inFlight !== null) throw new Error(`scheduler: schedule() called again before updateFromOutput() of step ${this.inFlight.step}`);
    const now = this.now();
    this.expireDeadlines(now);
    this.running.sort(urgency);
    const scheduled = new Map<Request, Scheduled>();
    const preempted: string[] = [];
    let budget = this.maxNumBatchedTokens;
    const prefillOnly = prefillOnlyStep({
      enabled: this.prefillFirst, lastWasPrefillOnly: this.lastWasPrefillOnly, running: this.running.length, waiting: this.waiting.length,
      maxNumSeqs: this.maxNumSeqs, runningInPrompt: this.running.some((r) => r.numComputedTokens < r.numPromptTokens),
    });
    this.lastWasPrefillOnly = prefillOnly;

    // NOTE: a prompts-only step skips the running requests (they run next step), not the admission below.
    for (let i = 0; i < this.running.length && budget > 0 && !prefillOnly; i++) {
      const req = this.running[i]!;
      const n = Math.min(req.numTokens - req.numComputedTokens, this.maxPrefillChunk, budget);
      const spec = scheduleDrafts(req, n, budget, this.maxModelLen, this.kv, this.running.length, () => this.numSpecSkippedForMemory++);
      if (spec !== null) {
        scheduled.set(req, spec);
        budget -= spec.numTokens;
        continue;
      }
      let newBlockIds = this.kv.allocateSlots(req, n);
      while (newBlockIds === null) {
        // Out of blocks: preempt the least urgent running request (the last: running is sorted), maybe req itself.
        const victim = this.running.pop()!;
        this.preempt(victim, preempted);
        if (victim === req) break;
        newBlockIds = this.kv.allocateSlots(req, n);
      }
      if (newBlockIds === null) break;
      scheduled.set(req, { numTokens: n, newBlockIds });
      budget -= n;
    }

    // NOTE: after a preemption there are no blocks to spare; admitting now would only preempt again next step.
    if (preempted.length === 0) {
      while (budget > 0) {
        const req = this.waiting.peek();
        if (req === undefined) break;
        const computed = this.kv.getComputedBlocks(req);
        const n = Math.min(req.numTokens - computed.numTokens, this.maxPrefillChunk, budget);
        let newBlockIds = this.tryAdmit(req, n, computed);
        // A more important tier may take the seats and blocks of less important running requests,
        // least urgent first, but only when that would make room (never preempt for nothing).
        const victims = newBlockIds === null ? this.running.filter((r) => r.priority > req.priority).sort(urgency) : [];
        const enough = victims.length > 0 && this.running.length - victims.length < this.maxNumSeqs && this.kv.fitsAfterFreeing(req, n, computed, victims);
        while (newBlockIds === null && enough && victims.length > 0) {
          const victim = victims.pop()!;
          const undone = scheduled.get(victim);
          if (undone !== undefined) {
            scheduled.delete(victim);
            budget += undone.numTokens;
          }
          this.running.splice(this.running.indexOf(victim), 1);
          this.preempt(victim, preempted);
          newBlockIds = this.tryAdmit(req, n, computed);
        }
        if (newBlockIds === null) break;
        this.waiting.popAdmitted(req);
        req.status = "running";
        req.numComputedTokens = computed.numTokens;
        if (req.firstScheduledTime === null) {
          req.firstScheduledTime = now;
          req.numCachedTokens = computed.numTokens;
        }
        this.running.push(req);
        scheduled.set(req, { numTokens: n, newBlockIds });
        budget -= n;
      }
    }
    return (this.inFlight = this.buildOutput(scheduled, preempted));
  }

  /**
   * Apply the runner's samples for the last schedule(): advance numComputedTokens, cache the blocks
   * that filled, append sampled tokens, end requests at a stop id, maxTokens or the context length.
   * Returns one output per request that gained tokens or finished (aborts and timeouts included).
   */
  updateFromOutput(output: SchedulerOutput, runnerOutput: ModelRunnerOutput): RequestOutput[] {
    if (output !== this.inFlight) throw new Error(`scheduler: updateFromOutput() got step ${output.step}, not the output of the last schedule()`);
    const { sampledTokenIds } = runnerOutput;
    for (const reqId of Object.keys(sampledTokenIds)) {
      if (output.numScheduledTokens[reqId] === undefined) throw new Error(`scheduler: the runner sampled for ${reqId}, which step ${output.step} did not schedule`);
    }
    // Check before changing anything, so a runner bug leaves the scheduler consistent.
    const live: [Request, number, number][] = [];
    for (const { reqId } of [...output.scheduledNewReqs, ...output.scheduledCachedReqs]) {
      const req = this.requests.get(reqId);
      if (req === undefined || req.status !== "running") continue; // ended while the step ran
      const n = output.numScheduledTokens[reqId]!;
      const drafts = output.scheduledSpecTokens?.[reqId]?.length ?? 0;
      const atEnd = req.numComputedTokens + n - drafts === req.numTokens;
      const got = sampledTokenIds[reqId]?.length ?? 0;
      if (got > drafts + 1) throw new Error(`scheduler: step ${output.step} scheduled ${drafts} draft tokens of ${reqId} but the runner sampled ${got} tokens (at most ${drafts + 1})`);
      if (atEnd && got === 0) throw new Error(`scheduler: step ${output.step} computed all ${req.numTokens} tokens of ${reqId} but the runner sampled no token`);
      if (!atEnd && got > 0) throw new Error(`scheduler: step ${output.step} computed ${req.numComputedTokens + n} of ${req.numTokens} tokens of ${reqId} (a prompt chunk) but the runner sampled ${got}`);
      live.push([req, n, drafts]);
    }
    this.inFlight = null;
    const now = this.now();
    const outputs = this.pendingOutputs;
    this.pendingOutputs = [];
    for (const [req, n, drafts] of live) {
      const sampled = sampledTokenIds[req.reqId];
      // NOTE: rejected drafts roll back (their slots' K/V is garbage, overwritten later; the blocks stay with req).
      req.numComputedTokens += n - (drafts > 0 ? drafts + 1 - sampled!.length : 0);
      req.specTokenIds = runnerOutput.draftTokenIds?.[req.reqId] ?? [];
      this.kv.cacheComputedBlocks(req);
      if (sampled === undefined) continue;
      const newTokenIds: number[] = [];
      let stop: FinishedStatus | null = null;
      for (const t of sampled) {
        newTokenIds.push(t);
        stop = req.appendOutputToken(t, this.maxModelLen);
        if (stop !== null) break;
      }
      req.firstTokenTime ??= now;
      if (stop !== null) this.finish(req, stop, null);
      outputs.push(this.outputOf(req, newTokenIds));
    }
    return outputs;
  }

  stats(): SchedulerStats {
    const cache = this.kv.prefixCacheStats;
    const layout = this.kv.pool.layout();
    let numPreemptedWaiting = 0;
    for (const r of this.waiting) if (r.status === "preempted") numPreemptedWaiting++;
    return {
      numRunning: this.running.length,
      numWaiting: this.waiting.length,
      numPreemptedWaiting,
      totalPreemptions: this.totalPreemptions,
      kvCacheUsage: this.kv.usage,
      numFreeBlocks: this.kv.numBlocksFree,
      numBlocks: this.kv.pool.numBlocks,
      prefixCacheQueriedTokens: cache.queriedTokens,
      prefixCacheHitTokens: cache.hitTokens,
      prefixCacheHitRate: cache.hitRate,
      numEvictions: this.kv.pool.numEvictions,
      numUnusedSlots: this.kv.numUnusedSlots,
      numTailFreeBlocks: layout.numTailFree,
      numHoleBlocks: layout.numHoles,
      numSpecSkippedForMemory: this.numSpecSkippedForMemory,
    };
  }

  private tryAdmit(req: Request, n: number, computed: ComputedBlocks): number[] | null {
    return this.running.length < this.maxNumSeqs ? this.kv.allocateSlots(req, n, computed) : null;
  }

  /** Free victim's blocks and send it back to the front of its tier; its K/V will be recomputed. */
  private preempt(victim: Request, preempted: string[]): void {
    this.kv.free(victim);
    victim.status = "preempted";
    victim.numComputedTokens = 0;
    victim.specTokenIds = [];
    victim.numPreemptions++;
    this.totalPreemptions++;
    if (victim.knownToRunner) preempted.push(victim.reqId);
    victim.knownToRunner = false;
    this.waiting.pushResumed(victim);
  }

  /**
   * Fail requests that were never scheduled and whose deadline passed. NOTE: a preempted request has
   * already streamed tokens to its client; it waits for its turn instead of failing halfway.
   */
  private expireDeadlines(now: number): void {
    const expired: Request[] = [];
    for (const r of this.waiting) if (r.status === "waiting" && now > r.deadline) expired.push(r);
    for (const r of expired) {
      const waited = Math.round(now - r.arrivalTime);
      this.finishRequest(r.reqId, "finished_timeout", `request ${r.reqId} waited ${waited} ms in the queue without being scheduled, past its deadline (tier "${r.tier}", queue timeout ${this.tiers.get(r.tier).queueTimeoutMs} ms)`);
    }
  }

  private finish(req: Request, status: FinishedStatus, message: string | null): void {
    if (req.status === "running") this.running.splice(this.running.indexOf(req), 1);
    else this.waiting.remove(req);
    this.kv.free(req);
    req.status = status;
    req.finishMessage = message;
    req.finishedTime = this.now();
    this.requests.delete(req.reqId);
    if (req.knownToRunner) this.finishedForRunner.push(req.reqId);
    req.knownToRunner = false;
  }

  private buildOutput(scheduled: Map<Request, Scheduled>, preempted: string[]): SchedulerOutput {
    const scheduledNewReqs: NewRequestData[] = [];
    const scheduledCachedReqs: CachedRequestData[] = [];
    const numScheduledTokens: Record<string, number> = {};
    let total = 0;
    for (const [req, s] of scheduled) {
      if (!req.knownToRunner) {
        scheduledNewReqs.push({
          reqId: req.reqId,
          promptTokenIds: req.promptTokenIds,
          outputTokenIds: req.outputTokenIds.slice(),
          samplingParams: req.samplingParams,
          blockIds: this.kv.blockIds(req.reqId),
          numComputedTokens: req.numComputedTokens,
          ...(req.speculative ? {} : { speculative: false }),
        });
        req.knownToRunner = true;
      } else {
        scheduledCachedReqs.push({
          reqId: req.reqId,
          newTokenIds: req.allTokenIds.slice(req.numTokensSent),
          newBlockIds: s.newBlockIds,
          numComputedTokens: req.numComputedTokens,
        });
      }
      req.numTokensSent = req.numTokens;
      numScheduledTokens[req.reqId] = s.numTokens;
      total += s.numTokens;
    }
    const finishedReqIds = this.finishedForRunner;
    this.finishedForRunner = [];
    return { step: ++this.step, scheduledNewReqs, scheduledCachedReqs, numScheduledTokens, totalNumScheduledTokens: total, finishedReqIds, preemptedReqIds: preempted, ...scheduledSpecTokensOf(scheduled) };
  }

  private outputOf(req: Request, newTokenIds: number[]): RequestOutput {
    const out: { -readonly [K in keyof RequestOutput]: RequestOutput[K] } = {
      reqId: req.reqId,
      newTokenIds,
      finished: req.isFinished,
      numPromptTokens: req.numPromptTokens,
      numOutputTokens: req.numOutputTokens,
      numCachedTokens: req.numCachedTokens,
      numPreemptions: req.numPreemptions,
      arrivalTime: req.arrivalTime,
      firstScheduledTime: req.firstScheduledTime,
      firstTokenTime: req.firstTokenTime,
      finishedTime: req.finishedTime,
    };
    if (out.finished) out.finishReason = finishReason(req.status as FinishedStatus);
    if (req.stopTokenId !== null) out.stopTokenId = req.stopTokenId;
    if (req.finishMessage !== null) out.message = req.finishMessage;
    return out;
  }
}
