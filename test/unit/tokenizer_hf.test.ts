// Hugging Face tokenizer.json: the bundled SentencePiece vocabulary written as Llama 2's layout and
// read back to the same ids; a small GPT-2-style byte-level file (merges as pairs, an added special
// token); tokenizer_config.json overrides; and errors that name the field.

import { describe, expect, it } from "vitest";
import { BYTE_TO_CHAR } from "../../src/models/tokenizers/byte_level.js";
import { loadLlama2cTokenizer, tokenizerFromHfJson, tokenizerToHfConfig, tokenizerToHfJson, TokenType } from "../../src/models/tokenizers/index.js";

const TOK512 = new URL("../../models/stories260K/tok512.bin", import.meta.url).pathname;
const TEXTS = [
  "Once upon a time, there was a little girl named Lily.\nShe said, \"Hi!\"",
  "  two leading spaces, tabs\t\tand 日本語 — “quotes” é",
  "",
  " ",
];

describe("tokenizer.json from a SentencePiece vocabulary (tok512)", () => {
  const tok = loadLlama2cTokenizer(TOK512);
  const json = JSON.parse(JSON.stringify(tokenizerToHfJson(tok))) as Record<string, any>;
  const config = JSON.parse(JSON.stringify(tokenizerToHfConfig(tok))) as Record<string, unknown>;

  it("uses Llama 2's layout", () => {
    expect(json.model).toMatchObject({ type: "BPE", byte_fallback: true, fuse_unk: true, unk_token: "<unk>" });
    expect(Object.keys(json.model.vocab).length).toBe(512);
    expect(json.model.merges[0]).toBe("▁ t"); // 259 "▁t" is the best-scored piece
    expect(json.normalizer.normalizers.map((n: { type: string }) => n.type)).toEqual(["Prepend", "Replace"]);
    expect(json.added_tokens.map((a: { content: string }) => a.content)).toEqual(["<unk>", "<s>", "</s>"]);
    expect(json.post_processor.single[0]).toEqual({ SpecialToken: { id: "<s>", type_id: 0 } });
    expect(config).toMatchObject({ add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>" });
  });

  it("loads back with the same vocabulary, special tokens and ids", () => {
    for (const back of [tokenizerFromHfJson(json, config), tokenizerFromHfJson(json)]) {
      expect(back.spec.tokens).toEqual(tok.spec.tokens);
      expect(back.spec.types).toEqual(tok.spec.types);
      expect([back.bosId, back.eosId, back.spec.unkId, back.spec.addBos, back.spec.addEos]).toEqual([1, 2, 0, true, false]);
      for (const text of TEXTS) {
        expect(back.encode(text)).toEqual(tok.encode(text));
        expect(back.decode(back.encode(text))).toBe(text);
      }
    }
  });

  it("takes BOS/EOS settings from tokenizer_config.json", () => {
    const back = tokenizerFromHfJson(json, { ...config, add_bos_token: false, add_eos_token: true, eos_token: { content: "<unk>" } });
    expect(back.encode("Once")).toEqual([403, 0]);
  });
});

describe("tokenizer.json, GPT-2 byte-level BPE", () => {
  // A tiny vocabulary: the 256 byte characters, a few merges, and <|endoftext|>.
  const merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["Ġ", "c"], ["a", "t"], ["Ġc", "at"]];
  const pieces = [...BYTE_TO_CHAR, ...merges.map(([l, r]) => l! + r!)];
  const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
  const eot = pieces.length;
  const json = {
    version: "1.0",
    added_tokens: [{ id: eot, content: "<|endoftext|>", special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel" },
    decoder: { type: "ByteLevel" },
    model: { type: "BPE", vocab, merges, byte_fallback: false, continuing_subword_prefix: "", end_of_word_suffix: "" },
  };
  const tok = tokenizerFromHfJson(json);
  const id = (p: string) => vocab[p]!;

  it("merges by rank inside GPT-2 pre-tokenizer words", () => {
    expect(tok.spec.model).toBe("bpe");
    expect(tok.encode("the cat")).toEqual([id("t"), id("he"), id("Ġcat")]);
    expect(tok.encode(" the\n")).toEqual([id("Ġthe"), id("Ċ")]);
    expect(tok.decode(tok.encode("naïve 🦙 the cat\n"))).toBe("naïve 🦙 the cat\n");
  });

  it("treats <|endoftext|> as BOS/EOS, matched in text only with allowSpecial", () => {
    expect([tok.bosId, tok.eosId, tok.spec.addBos, tok.spec.types[eot]]).toEqual([eot, eot, false, TokenType.control]);
    expect(tok.encode("a<|endoftext|>", { allowSpecial: true })).toEqual([id("a"), eot]);
    expect(tok.encode("a<|endoftext|>")).not.toContain(eot);
    expect(tok.decode([id("a"), eot])).toBe("a");
    expect(tok.decode([id("a"), eot], { special: true })).toBe("a<|endoftext|>");
  });

  it("round-trips through tokenizerToHfJson", () => {
    const back = tokenizerFromHfJson(JSON.parse(JSON.stringify(tokenizerToHfJson(tok))));
    expect(back.spec).toEqual(tok.spec);
  });

  it("names the field it cannot read", () => {
    const withModel = (model: object) => ({ ...json, model: { ...json.model, ...model } });
    expect(() => tokenizerFromHfJson(withModel({ type: "Unigram" }))).toThrow(/tokenizer\.json: model\.type: 'Unigram' is not supported/);
    expect(() => tokenizerFromHfJson({ ...json, normalizer: { type: "NFC" } })).toThrow(/tokenizer\.json: normalizer\[0\]: normalizer \{"type":"NFC"\} is not supported/);
    expect(() => tokenizerFromHfJson({ ...json, pre_tokenizer: { type: "Split" } })).toThrow(/pre_tokenizer\[0\]: pre-tokenizer 'Split' is not supported/);
    expect(() => tokenizerFromHfJson(withModel({ vocab: { ...vocab, x: eot + 5 } }))).toThrow(/model\.vocab: id \d+ of "x" is not an integer in 0\.\.\d+/);
    expect(() => tokenizerFromHfJson(withModel({ merges: [["Ġ", "zz"]] }))).toThrow(/tokenizer\.json\): merge 0 \("Ġ zz"\) uses "zz", which is not in the vocabulary/);
    expect(() => tokenizerFromHfJson(withModel({ merges: [7] }))).toThrow(/model\.merges\[0\]: expected "left right"/);
  });
});
