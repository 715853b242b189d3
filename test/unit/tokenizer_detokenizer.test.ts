// Incremental detokenization: text comes out as tokens arrive, never half a UTF-8 character, whether
// a character is split across SentencePiece byte-fallback tokens or across byte-level BPE tokens, and
// the pieces joined equal a one-shot decode.

import { describe, expect, it } from "vitest";
import { readGguf } from "../../src/models/formats/gguf.js";
import { createDetokenizer, loadLlama2cTokenizer, tokenizerFromGguf, type Tokenizer } from "../../src/models/tokenizers/index.js";
import { VOCAB_GPT2_GGUF } from "../helpers/fixtures.js";

const TOK512 = new URL("../../models/stories260K/tok512.bin", import.meta.url).pathname;

/** Each push's output, then flush's. */
function stream(tok: Tokenizer, ids: readonly number[], stripLeadingSpace?: boolean): string[] {
  const detok = createDetokenizer(tok, stripLeadingSpace === undefined ? {} : { stripLeadingSpace });
  return [...ids.map((id) => detok.push(id)), detok.flush()];
}

describe("incremental detokenizer", () => {
  const tok = loadLlama2cTokenizer(TOK512);

  it("holds back a character split across byte-fallback tokens", () => {
    const ids = tok.encode("a日€b", { addBos: false });
    const parts = stream(tok, ids);
    expect(parts.join("")).toBe("a日€b");
    expect(parts).toContain("日");
    expect(parts).toContain("€"); // in the vocabulary, but also checks nothing leaked before it
    expect(parts.some((p) => p.includes("\uFFFD"))).toBe(false);
    const byteIds = tok.encode("日", { addBos: false }).slice(1); // <0xE6> <0x97> <0xA5>
    expect(stream(tok, byteIds)).toEqual(["", "", "日", ""]);
  });

  it("drops the SentencePiece space before the first word only", () => {
    const ids = tok.encode("Once upon a time");
    expect(stream(tok, ids)).toEqual(["", "Once", " upon", " a", " time", ""]);
    expect(stream(tok, ids.slice(2), false)).toEqual([" upon", " a", " time", ""]);
    expect(tok.decode(ids.slice(2), { stripLeadingSpace: false })).toBe(" upon a time");
  });

  it("renders an incomplete character at the end as U+FFFD on flush", () => {
    const e6 = tok.pieceToToken("<0xE6>")!;
    const detok = createDetokenizer(tok);
    expect(detok.push(e6)).toBe("");
    expect(detok.flush()).toBe("\uFFFD");
    expect(tok.decode([e6, tok.pieceToToken("▁a")!])).toBe("\uFFFD a");
  });

  it("holds back characters split across byte-level BPE tokens", () => {
    const bpe = tokenizerFromGguf(readGguf(VOCAB_GPT2_GGUF).metadata, VOCAB_GPT2_GGUF);
    const text = "Hi 🦙🚀 ok — 日本語";
    const ids = bpe.encode(text);
    const parts = stream(bpe, ids);
    expect(parts.join("")).toBe(text);
    expect(parts.some((p) => p.includes("\uFFFD"))).toBe(false);
    // some token ends inside a character, so some push had nothing complete to emit
    expect(parts.slice(0, -1).filter((p) => p === "").length).toBeGreaterThan(0);
    expect(bpe.decode(ids)).toBe(text);
  });
});
