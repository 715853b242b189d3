// llama2c_tokenizer.ts: reads a llama2.c tokenizer .bin (tokenizer.py's export: i32 max_token_length,
// then per token f32 score, i32 byte length, the UTF-8 bytes) into a SentencePiece TokenizerSpec.
// llama2.c stores pieces with "▁" already turned into " " and BOS/EOS as "\n<s>\n" / "\n</s>\n"; this
// turns them back into SentencePiece spellings so the vocabulary converts to GGUF and tokenizer.json
// unchanged. It does not read the model .bin (formats/llama2c.ts does).

import { requireNodeBuiltin } from "../../core/host.js";
import { FormatError } from "../formats/file_source.js";
import { parseBytePiece } from "./pieces.js";
import { createTokenizer } from "./tokenizer.js";
import { TokenType, type Tokenizer, type TokenizerSpec } from "./types.js";

/** llama2.c's fixed ids (run.c hard-codes them). */
const UNK = 0;
const BOS = 1;
const EOS = 2;

export function loadLlama2cTokenizer(path: string, vocabSize?: number): Tokenizer {
  return createTokenizer(parseLlama2cTokenizer(requireNodeBuiltin("node:fs", "reading a tokenizer by path").readFileSync(path), path, vocabSize), path);
}

/**
 * `vocabSize` is the model's (the file does not store it; llama2.c reads exactly that many tokens).
 * Without it, tokens are read to the end of the file.
 */
export function parseLlama2cTokenizer(bytes: Uint8Array, path: string, vocabSize?: number): TokenizerSpec {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  if (bytes.length < 4) throw new FormatError(path, "max_token_length", `file is ${bytes.length} bytes, too short for a llama2.c tokenizer`);
  const maxLen = view.getInt32(0, true);
  if (maxLen <= 0 || maxLen > 1024) throw new FormatError(path, "max_token_length", `${maxLen} is not in 1..1024 (not a llama2.c tokenizer?)`);
  const tokens: string[] = [];
  const scores: number[] = [];
  let at = 4;
  while (vocabSize === undefined ? at < bytes.length : tokens.length < vocabSize) {
    const i = tokens.length;
    if (at + 8 > bytes.length) throw new FormatError(path, `token ${i}`, `the file ends at byte ${bytes.length}, inside the token's header (truncated?)`);
    const score = view.getFloat32(at, true);
    const len = view.getInt32(at + 4, true);
    at += 8;
    if (len < 0 || len > maxLen) throw new FormatError(path, `token ${i} length`, `${len} is not in 0..${maxLen} (max_token_length)`);
    if (at + len > bytes.length) throw new FormatError(path, `token ${i}`, `needs bytes ${at}..${at + len} but the file has ${bytes.length} (truncated?)`);
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(at, at + len));
    } catch {
      throw new FormatError(path, `token ${i}`, "is not valid UTF-8");
    }
    at += len;
    tokens.push(text);
    scores.push(score);
  }
  if (vocabSize !== undefined && at !== bytes.length) {
    throw new FormatError(path, "vocab size", `the model has ${vocabSize} tokens but the file has ${bytes.length - at} more bytes after them`);
  }
  if (tokens.length <= EOS) throw new FormatError(path, "tokens", `${tokens.length} tokens; llama2.c needs at least <unk>, <s>, </s>`);
  const types = tokens.map((piece, id) => {
    if (id === UNK) return TokenType.unknown;
    if (id === BOS || id === EOS) return TokenType.control;
    return parseBytePiece(piece) !== undefined ? TokenType.byte : TokenType.normal;
  });
  const pieces = tokens.map((piece, id) => {
    if (id === BOS) return "<s>";
    if (id === EOS) return "</s>";
    return types[id] === TokenType.normal ? piece.replaceAll(" ", "▁") : piece;
  });
  return {
    model: "spm",
    tokens: pieces,
    types,
    scores,
    bosId: BOS,
    eosId: EOS,
    unkId: UNK,
    addBos: true,
    addEos: false,
    addSpacePrefix: "always",
    preTokenizer: "none",
  };
}
