// serve/index.ts: the serving layer's public API, what the CLI and other callers outside the layer
// import: the Engine and the EngineClient interface it implements, the model registry and weight
// cache behind hot model loading, and the OpenAI-compatible HTTP server with its admin routes.
// Code inside src/serve imports its files directly.

export { Engine } from "./engine.js";
export type { AddModelOptions, EngineOptions, ModelRouter, RemoveModelOptions } from "./engine.js";
export { AsyncQueue } from "./async_queue.js";
export type {
  ChunkLogprob, EngineClient, EngineErrorCode, EngineErrorData, EngineFinishReason, EngineHealth, EngineStats, EngineStatus,
  GenerateChunk, GenerateRequest, ModelCard, PromptInput, SpeculativeCounters, TokenLogprobData, Usage,
} from "./engine_client.js";
export { EngineError } from "./engine_client.js";
export type { ServedModel } from "./served_model.js";
export type { LoadSpec, ModelRegistryOptions, VersionInfo } from "./model_registry.js";
export { ModelRegistry, RegistryError } from "./model_registry.js";
export type { CachedOpen, WeightCacheOptions, WeightCacheStats } from "./weight_cache.js";
export { WeightCache } from "./weight_cache.js";
export type { ModelRunnerOptions } from "./model_runner.js";
export { ModelRunner } from "./model_runner.js";
export type { BatchRunner, StepChannel } from "./step_messages.js";
export { runWorker, sendBatch, sendStop } from "./step_messages.js";
export type { ApiKey, OpenAIServerOptions, PageRoutes } from "./openai/server.js";
export { OpenAIServer } from "./openai/server.js";
export { AdminApi } from "./openai/admin.js";
export type { Draft, DraftRequest, Drafter } from "./speculative/drafter.js";
export { NgramDrafter } from "./speculative/ngram_drafter.js";
export { DraftModelDrafter } from "./speculative/draft_model_drafter.js";
export type { SpeculativeConfig, SpeculativeStats } from "./speculative/speculative_decoder.js";
