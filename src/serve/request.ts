// request.ts: one generation request as the engine core tracks it: its tokens (prompt, then output),
// how many of them are in the KV cache (numComputedTokens), its limits and stop token ids, its tier,
// tenant and deadline, its status, and the timestamps the metrics need. It does not decide when it
// runs (scheduler.ts) or where its KV lives (kv_cache_manager.ts); string stops and detokenizing
// belong to the layer that turns ids into text.
//
// No prefill/decode flag: a request needs numTokens - numComputedTokens tokens computed; a fresh
// prompt needs many, a request that just sampled a token needs one.

import type { BlockHash } from "./prefix_cache.js";

export type FinishedStatus = "finished_stopped" | "finished_length" | "finished_aborted" | "finished_timeout" | "finished_error";
export type RequestStatus = "waiting" | "running" | "preempted" | FinishedStatus;

/** What a caller supplies for a request (plain data). */
export interface RequestParams {
  readonly reqId: string;
  readonly promptTokenIds: readonly number[];
  /** Passed through to the model runner untouched; must be structured-clone-able. */
  readonly samplingParams?: unknown;
  /** Most output tokens (>= 1). */
  readonly maxTokens: number;
  /** Token ids that end generation (kept as the last output token, reported as stopTokenId). */
  readonly stopTokenIds?: readonly number[];
  /** The model's end-of-sequence id; ends generation like a stop id unless ignoreEos. */
  readonly eosTokenId?: number;
  /** Keep generating past EOS (load tests that need a fixed output length). */
  readonly ignoreEos?: boolean;
  /** SLA tier name (sla.ts); the tier table's default when absent. */
  readonly tier?: string;
  /** Who is asking (API key or user): fair share is between tenants. Default "". */
  readonly tenant?: string;
  /** Absolute time (ms, the scheduler's clock) after which a request not yet scheduled fails; default from the tier. */
  readonly deadline?: number;
  /** False: opt out of speculative decoding (when the engine runs it). Default true. */
  readonly speculative?: boolean;
}

/** Where the scheduler placed the request: filled in by Scheduler.addRequest. */
export interface RequestPlacement {
  readonly tier: string;
  /** Tier rank: 0 is the most important. */
  readonly priority: number;
  readonly arrivalTime: number;
  readonly deadline: number;
  /** Arrival order, to break ties between equal arrival times. */
  readonly seq: number;
}

const MAX_TOKEN_ID = 2 ** 32 - 1;

function checkTokenIds(reqId: string, what: string, ids: readonly number[]): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t! < 0 || t! > MAX_TOKEN_ID) throw new Error(`request ${reqId}: ${what}[${i}] = ${t} is not a token id (an integer in [0, 2^32))`);
  }
}

export class Request {
  readonly reqId: string;
  readonly promptTokenIds: readonly number[];
  readonly outputTokenIds: number[] = [];
  /** Prompt then output, one array (hashing and the runner read it). */
  readonly allTokenIds: number[];
  readonly samplingParams: unknown;
  readonly maxTokens: number;
  readonly stopTokenIds: ReadonlySet<number>;
  readonly tenant: string;
  readonly tier: string;
  readonly priority: number;
  readonly arrivalTime: number;
  readonly deadline: number;
  readonly seq: number;
  readonly speculative: boolean;

  status: RequestStatus = "waiting";
  /** Speculative decoding: the runner's draft tokens for the next step (scheduled when room allows). */
  specTokenIds: readonly number[] = [];
  /** Tokens whose K/V are in the cache (computed, or reused from the prefix cache). */
  numComputedTokens = 0;
  numPreemptions = 0;
  /** Tokens reused from the prefix cache when first scheduled. */
  numCachedTokens = 0;
  /** Chained hashes of the full blocks of allTokenIds, extended by prefix_cache.ensureBlockHashes. */
  readonly blockHashes: BlockHash[] = [];
  /** The stop or EOS id that ended it (finished_stopped). */
  stopTokenId: number | null = null;
  /** Why it ended, for timeouts, aborts and errors. */
  finishMessage: string | null = null;
  firstScheduledTime: number | null = null;
  firstTokenTime: number | null = null;
  finishedTime: number | null = null;
  /** Scheduler bookkeeping: the runner holds this request's state (it was sent as new and not dropped since). */
  knownToRunner = false;
  /** Scheduler bookkeeping: numTokens when the runner last heard of this request. */
  numTokensSent = 0;

  constructor(params: RequestParams, placement: RequestPlacement) {
    const { reqId } = params;
    if (typeof reqId !== "string" || reqId === "" || reqId === "__proto__") throw new Error(`request: reqId must be a non-empty string (not "__proto__"), got ${JSON.stringify(reqId)}`);
    if (params.promptTokenIds.length === 0) throw new Error(`request ${reqId}: the prompt is empty (at least one token is needed to produce logits)`);
    checkTokenIds(reqId, "promptTokenIds", params.promptTokenIds);
    if (!Number.isInteger(params.maxTokens) || params.maxTokens < 1) throw new Error(`request ${reqId}: maxTokens must be an integer >= 1, got ${params.maxTokens}`);
    const stops = [...(params.stopTokenIds ?? [])];
    checkTokenIds(reqId, "stopTokenIds", stops);
    if (params.eosTokenId !== undefined && !params.ignoreEos) {
      checkTokenIds(reqId, "eosTokenId", [params.eosTokenId]);
      stops.push(params.eosTokenId);
    }
    this.reqId = reqId;
    this.promptTokenIds = [...params.promptTokenIds];
    this.allTokenIds = [...params.promptTokenIds];
    this.samplingParams = params.samplingParams;
    this.maxTokens = params.maxTokens;
    this.stopTokenIds = new Set(stops);
    this.tenant = params.tenant ?? "";
    this.tier = placement.tier;
    this.priority = placement.priority;
    this.arrivalTime = placement.arrivalTime;
    this.deadline = placement.deadline;
    this.seq = placement.seq;
    this.speculative = params.speculative ?? true;
  }

  get numTokens(): number {
    return this.allTokenIds.length;
  }

  get numPromptTokens(): number {
    return this.promptTokenIds.length;
  }

  get numOutputTokens(): number {
    return this.outputTokenIds.length;
  }

  get isFinished(): boolean {
    return this.status.startsWith("finished_");
  }

  /** Append one sampled token; returns the status it finishes the request with, or null to go on. */
  appendOutputToken(tokenId: number, maxModelLen: number): "finished_stopped" | "finished_length" | null {
    checkTokenIds(this.reqId, "sampled token", [tokenId]);
    this.outputTokenIds.push(tokenId);
    this.allTokenIds.push(tokenId);
    // NOTE: a stop id wins over the length limits: the model chose to end, so the reason is "stop".
    if (this.stopTokenIds.has(tokenId)) {
      this.stopTokenId = tokenId;
      return "finished_stopped";
    }
    if (this.outputTokenIds.length >= this.maxTokens || this.allTokenIds.length >= maxModelLen) return "finished_length";
    return null;
  }
}
