// engine_options.ts: the plain-data options of the in-process Engine (engine.ts) and of adding or
// removing a model while it serves, and the ModelRouter contract through which a registry
// (model_registry.ts) picks the served version of a request.

import type { GenerateRequest } from "./engine_client.js";
import type { ModelRunnerOptions } from "./model_runner.js";
import type { SlaTier } from "./sla.js";

export interface EngineOptions extends ModelRunnerOptions {
  /** Token budget of one step (all requests together). Default 256. */
  readonly maxNumBatchedTokens?: number;
  /** Most tokens one request computes in one step (chunked prefill). Default: the budget. */
  readonly maxPrefillChunk?: number;
  /** Default true. */
  readonly enablePrefixCaching?: boolean;
  /** Waiting prompts run in a step of their own before the decodes, for time to first token (prefill_first.ts). Default false. */
  readonly prefillFirst?: boolean;
  /** SLA tiers, most important first (default sla.DEFAULT_TIERS), and the default one. */
  readonly tiers?: readonly SlaTier[];
  readonly defaultTier?: string;
  /** Most requests per model waiting beyond the free seats (maxNumSeqs); the next gets queue_full. Default 256. */
  readonly maxWaiting?: number;
  /** Seconds a client is told to wait after queue_full, a queue timeout or while loading. Default 1. */
  readonly retryAfterS?: number;
  /** Capture the decode steps while loading (ModelRunner.warmup), so the first clients do not wait for it. Default false. */
  readonly warmup?: boolean;
}

/** Picks the served model of a request (versions, canaries); the engine asks it before every admission. */
export interface ModelRouter {
  /** The served model id that `req` goes to; undefined: req.model itself. */
  route(req: GenerateRequest): string | undefined;
  /** Names clients may use besides the served ids, each with the id whose card models() shows for it. */
  aliases(): ReadonlyMap<string, string>;
}

export interface AddModelOptions {
  /** KV cache blocks of this model (its KV budget); default the engine's numBlocks (or sizing). */
  readonly numBlocks?: number;
}

export interface RemoveModelOptions {
  /** Abort the model's requests still in flight after this many ms (0: at once); default: let them finish. */
  readonly abortAfterMs?: number;
}

