// types.ts (tokenizers) owns the plain data every tokenizer is built from (TokenizerSpec) and the
// Tokenizer interface the models, the CLI and the serving layer use. It does not tokenize: see
// tokenizer.ts. Readers (llama2c_tokenizer.ts, gguf_tokenizer.ts, hf_tokenizer_read.ts) produce a spec;
// writers (gguf_tokenizer.ts, hf_tokenizer_write.ts) turn one back into a file's fields.

/** Token types, numbered as GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type). */
export const TokenType = {
  undefined: 0,
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/**
 * How text segments are split before merging:
 * - "none": each segment (text between special tokens) is one word;
 * - "gpt2": GPT-2's regex (contractions, letters, digits, punctuation, whitespace runs);
 * - "metaspace": split before every "▁" (Hugging Face Metaspace with split: true).
 */
export type PreTokenizer = "none" | "gpt2" | "metaspace";

/**
 * Everything a tokenizer is, as plain data (what a converter copies between formats).
 * - model "spm": SentencePiece pieces ("▁" for a space, "<0x0A>" byte-fallback tokens). Merges are
 *   score-based (llama.cpp's llm_tokenizer_spm) unless `merges` is given (a Hugging Face BPE model
 *   with byte_fallback), in which case they are rank-based.
 * - model "bpe": GPT-2 byte-level pieces (every byte mapped to a printable character, "Ġ" for a
 *   space), rank-based merges.
 */
export interface TokenizerSpec {
  readonly model: "spm" | "bpe";
  readonly tokens: readonly string[];
  /** One TokenType per token. */
  readonly types: readonly number[];
  /** spm: one merge priority per token (higher merges first). */
  readonly scores?: readonly number[];
  /** Ranked merges "left right" (first = merged first). Required for "bpe". */
  readonly merges?: readonly string[];
  readonly bosId?: number;
  readonly eosId?: number;
  readonly unkId?: number;
  readonly padId?: number;
  /** Whether encode() adds BOS / EOS by default. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  /**
   * Prefix a space to text segments (SentencePiece's add_dummy_prefix; llama.cpp's add_space_prefix):
   * "always": every segment (the start, and text after a special token), "first": only a segment at
   * the start of the text, "never". For "bpe" (Hugging Face ByteLevel add_prefix_space) the space is
   * added only when the segment does not already start with one.
   */
  readonly addSpacePrefix: "always" | "first" | "never";
  readonly preTokenizer: PreTokenizer;
}

export interface EncodeOptions {
  /** Prepend BOS. Default: the tokenizer's addBos (true for Llama and llama2.c vocabularies, false for GPT-2). */
  readonly addBos?: boolean;
  /** Append EOS. Default: the tokenizer's addEos. */
  readonly addEos?: boolean;
  /**
   * Turn the text of control tokens (e.g. "<s>", "<|endoftext|>") into their ids (llama.cpp's
   * parse_special). Default false: such text is tokenized as plain text. User-defined tokens are
   * always matched, as llama.cpp and Hugging Face do.
   */
  readonly allowSpecial?: boolean;
}

export interface DecodeOptions {
  /** Render control and unknown tokens as their text (default false: they render as nothing). */
  readonly special?: boolean;
  /**
   * Drop the space that the SentencePiece prefix put before the first word (default true for spm
   * tokenizers that add a space prefix). Pass false when decoding a continuation of earlier text.
   */
  readonly stripLeadingSpace?: boolean;
}

export interface Tokenizer {
  readonly spec: TokenizerSpec;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Control, user-defined and unknown tokens by text. */
  readonly specialTokens: ReadonlyMap<string, number>;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The token as its vocabulary spells it ("▁Once", "Ġthe", "<0x0A>", "<s>"). */
  tokenToPiece(id: number): string;
  /** The bytes a token contributes to decoded text (empty for control tokens unless `special`). */
  tokenBytes(id: number, special?: boolean): Uint8Array;
  /** Token id of a piece, or undefined. */
  pieceToToken(piece: string): number | undefined;
}
