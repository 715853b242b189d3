// hf_tokenizer_write.ts: a tokenizer as Hugging Face files: tokenizer.json (a BPE model; Llama 2's
// layout for SentencePiece vocabularies, GPT-2's for byte-level ones) and the special-token fields of
// tokenizer_config.json, such that hf_tokenizer_read.ts (and the tokenizers library) loads them back
// to the same ids. A score-based vocabulary gets merges derived from its scores (spm_merges.ts).
// It does not write files or add a chat template (the HF folder writer does).

import { mergesFromScores } from "./spm_merges.js";
import { TokenType, type Tokenizer, type TokenizerSpec } from "./types.js";

/** tokenizer.json as a plain object (JSON.stringify it). */
export function tokenizerToHfJson(tok: Tokenizer): Record<string, unknown> {
  const s = tok.spec;
  // NOTE: no prototype, so pieces such as "toString" or "__proto__" are plain keys.
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const added: Record<string, unknown>[] = [];
  s.tokens.forEach((piece, id) => {
    const type = s.types[id];
    if (type === TokenType.control || type === TokenType.unknown || type === TokenType.userDefined) {
      const special = type !== TokenType.userDefined;
      added.push({ id, content: piece, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
    }
    if (!Object.hasOwn(vocab, piece)) vocab[piece] = id;
  });
  const unk = s.unkId !== undefined ? s.tokens[s.unkId]! : null;
  const merges = s.merges ?? mergesFromScores(s);
  const spm = s.model === "spm";
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: spm ? spmNormalizer(s) : null,
    pre_tokenizer: spm ? spmPreTokenizer(s) : { type: "ByteLevel", add_prefix_space: s.addSpacePrefix !== "never", trim_offsets: true, use_regex: s.preTokenizer === "gpt2" },
    post_processor: postProcessor(s),
    decoder: spm
      ? {
          type: "Sequence",
          decoders: [
            { type: "Replace", pattern: { String: "▁" }, content: " " },
            { type: "ByteFallback" },
            { type: "Fuse" },
            ...(s.addSpacePrefix !== "never" ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : []),
          ],
        }
      : { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: spm,
      byte_fallback: spm,
      vocab,
      merges,
    },
  };
}

/** The special-token fields of tokenizer_config.json. */
export function tokenizerToHfConfig(tok: Tokenizer): Record<string, unknown> {
  const s = tok.spec;
  const piece = (id: number | undefined): string | null => (id === undefined ? null : s.tokens[id]!);
  return {
    tokenizer_class: s.model === "spm" ? "LlamaTokenizerFast" : "GPT2TokenizerFast",
    add_bos_token: s.addBos,
    add_eos_token: s.addEos,
    bos_token: piece(s.bosId),
    eos_token: piece(s.eosId),
    unk_token: piece(s.unkId),
    pad_token: piece(s.padId),
    clean_up_tokenization_spaces: false,
  };
}

function spmNormalizer(s: TokenizerSpec): Record<string, unknown> {
  const replace = { type: "Replace", pattern: { String: " " }, content: "▁" };
  // NOTE: Llama 2's layout: prefix "▁" to every segment unconditionally (like llama.cpp), then spaces.
  if (s.addSpacePrefix !== "always") return replace;
  return { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, replace] };
}

function spmPreTokenizer(s: TokenizerSpec): Record<string, unknown> | null {
  if (s.addSpacePrefix !== "first" && s.preTokenizer === "none") return null;
  const scheme = s.addSpacePrefix === "first" ? "first" : "never";
  return { type: "Metaspace", replacement: "▁", prepend_scheme: scheme, split: s.preTokenizer === "metaspace" };
}

function postProcessor(s: TokenizerSpec): Record<string, unknown> | null {
  if (!s.addBos && !s.addEos) return null;
  const special = (id: number) => ({ SpecialToken: { id: s.tokens[id]!, type_id: 0 } });
  const seq = (id: "A" | "B", typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const bos = s.addBos ? [special(s.bosId!)] : [];
  const eos = s.addEos ? [special(s.eosId!)] : [];
  const specialTokens: Record<string, unknown> = {};
  for (const id of [...(s.addBos ? [s.bosId!] : []), ...(s.addEos ? [s.eosId!] : [])]) {
    specialTokens[s.tokens[id]!] = { id: s.tokens[id]!, ids: [id], tokens: [s.tokens[id]!] };
  }
  return {
    type: "TemplateProcessing",
    single: [...bos, seq("A", 0), ...eos],
    pair: [...bos, seq("A", 0), ...eos, ...bos, seq("B", 1), ...eos],
    special_tokens: specialTokens,
  };
}
