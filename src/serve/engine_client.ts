// engine_client.ts: the boundary between a front end (the OpenAI HTTP server, a browser UI) and an
// engine that generates text: the EngineClient interface and the plain data it carries. Everything
// here is structured-clone-able (no class instances, functions or tensors), so one interface serves
// an in-process engine, one behind a worker_thread and one in a browser Worker. Errors cross as
// EngineErrorData and are rebuilt as EngineError. It does not say how requests are scheduled or run.

import type { ChatMessage } from "../models/chat_template.js";
import type { SamplingParams } from "../models/sampling/index.js";

/** What to continue: text (encoded by the model's tokenizer), token ids, or a conversation (the model's chat template). */
export type PromptInput =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "tokens"; readonly tokenIds: readonly number[] }
  | { readonly kind: "chat"; readonly messages: readonly ChatMessage[] };

export interface GenerateRequest {
  /** Unique among the requests in flight; abort(reqId) names it. */
  readonly reqId: string;
  /** A model id from models(). */
  readonly model: string;
  readonly prompt: PromptInput;
  /**
   * Sampling (temperature, topP, topK, minP, seed, penalties, logitBias, topLogprobs). NOTE: logitBias
   * must be a plain object (token id -> bias) here, not a Map, so it survives every transport.
   */
  readonly sampling: SamplingParams;
  /** Most tokens to generate; undefined: until the context is full. prompt + maxTokens must fit the context. */
  readonly maxTokens?: number;
  /** Strings that end generation; neither they nor what follows is returned. */
  readonly stop?: readonly string[];
  /** Return each generated token's log-probability (and sampling.topLogprobs alternatives). */
  readonly logprobs?: boolean;
  /** Keep generating past the model's end-of-sequence token (load tests that need a fixed output length). */
  readonly ignoreEos?: boolean;
  /** The SLA tier (the engine's configuration names them; its default when absent): the tier is the priority. */
  readonly tier?: string;
  /** False: opt out of speculative decoding (when the engine runs it). Default true. */
  readonly speculative?: boolean;
  /** Who pays: the API key's tenant (fair share is between tenants); `user` is the end user the client named. */
  readonly tenant?: string;
  readonly user?: string;
}

export interface TokenLogprobData {
  readonly id: number;
  /** The token's text (special tokens as written, incomplete UTF-8 as U+FFFD) and its raw bytes. */
  readonly text: string;
  readonly bytes: readonly number[];
  readonly logprob: number;
}

export interface ChunkLogprob extends TokenLogprobData {
  /** The most likely alternatives (sampling.topLogprobs of them), most likely first. */
  readonly top: readonly TokenLogprobData[];
}

/** "abort": the request was cancelled (abort(), its signal, or the engine shutting down). */
export type EngineFinishReason = "stop" | "length" | "abort";

export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** One step of a request's output. The last chunk has finishReason and usage. */
export interface GenerateChunk {
  /** Text that is final now (may be "": held back while it could be part of a stop string or a character). */
  readonly textDelta: string;
  /** The tokens generated since the previous chunk. */
  readonly tokenIds: readonly number[];
  /** One per token id, when the request asked for logprobs. */
  readonly logprobs?: readonly ChunkLogprob[];
  readonly finishReason?: EngineFinishReason;
  readonly usage?: Usage;
}

/**
 * A chunk as a client of a remote engine sees it: a GenerateChunk whose token ids may be absent, since
 * an OpenAI-compatible server streams text, not ids (HttpEngineClient in apps/web). An engine in this
 * process or a Worker always has them; only the final usage counts a remote request's tokens.
 */
export interface StreamedChunk extends Omit<GenerateChunk, "tokenIds"> {
  readonly tokenIds?: readonly number[];
}

export interface ModelCard {
  readonly id: string;
  /** Unix seconds when it was loaded. */
  readonly created: number;
  readonly ownedBy: string;
  /** Context length: prompt + generated tokens must fit. */
  readonly maxModelLen: number;
  /**
   * Most requests of this model the engine holds at once (running seats + waiting queue), when it has
   * such a limit: a group of requests larger than this (prompts x n) can never be admitted whole.
   */
  readonly maxRequests?: number;
  /** Most requests of this model that run at once (seats); a larger group queues behind itself. */
  readonly maxRunning?: number;
  /** Tokens the model's KV cache holds, all running requests together. */
  readonly kvTokens?: number;
}

export type EngineStatus = "loading" | "ready" | "draining" | "failed";

export interface EngineHealth {
  readonly status: EngineStatus;
  /** Why, when not ready (e.g. the load error). */
  readonly message?: string;
}

/** Counts at one moment, for /metrics. Optional fields are those an engine may not have (e.g. no KV cache). */
export interface EngineStats {
  readonly running: number;
  readonly waiting: number;
  /** Requests preempted and waiting to be recomputed. */
  readonly preempted?: number;
  /** Fraction of KV cache blocks in use, in [0, 1]. */
  readonly kvCacheUsage?: number;
  /** Fraction of prompt tokens served from the prefix cache since start, in [0, 1]. */
  readonly prefixCacheHitRate?: number;
  /** KV blocks and their device bytes, over every model. */
  readonly kvBlocks?: number;
  readonly kvBytes?: number;
  /** Internal fragmentation: allocated token slots that no token fills. */
  readonly kvUnusedSlots?: number;
  /** Free blocks above each pool's highest live block (a shrink releases them without moving K/V). */
  readonly kvTailFreeBlocks?: number;
  /** Free blocks below each pool's highest live block (compaction moves live blocks into them). */
  readonly kvHoleBlocks?: number;
  /** Speculative decoding's counters since start, all models together; absent when it is off. */
  readonly speculative?: SpeculativeCounters;
}

/** What speculative decoding did since start (plain data). */
export interface SpeculativeCounters {
  /** Sequence-steps that verified at least one draft token. */
  readonly numDrafts: number;
  readonly numDraftTokens: number;
  readonly numAcceptedTokens: number;
  /** Tokens those sequence-steps emitted (accepted + one each). */
  readonly numEmittedTokens: number;
  /** Seconds spent drafting. */
  readonly draftSeconds: number;
}

/**
 * `Chunk`: what generate() streams. The default, GenerateChunk, carries token ids: what the HTTP server
 * needs. A client whose engine is a remote server (HttpEngineClient) is an EngineClient<StreamedChunk>.
 */
export interface EngineClient<Chunk extends StreamedChunk = GenerateChunk> {
  /**
   * Start a request and stream its output. Errors before the first chunk (bad input, unknown model,
   * queue full, not ready) reject the first next() with an EngineError. Aborting `signal` (or
   * abort(reqId)) cancels the request at once and frees what it holds; the stream then ends with a
   * chunk whose finishReason is "abort". Ending the iteration early (break) aborts it too.
   */
  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<Chunk>;
  /** The models it serves now. */
  models(): Promise<readonly ModelCard[]>;
  health(): Promise<EngineHealth>;
  /** Cancel a request by id; a request that is not in flight is ignored. */
  abort(reqId: string): Promise<void>;
  stats(): Promise<EngineStats>;
}

/**
 * Why a request was refused or failed, by kind (the HTTP layer maps each to a status):
 * invalid_request (400), context_length_exceeded (400: the message names the lengths), model_not_found
 * (404), queue_full (429, retryAfterS), queue_timeout (a request waited past its deadline: 503),
 * unavailable (loading or draining: 503), internal (500).
 */
export type EngineErrorCode =
  | "invalid_request" | "context_length_exceeded" | "model_not_found" | "queue_full" | "queue_timeout" | "unavailable" | "internal";

export interface EngineErrorData {
  readonly code: EngineErrorCode;
  readonly message: string;
  /** The GenerateRequest field at fault ("prompt", "maxTokens", "sampling.topP", "stop", ...). */
  readonly param?: string;
  /** For queue_full and unavailable: when to try again. */
  readonly retryAfterS?: number;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly param: string | undefined;
  readonly retryAfterS: number | undefined;

  constructor(data: EngineErrorData) {
    super(data.message);
    this.name = "EngineError";
    this.code = data.code;
    this.param = data.param;
    this.retryAfterS = data.retryAfterS;
  }

  /** The plain data to send across a worker boundary. */
  toData(): EngineErrorData {
    return {
      code: this.code, message: this.message,
      ...(this.param === undefined ? {} : { param: this.param }),
      ...(this.retryAfterS === undefined ? {} : { retryAfterS: this.retryAfterS }),
    };
  }
}
