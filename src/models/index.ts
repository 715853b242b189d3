// models/index.ts: the models layer's public API, what the CLI and other callers outside the layer
// import: the architectures (Llama, GPT-2) behind the CausalTransformer and LanguageModel interfaces,
// opening a model (from a path, or from files' bytes), generating, chat templates, and the formats,
// tokenizers and sampling sub-layers. Code inside src/models imports its files directly.

export type * from "./types.js";
export * from "./formats/index.js";
export * from "./tokenizers/index.js";
export * from "./sampling/index.js";

export type { CausalTransformer, LanguageModel } from "./language_model.js";
export { CachedDecoder, fromLoaded } from "./language_model.js";
export type { LlamaOptions } from "./llama.js";
export { Llama } from "./llama.js";
export { Gpt2 } from "./gpt2.js";
export type { AttentionContext, CacheShape, KvCache, ModelOptions } from "./kv_cache.js";
export { CacheContext, FullContext } from "./kv_cache.js";
export type { GenerateOptions } from "./generate.js";
export { generate } from "./generate.js";
export type { ChatMessage, ChatRenderOptions, ChatTemplate } from "./chat_template.js";
export { DEFAULT_CHAT_TEMPLATE, chatTemplateFromMetadata, chatTemplateFromTokenizerConfig, compileChatTemplate, renderChat } from "./chat_template.js";
export type { ModelFile, OpenedModel } from "./open_files.js";
export { openModelFiles } from "./open_files.js";
export { openModel } from "./open_model.js";
export { randomLoadedModel } from "./random_weights.js";
export { perplexity } from "./perplexity.js";
export type { PerplexityResult } from "./perplexity.js";
