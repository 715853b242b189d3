// train_data_bpe.test.ts: the byte-level BPE trainer (src/models/tokenizers/bpe_train.ts). Its merges
// equal a naive trainer's that recounts every pair after each merge; the tokenizer.json it becomes is
// read back by kiln's Hugging Face reader, which encodes the corpus to exactly the ids training left each
// word as, and decodes the whole TinyStories sample (mojibake included) back to its text.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BYTE_TO_CHAR, splitGpt2, toByteChars } from "../../src/models/tokenizers/byte_level.js";
import { createTokenizer, tokenizerFromHfJson, tokenizerToHfJson, trainBpe } from "../../src/models/tokenizers/index.js";
import { repoFile } from "../helpers/fixtures.js";

const STORIES = readFileSync(repoFile("data/tinystories-sample/tiny_stories.txt"), "utf8");
const SHAKESPEARE = readFileSync(repoFile("data/tinyshakespeare/input.txt"), "utf8");

/** The textbook algorithm: count every adjacent pair of every word, merge the best, repeat. */
function naiveMerges(text: string, merges: number): string[] {
  const words = new Map<string, number>();
  for (const w of splitGpt2(text)) words.set(w, (words.get(w) ?? 0) + 1);
  const ids = new Map(BYTE_TO_CHAR.map((c, b) => [c, 1 + b])); // id 0 is <|endoftext|>
  const pieces = ["<|endoftext|>", ...BYTE_TO_CHAR];
  const segs = [...words].map(([w, n]) => ({ n, s: toByteChars(w).map((c) => ids.get(c)!) }));
  const out: string[] = [];
  while (out.length < merges) {
    const counts = new Map<string, number>();
    for (const { n, s } of segs) for (let i = 0; i + 1 < s.length; i++) counts.set(`${s[i]},${s[i + 1]}`, (counts.get(`${s[i]},${s[i + 1]}`) ?? 0) + n);
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [l, r] = k.split(",").map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best !== undefined && (l < best[0] || (l === best[0] && r < best[1])))) [best, bestCount] = [[l, r], c];
    }
    if (best === undefined || bestCount < 2) break;
    const id = pieces.length;
    pieces.push(pieces[best[0]]! + pieces[best[1]]!);
    out.push(`${pieces[best[0]]} ${pieces[best[1]]}`);
    for (const seg of segs) {
      const s: number[] = [];
      for (let i = 0; i < seg.s.length; i++) {
        if (i + 1 < seg.s.length && seg.s[i] === best[0] && seg.s[i + 1] === best[1]) s.push(id), i++;
        else s.push(seg.s[i]!);
      }
      seg.s = s;
    }
  }
  return out;
}

describe("byte-level BPE training", () => {
  it("learns the same merges, in the same order, as a naive full-recount trainer", () => {
    const text = SHAKESPEARE.slice(0, 20_000);
    const { spec } = trainBpe([text], { vocabSize: 257 + 150 });
    expect(spec.merges).toHaveLength(150);
    expect(spec.merges).toEqual(naiveMerges(text, 150));
  });

  it("writes a tokenizer.json in the HF schema that kiln's reader encodes exactly as training segmented the corpus", () => {
    const text = STORIES.slice(0, 150_000);
    const { spec, wordIds } = trainBpe([text], { vocabSize: 1200 });
    const json = JSON.parse(JSON.stringify(tokenizerToHfJson(createTokenizer(spec)))) as Record<string, any>;
    expect(json.model.type).toBe("BPE");
    expect(json.pre_tokenizer).toMatchObject({ type: "ByteLevel", add_prefix_space: false, use_regex: true });
    expect(json.decoder.type).toBe("ByteLevel");
    expect(json.added_tokens).toEqual([expect.objectContaining({ id: 0, content: "<|endoftext|>", special: true })]);
    expect(Object.keys(json.model.vocab)).toHaveLength(1200);
    expect(json.model.merges).toHaveLength(1200 - 257);

    const tok = tokenizerFromHfJson(json);
    expect(tok.vocabSize).toBe(1200);
    expect(tok.eosId).toBe(0);
    const expected = splitGpt2(text).flatMap((w) => wordIds.get(w)!);
    const ids = tok.encode(text);
    expect(ids.length).toBeLessThan(text.length / 2.5); // merges do compress
    expect(ids).toEqual(expected);
  });

  it("decode(encode(text)) gives back the whole TinyStories sample, mojibake included", () => {
    expect(STORIES).toContain("â€™");
    const { spec } = trainBpe([STORIES.slice(0, 100_000)], { vocabSize: 800 });
    const tok = tokenizerFromHfJson(JSON.parse(JSON.stringify(tokenizerToHfJson(createTokenizer(spec)))));
    expect(tok.decode(tok.encode(STORIES))).toBe(STORIES);
    const odd = "naïve ☃ 𝄞 emoji 🙂\r\n\ttabs  and   spaces\u0000";
    expect(tok.decode(tok.encode(odd))).toBe(odd);
  });

  it("keeps special tokens whole and out of merges, and is deterministic", () => {
    const text = "ab ab<|endoftext|>ab ab<|endoftext|>".repeat(50);
    const a = trainBpe([text], { vocabSize: 270 });
    const b = trainBpe([text], { vocabSize: 270 });
    expect(a.spec).toEqual(b.spec);
    expect(a.spec.tokens.slice(257).some((t) => t.includes("<") || t.includes("|"))).toBe(false);
    const tok = createTokenizer(a.spec);
    expect(tok.encode("ab<|endoftext|>", { allowSpecial: true }).at(-1)).toBe(0);
    // Without allowSpecial the text of a special token is ordinary text, never id 0.
    expect(tok.encode("<|endoftext|>")).not.toContain(0);
  });

  it("stops early when no pair is frequent enough, and refuses impossible sizes and empty text", () => {
    const { spec } = trainBpe(["abc abc"], { vocabSize: 5000 });
    expect(spec.tokens.length).toBeLessThan(5000);
    expect(spec.tokens.length).toBeGreaterThan(257);
    expect(() => trainBpe(["abc"], { vocabSize: 100 })).toThrow(/below 257/);
    expect(() => trainBpe(["<|endoftext|>"], { vocabSize: 300 })).toThrow(/no text/);
  });
});
