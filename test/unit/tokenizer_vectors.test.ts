// llama.cpp's tokenizer test vectors (tests/test-tokenizer-0): every .inp string must encode to the
// .out ids, with no BOS/EOS, for the Llama SentencePiece and the GPT-2 byte-level vocabularies; and the
// same after the vocabulary goes through GGUF metadata and tokenizer.json and back. The files are in
// test/fixtures/ggml-vocab (PROVENANCE.md there).

import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { readGguf } from "../../src/models/formats/gguf.js";
import { tokenizerFromGguf, tokenizerFromHfJson, tokenizerToGgufMetadata, tokenizerToHfConfig, tokenizerToHfJson, type Tokenizer } from "../../src/models/tokenizers/index.js";
import { fixture } from "../helpers/fixtures.js";

interface Vectors {
  readonly inputs: string[];
  readonly expected: number[][];
}

function readVectors(gguf: string): Vectors {
  // NOTE: llama.cpp splits .inp on "\n__ggml_vocab_test__\n"; the text after the last marker is not a test.
  const inputs = readFileSync(gguf + ".inp", "utf8").split("\n__ggml_vocab_test__\n");
  inputs.pop();
  const lines = readFileSync(gguf + ".out", "utf8").split("\n");
  const expected = inputs.map((_, i) => (lines[i] ?? "").trim().split(" ").filter((s) => s !== "").map(Number));
  return { inputs, expected };
}

function failures(tok: Tokenizer, v: Vectors): string[] {
  const out: string[] = [];
  v.inputs.forEach((text, i) => {
    const got = tok.encode(text, { addBos: false, addEos: false });
    if (got.join(" ") !== v.expected[i]!.join(" ")) out.push(`#${i} ${JSON.stringify(text)}: want ${v.expected[i]!.join(" ")}, got ${got.join(" ")}`);
  });
  return out;
}

const hfRoundTrip = (tok: Tokenizer): Tokenizer =>
  tokenizerFromHfJson(JSON.parse(JSON.stringify(tokenizerToHfJson(tok))), JSON.parse(JSON.stringify(tokenizerToHfConfig(tok))));

for (const name of ["ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"]) {
  const path = fixture(`ggml-vocab/${name}`);
  describe(`llama.cpp test vectors: ${name}`, () => {
    let tok: Tokenizer;
    let vectors: Vectors;
    beforeAll(() => {
      tok = tokenizerFromGguf(readGguf(path).metadata, path);
      vectors = readVectors(path);
    });

    it("has the 46 test strings", () => {
      expect(vectors.inputs.length).toBe(46);
    });
    it("encodes every string to the expected ids", () => {
      expect(failures(tok, vectors)).toEqual([]);
    });
    it("decodes every encoding back to its string", () => {
      const bad = vectors.inputs.filter((text) => tok.decode(tok.encode(text, { addBos: false })) !== text);
      expect(bad).toEqual([]);
    });
    it("gives the same ids after a GGUF metadata round trip", () => {
      const back = tokenizerFromGguf(tokenizerToGgufMetadata(tok));
      expect(back.spec).toEqual(tok.spec);
      expect(failures(back, vectors)).toEqual([]);
    });
    it("gives the same ids after a tokenizer.json round trip", () => {
      const back = hfRoundTrip(tok);
      expect(back.vocabSize).toBe(tok.vocabSize);
      expect([back.bosId, back.eosId, back.spec.addBos]).toEqual([tok.bosId, tok.eosId, tok.spec.addBos]);
      expect(failures(back, vectors)).toEqual([]);
      expect(failures(tokenizerFromGguf(tokenizerToGgufMetadata(back)), vectors)).toEqual([]);
    });
  });
}
