// index.ts: the weight formats' public entry: open any model (loadModel), the per-format readers and
// writers (GGUF, llama2.c, Hugging Face safetensors folders), and the FormatError they throw.
// Nothing else in this folder is meant to be imported from outside it.

export { FormatError } from "./file_source.js";
export { BUILTIN_MODELS, builtinModel, detectFormat, loadModel } from "./load_model.js";
export type { ModelFormat } from "./load_model.js";
export { readGguf } from "./gguf.js";
export type { GgufFile, GgufMetaType, GgufTensorInfo } from "./gguf.js";
export { GGUF_ARCHITECTURES, ggufConfig, loadGguf } from "./gguf_model.js";
export { writeGguf } from "./gguf_writer.js";
export type { GgufWriteOptions, GgufWriteType } from "./gguf_writer.js";
export { readLlama2c, readLlama2cHeader } from "./llama2c.js";
export { readHfFolder, writeHfFolder } from "./hf_folder.js";
export type { HfWriteOptions } from "./hf_folder.js";
export { memoryTensor } from "./file_tensor.js";
