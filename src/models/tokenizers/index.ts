// index.ts: the tokenizers' public entry: the Tokenizer interface, its readers (llama2.c .bin, GGUF
// metadata, Hugging Face tokenizer.json), its writers (GGUF metadata, tokenizer.json) and the
// incremental detokenizer. Nothing else here is meant to be imported from outside this folder.

export type { DecodeOptions, EncodeOptions, PreTokenizer, Tokenizer, TokenizerSpec } from "./types.js";
export { TokenType } from "./types.js";
export { createTokenizer } from "./tokenizer.js";
export { createDetokenizer, type Detokenizer } from "./detokenizer.js";
export { loadLlama2cTokenizer, parseLlama2cTokenizer } from "./llama2c_tokenizer.js";
export { ggufTokenizerSpec, tokenizerFromGguf, tokenizerToGgufMetadata } from "./gguf_tokenizer.js";
export { hfTokenizerSpec, tokenizerFromHfJson } from "./hf_tokenizer_read.js";
export { tokenizerToHfConfig, tokenizerToHfJson } from "./hf_tokenizer_write.js";
export { charTokenizerSpec } from "./char_spec.js";
export { trainBpe, type BpeTrainOptions, type BpeTrainResult } from "./bpe_train.js";
