// tokenizer.ts: builds a working Tokenizer from a TokenizerSpec. Encoding: cut the text at special
// tokens, prefix a space where the spec says, pre-tokenize into words, merge each word (merge.ts) by
// score (SentencePiece) or by rank (BPE), then map symbols to ids with byte fallback. Decoding: the
// tokens' bytes (pieces.ts), with the SentencePiece leading space dropped, as UTF-8. It does not read
// files: the readers build specs.

import { assertNever } from "../../core/ops.js";
import { splitGpt2, toByteChars } from "./byte_level.js";
import { createDetokenizer } from "./detokenizer.js";
import { mergeSymbols } from "./merge.js";
import { bytePiece, pieceBytes } from "./pieces.js";
import { SpecialSplitter } from "./special_split.js";
import { validateSpec } from "./spec_check.js";
import { TokenType, type DecodeOptions, type EncodeOptions, type PreTokenizer, type Tokenizer, type TokenizerSpec } from "./types.js";

const encoder = new TextEncoder();

/** `source` names where the spec came from, for error messages. */
export function createTokenizer(spec: TokenizerSpec, source = "tokenizer spec"): Tokenizer {
  validateSpec(spec, source);
  return new SpecTokenizer(spec, source);
}

class SpecTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly specialTokens: ReadonlyMap<string, number>;
  private readonly ids = new Map<string, number>();
  private readonly priority: (left: string, right: string) => number | undefined;
  /** Splits at user-defined tokens only, or at every special token (allowSpecial). */
  private readonly userSplitter: SpecialSplitter;
  private readonly allSplitter: SpecialSplitter;
  /** spm: the id of each byte's "<0xAB>" token, -1 where the vocabulary has none. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly bytesCache: (Uint8Array | undefined)[] = [];
  private readonly specialBytesCache: (Uint8Array | undefined)[] = [];

  constructor(
    readonly spec: TokenizerSpec,
    private readonly source: string,
  ) {
    this.vocabSize = spec.tokens.length;
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    // NOTE: when a piece repeats, the last id wins, as in llama.cpp's token_to_id.
    spec.tokens.forEach((piece, id) => this.ids.set(piece, id));
    const special = new Map<string, number>();
    const user = new Map<string, number>();
    spec.tokens.forEach((piece, id) => {
      const type = spec.types[id]!;
      if (type === TokenType.control || type === TokenType.unknown || type === TokenType.userDefined) special.set(piece, id);
      if (type === TokenType.userDefined) user.set(piece, id);
    });
    this.specialTokens = special;
    this.userSplitter = new SpecialSplitter(user);
    this.allSplitter = new SpecialSplitter(special);
    for (let b = 0; b < 256; b++) this.byteIds[b] = this.ids.get(bytePiece(b)) ?? -1;
    this.priority = spec.merges !== undefined ? rankPriority(spec.merges) : scorePriority(this.ids, spec.scores!);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos ?? this.spec.addBos) out.push(this.required(this.bosId, "BOS"));
    const splitter = options.allowSpecial ? this.allSplitter : this.userSplitter;
    for (const fragment of splitter.split(text)) {
      if ("id" in fragment) out.push(fragment.id);
      else this.encodeSegment(fragment.text, fragment.start === 0, out);
    }
    if (options.addEos ?? this.spec.addEos) out.push(this.required(this.eosId, "EOS"));
    return out;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const detok = createDetokenizer(this, options);
    let text = "";
    for (const id of ids) text += detok.push(id);
    return text + detok.flush();
  }

  tokenToPiece(id: number): string {
    this.checkId(id);
    return this.spec.tokens[id]!;
  }

  pieceToToken(piece: string): number | undefined {
    return this.ids.get(piece);
  }

  tokenBytes(id: number, special = false): Uint8Array {
    this.checkId(id);
    const cache = special ? this.specialBytesCache : this.bytesCache;
    let bytes = cache[id];
    if (bytes === undefined) {
      bytes = pieceBytes(this.spec.model, this.spec.tokens[id]!, this.spec.types[id]!, special);
      cache[id] = bytes;
    }
    return bytes;
  }

  private encodeSegment(text: string, atStart: boolean, out: number[]): void {
    const prefix = this.spec.addSpacePrefix === "always" || (this.spec.addSpacePrefix === "first" && atStart);
    switch (this.spec.model) {
      case "spm": {
        const escaped = (prefix ? " " + text : text).replaceAll(" ", "▁");
        for (const word of preTokenize(this.spec.preTokenizer, escaped)) {
          for (const symbol of mergeSymbols(Array.from(word), this.priority)) this.pushSpm(symbol, out);
        }
        return;
      }
      case "bpe": {
        const spaced = prefix && !text.startsWith(" ") ? " " + text : text;
        for (const word of preTokenize(this.spec.preTokenizer, spaced)) {
          for (const symbol of mergeSymbols(toByteChars(word), this.priority)) this.pushBpe(symbol, out);
        }
        return;
      }
      default:
        return assertNever(this.spec.model, "tokenizer model");
    }
  }

  private pushSpm(symbol: string, out: number[]): void {
    const id = this.ids.get(symbol);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    for (const b of encoder.encode(symbol)) {
      const byteId = this.byteIds[b]!;
      out.push(byteId >= 0 ? byteId : this.required(this.spec.unkId, `byte token ${bytePiece(b)} (for "${symbol}") or an unknown token`));
    }
  }

  private pushBpe(symbol: string, out: number[]): void {
    const id = this.ids.get(symbol);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    for (const ch of symbol) out.push(this.ids.get(ch) ?? this.required(this.spec.unkId, `byte-level token "${ch}" or an unknown token`));
  }

  private required(id: number | undefined, what: string): number {
    if (id === undefined) throw new Error(`tokenizer (${this.source}): the vocabulary has no ${what}`);
    return id;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new Error(`tokenizer (${this.source}): token id ${id} is out of range for a vocabulary of ${this.vocabSize} tokens`);
    }
  }
}

function scorePriority(ids: ReadonlyMap<string, number>, scores: readonly number[]): (l: string, r: string) => number | undefined {
  return (left, right) => {
    const id = ids.get(left + right);
    return id === undefined ? undefined : scores[id];
  };
}

function rankPriority(merges: readonly string[]): (l: string, r: string) => number | undefined {
  const ranks = new Map<string, number>();
  // NOTE: a repeated merge keeps its first (best) rank, as llama.cpp's bpe_ranks.emplace does.
  merges.forEach((m, rank) => {
    if (!ranks.has(m)) ranks.set(m, rank);
  });
  return (left, right) => {
    const rank = ranks.get(left + " " + right);
    return rank === undefined ? undefined : -rank;
  };
}

function preTokenize(kind: PreTokenizer, text: string): string[] {
  switch (kind) {
    case "none":
      return [text];
    case "gpt2":
      return splitGpt2(text);
    case "metaspace":
      return text.split(/(?=▁)/u).filter((w) => w.length > 0);
    default:
      return assertNever(kind, "pre-tokenizer");
  }
}
