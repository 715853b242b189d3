// GGUF tokenizer metadata: the bundled vocabulary written as tokenizer.ggml.* keys with the types
// llama.cpp expects and read back unchanged; the tiny random Llama GGUF's vocabulary; and errors that
// name the key.

import { describe, expect, it } from "vitest";
import { readGguf } from "../../src/models/formats/gguf.js";
import { loadLlama2cTokenizer, tokenizerFromGguf, tokenizerToGgufMetadata } from "../../src/models/tokenizers/index.js";
import type { MetaValue } from "../../src/models/types.js";
import { TINY_GGUF } from "../helpers/fixtures.js";

const TOK512 = new URL("../../models/stories260K/tok512.bin", import.meta.url).pathname;

describe("GGUF tokenizer metadata", () => {
  const tok = loadLlama2cTokenizer(TOK512);
  const meta = tokenizerToGgufMetadata(tok);

  it("writes llama.cpp's keys and value types", () => {
    expect(meta.get("tokenizer.ggml.model")).toBe("llama");
    expect((meta.get("tokenizer.ggml.tokens") as string[])[403]).toBe("▁Once");
    expect(meta.get("tokenizer.ggml.scores")).toBeInstanceOf(Float32Array);
    expect(meta.get("tokenizer.ggml.token_type")).toBeInstanceOf(Int32Array);
    expect([meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id"), meta.get("tokenizer.ggml.add_bos_token")]).toEqual([1, 2, true]);
  });

  it("reads back the same tokenizer", () => {
    const back = tokenizerFromGguf(meta);
    expect(back.spec).toEqual(tok.spec);
    expect(back.encode("Once upon a time")).toEqual([1, 403, 407, 261, 378]);
  });

  it("names the key it cannot use", () => {
    const edit = (key: string, value: MetaValue | undefined): Map<string, MetaValue> => {
      const m = new Map(meta);
      if (value === undefined) m.delete(key);
      else m.set(key, value);
      return m;
    };
    expect(() => tokenizerFromGguf(edit("tokenizer.ggml.model", undefined), "x.gguf")).toThrow(/x\.gguf: metadata 'tokenizer\.ggml\.model': missing/);
    expect(() => tokenizerFromGguf(edit("tokenizer.ggml.model", "bert"), "x.gguf")).toThrow(/'bert' is not supported \(kiln reads 'llama' and 'gpt2' vocabularies\)/);
    expect(() => tokenizerFromGguf(edit("tokenizer.ggml.scores", new Float32Array(3)), "x.gguf")).toThrow(/x\.gguf: metadata 'tokenizer\.ggml\.scores': has 3 entries for 512 tokens/);
    expect(() => tokenizerFromGguf(edit("tokenizer.ggml.bos_token_id", 9999), "x.gguf")).toThrow(/'tokenizer\.ggml\.bos_token_id': token id 9999 is out of range for a vocabulary of 512 tokens/);
    expect(() => tokenizerFromGguf(edit("tokenizer.ggml.tokens", [1, 2]), "x.gguf")).toThrow(/'tokenizer\.ggml\.tokens': element 0 is a number, not a string/);
    const gpt2 = edit("tokenizer.ggml.model", "gpt2");
    expect(() => tokenizerFromGguf(gpt2, "x.gguf")).toThrow(/'tokenizer\.ggml\.merges': missing/);
    gpt2.set("tokenizer.ggml.pre", "llama-bpe");
    expect(() => tokenizerFromGguf(gpt2, "x.gguf")).toThrow(/'tokenizer\.ggml\.pre': pre-tokenizer 'llama-bpe' is not supported/);
  });

  it("reads the Llama 2 vocabulary of the tiny random GGUF", () => {
    const t = tokenizerFromGguf(readGguf(TINY_GGUF).metadata, TINY_GGUF);
    expect(t.vocabSize).toBe(32000);
    expect(t.encode("Hello world")).toEqual([1, 15043, 3186]);
    expect(t.decode([1, 15043, 3186, 2])).toBe("Hello world");
  });
});
