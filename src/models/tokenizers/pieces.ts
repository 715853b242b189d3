// pieces.ts: what one token contributes to decoded text, as bytes. SentencePiece pieces spell a space
// "▁" and single bytes "<0xAB>"; GPT-2 byte-level pieces spell every byte as one character
// (byte_level.ts). Control, unknown and unused tokens render as nothing unless asked for.
// It does not join pieces into text: tokenizer.ts and detokenizer.ts do.

import { assertNever } from "../../core/ops.js";
import { CHAR_TO_BYTE } from "./byte_level.js";
import { TokenType, type TokenizerSpec } from "./types.js";

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** The byte a SentencePiece byte-fallback piece ("<0x0A>") stands for, or undefined. */
export function parseBytePiece(piece: string): number | undefined {
  const m = BYTE_PIECE.exec(piece);
  return m === null ? undefined : parseInt(m[1]!, 16);
}

/** "<0x0A>" for 10: the spelling SentencePiece and llama.cpp use. */
export function bytePiece(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
}

export function pieceBytes(model: TokenizerSpec["model"], piece: string, type: number, special: boolean): Uint8Array {
  switch (type) {
    case TokenType.control:
    case TokenType.unknown:
    case TokenType.unused:
      return special ? encoder.encode(piece) : EMPTY;
    case TokenType.userDefined:
      return encoder.encode(model === "spm" ? piece.replaceAll("▁", " ") : piece);
    case TokenType.byte: {
      const b = parseBytePiece(piece);
      if (b !== undefined) return Uint8Array.of(b);
      return textBytes(model, piece);
    }
    case TokenType.normal:
    case TokenType.undefined:
      return textBytes(model, piece);
    default:
      throw new Error(`tokenizer: token "${piece}" has unknown token type ${type} (expected 0..6, as GGUF's tokenizer.ggml.token_type)`);
  }
}

function textBytes(model: TokenizerSpec["model"], piece: string): Uint8Array {
  switch (model) {
    case "spm":
      return encoder.encode(piece.replaceAll("▁", " "));
    case "bpe": {
      const out: number[] = [];
      for (const ch of piece) {
        const b = CHAR_TO_BYTE.get(ch);
        // NOTE: a character outside GPT-2's byte alphabet (a hand-added piece) decodes as itself.
        if (b !== undefined) out.push(b);
        else out.push(...encoder.encode(ch));
      }
      return Uint8Array.from(out);
    }
    default:
      return assertNever(model, "tokenizer model");
  }
}

