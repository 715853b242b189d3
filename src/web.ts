// web.ts: kiln's public API for web apps (a page and its Worker): the core (index.ts) plus what a
// browser engine needs: the serving Engine behind EngineClient, opening models from files' bytes,
// and handing the bundled WGSL shader texts to the webgpu backend. Nothing here touches Node.

export * from "./index.js";
export { Engine } from "./serve/engine.js";
export type { EngineOptions } from "./serve/engine.js";
export { AsyncQueue } from "./serve/async_queue.js";
export { EngineError } from "./serve/engine_client.js";
export type {
  ChunkLogprob, EngineClient, EngineErrorCode, EngineErrorData, EngineFinishReason, EngineHealth, EngineStats, EngineStatus,
  GenerateChunk, GenerateRequest, ModelCard, PromptInput, StreamedChunk, Usage,
} from "./serve/engine_client.js";
export type { ServedModel } from "./serve/served_model.js";
export { SseError, sseData } from "./serve/sse_reader.js";
export { openModelFiles } from "./models/open_files.js";
export type { ModelFile, OpenedModel } from "./models/open_files.js";
export { fromLoaded } from "./models/language_model.js";
export type { LoadedModel, ModelConfig } from "./models/types.js";
export { SHADER_NAMES, setShaderTexts } from "./backends/webgpu/shader_text.js";
export type { ShaderName } from "./backends/webgpu/shader_text.js";
