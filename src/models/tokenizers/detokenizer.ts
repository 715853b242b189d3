// detokenizer.ts: turns a stream of token ids into text as they arrive, emitting only whole UTF-8
// characters: a character split across byte-fallback tokens ("<0xE2>" "<0x96>" "<0x81>") or across
// byte-level BPE tokens is held back until its last byte comes. It also drops the space that a
// SentencePiece prefix put before the first word. It does not tokenize or sample.

import type { DecodeOptions, Tokenizer } from "./types.js";

export interface Detokenizer {
  /** The text that token completes (possibly empty). */
  push(id: number): string;
  /** What is left: an incomplete character at the end renders as U+FFFD. */
  flush(): string;
}

export function createDetokenizer(tok: Tokenizer, options: DecodeOptions = {}): Detokenizer {
  const special = options.special ?? false;
  // NOTE: llama.cpp, llama2.c and Hugging Face all strip the space of the first piece after BOS:
  // "▁Once" at the start of the text decodes to "Once", not " Once".
  let strip = options.stripLeadingSpace ?? (tok.spec.model === "spm" && tok.spec.addSpacePrefix !== "never");
  // NOTE: TextDecoder in stream mode holds an incomplete sequence until its remaining bytes arrive,
  // and turns invalid bytes into U+FFFD exactly as a one-shot decode of all bytes would.
  const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  return {
    push(id: number): string {
      let bytes = tok.tokenBytes(id, special);
      if (bytes.length === 0) return "";
      if (strip) {
        strip = false;
        if (bytes[0] === 0x20) bytes = bytes.subarray(1);
      }
      return decoder.decode(bytes, { stream: true });
    },
    flush(): string {
      return decoder.decode();
    },
  };
}
