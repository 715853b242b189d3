// utf8.ts: strict UTF-8 decoding for corpora, so that a file with invalid bytes is refused with the
// byte offset of the first bad sequence instead of being tokenized with U+FFFD replacement characters.
// It does not read files: corpus.ts does.

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The text of `bytes`; throws naming `source` and the offset of the first invalid byte. */
export function decodeUtf8Strict(bytes: Uint8Array, source: string): string {
  try {
    return fatal.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const shown = Array.from(bytes.subarray(at, at + 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(`${source}: not valid UTF-8 at byte offset ${at} (bytes ${shown}); kiln reads UTF-8 text only`);
  }
}

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence; -1 if none. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // NOTE: the well-formed table of the Unicode standard (Table 3-7): no overlongs, no surrogates, <= U+10FFFF.
    let n: number, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) [n, lo, hi] = [2, c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf];
    else if (c >= 0xf0 && c <= 0xf4) [n, lo, hi] = [3, c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf];
    else return i;
    if (i + n >= b.length) return i; // truncated at the end
    if (b[i + 1]! < lo || b[i + 1]! > hi) return i;
    for (let k = 2; k <= n; k++) if (b[i + k]! < 0x80 || b[i + k]! > 0xbf) return i;
    i += n + 1;
  }
  return -1;
}
