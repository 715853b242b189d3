// char_vocab.ts: a character-level vocabulary (nanoGPT's shakespeare_char): the distinct characters of
// a text, sorted by code point, each its own token. Trained tokenizers (BPE) are train/data's; this
// is the vocabulary of the first training configuration, which needs nothing more.

export interface CharVocab {
  /** Token id -> character. */
  readonly chars: readonly string[];
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
}

export function charVocab(text: string): CharVocab {
  if (text.length === 0) throw new Error("charVocab: the text is empty");
  const chars = [...new Set(text)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const index = new Map(chars.map((c, i) => [c, i]));
  return {
    chars,
    encode(s: string): Int32Array {
      return Int32Array.from(s, (c) => {
        const id = index.get(c);
        if (id === undefined) throw new Error(`charVocab: character ${JSON.stringify(c)} is not in the vocabulary`);
        return id;
      });
    },
    decode: (ids) => Array.from(ids, (i) => chars[i] ?? "\uFFFD").join(""),
  };
}
