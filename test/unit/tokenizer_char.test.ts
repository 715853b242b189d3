// A character vocabulary (nanoGPT's shakespeare_char, no BOS/EOS) as a tokenizer (charTokenizerSpec):
// every character is its own id, through tokenizer.json and through GGUF metadata, and a GGUF
// SentencePiece vocabulary that says "no BOS/EOS" is not given llama.cpp's default ids 1 and 2 (which
// would end generation at an ordinary character). An absent key still gets the defaults.

import { describe, expect, it } from "vitest";
import { charTokenizerSpec, createTokenizer, tokenizerFromGguf, tokenizerFromHfJson, tokenizerToGgufMetadata, tokenizerToHfConfig, tokenizerToHfJson } from "../../src/models/index.js";
import { charVocab } from "../../src/train/index.js";

const TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\tÉté — naïve 🙂 café!";
const vocab = charVocab(TEXT);
const tok = createTokenizer(charTokenizerSpec(vocab.chars), "chars");

describe("character vocabulary as a tokenizer", () => {
  it("encodes each character to its vocabulary id and decodes back", () => {
    expect(tok.encode(TEXT)).toEqual(Array.from(vocab.encode(TEXT)));
    expect(tok.decode(tok.encode(TEXT))).toBe(TEXT);
    expect(tok.bosId).toBeUndefined();
    expect(tok.eosId).toBeUndefined();
  });

  it("round-trips through tokenizer.json (+ tokenizer_config.json) to the same ids", () => {
    const back = tokenizerFromHfJson(JSON.parse(JSON.stringify(tokenizerToHfJson(tok))), JSON.parse(JSON.stringify(tokenizerToHfConfig(tok))), "tokenizer.json");
    expect(back.encode(TEXT)).toEqual(Array.from(vocab.encode(TEXT)));
    expect(back.decode(back.encode(TEXT))).toBe(TEXT);
    expect(back.eosId).toBeUndefined();
  });

  it("round-trips through GGUF metadata with no BOS/EOS (written as llama.cpp's 'no token')", () => {
    const meta = tokenizerToGgufMetadata(tok);
    expect(meta.get("tokenizer.ggml.eos_token_id")).toBe(0xffffffff);
    const back = tokenizerFromGguf(meta, "x.gguf");
    expect(back.encode(TEXT)).toEqual(Array.from(vocab.encode(TEXT)));
    expect(back.decode(back.encode(TEXT))).toBe(TEXT);
    expect([back.bosId, back.eosId, back.spec.unkId]).toEqual([undefined, undefined, undefined]);
    // A file without the keys at all still gets llama.cpp's SentencePiece defaults.
    const bare = new Map(meta);
    for (const k of ["bos_token_id", "eos_token_id", "unknown_token_id"]) bare.delete(`tokenizer.ggml.${k}`);
    const d = tokenizerFromGguf(bare, "x.gguf");
    expect([d.bosId, d.eosId, d.spec.unkId]).toEqual([1, 2, 0]);
  });

  it("refuses a vocabulary it cannot spell", () => {
    expect(() => charTokenizerSpec([])).toThrow(/the vocabulary is empty/);
    expect(() => charTokenizerSpec(["a", "a"])).toThrow(/character "a" appears twice/);
    expect(() => charTokenizerSpec(["ab"])).toThrow(/token 0 \("ab"\) is not one character/);
    expect(() => charTokenizerSpec([" ", "▁"])).toThrow(/both " " and "▁"/);
  });
});
