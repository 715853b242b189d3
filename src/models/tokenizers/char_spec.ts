// char_spec.ts: a character-level vocabulary (nanoGPT's shakespeare_char: one token per distinct
// character, no BOS/EOS) as a TokenizerSpec, so that it can be written as tokenizer.json and as GGUF
// metadata like any other vocabulary and read back to the same ids. It is a SentencePiece-style
// vocabulary with no merges: every character is its own piece, a space is spelled "▁" (so the
// tokenizers library's Replace normalizer and llama.cpp's SPM tokenizer map " " to it), no space prefix.
// It does not build the vocabulary from text (train/char_vocab.ts and train/data do).

import { TokenType, type TokenizerSpec } from "./types.js";

const SPACE_PIECE = "▁";

/** `chars`: token id -> character (one code point each, distinct). */
export function charTokenizerSpec(chars: readonly string[]): TokenizerSpec {
  if (chars.length === 0) throw new Error("char tokenizer: the vocabulary is empty");
  const seen = new Set<string>();
  chars.forEach((c, i) => {
    if (Array.from(c).length !== 1) throw new Error(`char tokenizer: token ${i} (${JSON.stringify(c)}) is not one character`);
    if (seen.has(c)) throw new Error(`char tokenizer: character ${JSON.stringify(c)} appears twice`);
    seen.add(c);
  });
  // NOTE: "▁" stands for the space; a vocabulary with both would make two ids one piece.
  if (seen.has(SPACE_PIECE) && seen.has(" ")) throw new Error(`char tokenizer: the vocabulary has both " " and "${SPACE_PIECE}", which SentencePiece-style files spell the same`);
  return {
    model: "spm",
    tokens: chars.map((c) => (c === " " ? SPACE_PIECE : c)),
    types: chars.map(() => TokenType.normal),
    merges: [],
    addBos: false,
    addEos: false,
    addSpacePrefix: "never",
    preTokenizer: "none",
  };
}
