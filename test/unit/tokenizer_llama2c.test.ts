// The bundled stories260K tokenizer (llama2.c tok512.bin): the ids of the reference prompt, the
// reference text round trip, BOS/EOS and special-token options, and clear errors for bad files.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadLlama2cTokenizer, parseLlama2cTokenizer, TokenType } from "../../src/models/tokenizers/index.js";

const TOK512 = new URL("../../models/stories260K/tok512.bin", import.meta.url).pathname;
const REFERENCE =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";

describe("llama2.c tokenizer (tok512.bin)", () => {
  const tok = loadLlama2cTokenizer(TOK512, 512);

  it("reads 512 tokens with SentencePiece spellings", () => {
    expect(tok.vocabSize).toBe(512);
    expect([tok.bosId, tok.eosId, tok.spec.unkId]).toEqual([1, 2, 0]);
    expect([0, 1, 2, 13, 259, 403, 410].map((id) => tok.tokenToPiece(id))).toEqual(["<unk>", "<s>", "</s>", "<0x0A>", "▁t", "▁Once", "▁"]);
    expect([0, 1, 13, 403].map((id) => tok.spec.types[id])).toEqual([TokenType.unknown, TokenType.control, TokenType.byte, TokenType.normal]);
    expect(tok.pieceToToken("▁upon")).toBe(407);
  });

  it('encodes "Once upon a time" as llama2.c does: BOS, then ▁Once ▁upon ▁a ▁time', () => {
    expect(tok.encode("Once upon a time")).toEqual([1, 403, 407, 261, 378]);
    expect(tok.encode("Once upon a time", { addBos: false, addEos: true })).toEqual([403, 407, 261, 378, 2]);
    expect(tok.encode("")).toEqual([1]);
  });

  it("round-trips the reference text, newline byte token included", () => {
    const ids = tok.encode(REFERENCE);
    expect(ids).toContain(13); // "\n" has no piece of its own: byte fallback <0x0A>
    expect(tok.decode(ids)).toBe(REFERENCE);
    expect(tok.decode(ids, { special: true })).toBe("<s> " + REFERENCE);
  });

  it("parses control-token text only when asked", () => {
    expect(tok.encode("<s>Hi", { addBos: false, allowSpecial: true })).toEqual([1, ...tok.encode("Hi", { addBos: false })]);
    expect(tok.encode("<s>", { addBos: false })).not.toContain(1);
  });

  it("falls back to bytes for characters outside the vocabulary", () => {
    const ids = tok.encode("日", { addBos: false });
    expect(ids.map((id) => tok.tokenToPiece(id))).toEqual(["▁", "<0xE6>", "<0x97>", "<0xA5>"]);
    expect(tok.decode(ids)).toBe("日");
  });

  it("names the file and field for bad files", () => {
    const bytes = readFileSync(TOK512);
    expect(() => parseLlama2cTokenizer(bytes.subarray(0, 100), "tok.bin", 512)).toThrow(/tok\.bin: token \d+.*truncated/);
    expect(() => parseLlama2cTokenizer(bytes, "tok.bin", 500)).toThrow(/tok\.bin: vocab size: the model has 500 tokens but the file has \d+ more bytes/);
    const bad = Uint8Array.from(bytes);
    new DataView(bad.buffer).setInt32(0, -3, true);
    expect(() => parseLlama2cTokenizer(bad, "tok.bin")).toThrow(/tok\.bin: max_token_length: -3/);
    expect(() => tok.decode([512])).toThrow(/token id 512 is out of range for a vocabulary of 512 tokens/);
  });
});

/** run.c's encode(), ported as written: per-character lookup (or bytes + 3), then greedy best-score merges. */
function llama2cEncode(pieces: readonly string[], scores: readonly number[], text: string): number[] {
  const lookup = new Map(pieces.map((p, i) => [p, i]));
  const tokens: number[] = [1];
  if (text !== "") tokens.push(lookup.get(" ")!);
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) tokens.push(id);
    else for (const b of new TextEncoder().encode(ch)) tokens.push(b + 3);
  }
  for (;;) {
    let best = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup.get(pieces[tokens[i]!]! + pieces[tokens[i + 1]!]!);
      if (id !== undefined && scores[id]! > best) [best, bestId, bestIdx] = [scores[id]!, id, i];
    }
    if (bestIdx === -1) return tokens;
    tokens.splice(bestIdx, 2, bestId);
  }
}

describe("agreement with llama2.c's own encoder", () => {
  it("gives run.c's ids on varied text", () => {
    const tok = loadLlama2cTokenizer(TOK512);
    const raw = tok.spec.tokens.map((p, i) => (i === 1 ? "\n<s>\n" : i === 2 ? "\n</s>\n" : p.replaceAll("▁", " ")));
    const texts = [REFERENCE, "Once upon a time", "  Tim and Timmy were   happy.\n\n\"Hi!\" said Lily’s mom… é ñ 日本 🦙", "x", " ", "Lily Lily Lily"];
    for (const text of texts) expect(tok.encode(text)).toEqual(llama2cEncode(raw, tok.spec.scores!, text));
  });
});
