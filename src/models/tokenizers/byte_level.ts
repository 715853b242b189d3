// byte_level.ts: GPT-2's byte-level alphabet and pre-tokenizer. Every byte maps to one printable
// character (bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 upward,
// so a space is "Ġ" and a newline "Ċ"), and text is split into words by GPT-2's regex before merging.
// It does not merge or look up tokens: tokenizer.ts does.

/** byte -> character, as GPT-2's encoder.py bytes_to_unicode(). */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  return chars;
})();

/** character -> byte, the inverse of BYTE_TO_CHAR. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** GPT-2's pre-tokenizer regex (tiktoken "gpt2", Hugging Face ByteLevel use_regex, llama.cpp "gpt-2"). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export function splitGpt2(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}

const encoder = new TextEncoder();

/** The word's UTF-8 bytes as byte-level characters, one string per byte. */
export function toByteChars(word: string): string[] {
  const bytes = encoder.encode(word);
  const out = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = BYTE_TO_CHAR[bytes[i]!]!;
  return out;
}
