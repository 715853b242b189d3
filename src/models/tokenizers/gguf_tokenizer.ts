// gguf_tokenizer.ts: the tokenizer.ggml.* metadata of a GGUF file, both ways. tokenizer.ggml.model
// "llama" is a SentencePiece vocabulary (tokens, scores, token_type), "gpt2" a byte-level BPE one
// (tokens, token_type, merges); defaults follow llama.cpp's llama_vocab::load. It does not parse the
// file (formats/gguf.ts does) or write it (formats/gguf_writer.ts).

import { FormatError } from "../formats/file_source.js";
import type { MetaValue } from "../types.js";
import { derivedScores } from "./spm_merges.js";
import { createTokenizer } from "./tokenizer.js";
import { TokenType, type Tokenizer, type TokenizerSpec } from "./types.js";

type Meta = ReadonlyMap<string, MetaValue>;
const K = "tokenizer.ggml.";

/** The tokenizer stored in GGUF metadata. `source` (the file) names errors. */
export function tokenizerFromGguf(metadata: Meta, source = "GGUF metadata"): Tokenizer {
  return createTokenizer(ggufTokenizerSpec(metadata, source), source);
}

export function ggufTokenizerSpec(metadata: Meta, source = "GGUF metadata"): TokenizerSpec {
  const r = new MetaReader(metadata, source);
  const model = r.string("model");
  if (model === undefined) throw new FormatError(source, `metadata '${K}model'`, "missing: the file has no tokenizer");
  const tokens = r.strings("tokens");
  if (tokens === undefined) throw new FormatError(source, `metadata '${K}tokens'`, "missing");
  const n = tokens.length;
  const types = r.numbers("token_type", n) ?? new Array<number>(n).fill(TokenType.normal);
  const ids = { bosId: r.id("bos_token_id", n), eosId: r.id("eos_token_id", n), unkId: r.id("unknown_token_id", n), padId: r.id("padding_token_id", n) };
  if (model === "llama") {
    // NOTE: llama.cpp's SPM defaults: BOS 1, EOS 2, unknown 0, add BOS, add a space prefix. They apply
    // only where the key is absent: a key holding "no token" (-1) means none (a character vocabulary).
    const orDefault = (key: string, id: number | undefined, fallback: number) => (r.has(key) ? id : fallback);
    return {
      model: "spm",
      tokens,
      types,
      scores: r.numbers("scores", n) ?? new Array<number>(n).fill(0),
      ...definedIds({
        bosId: orDefault("bos_token_id", ids.bosId, 1),
        eosId: orDefault("eos_token_id", ids.eosId, 2),
        unkId: orDefault("unknown_token_id", ids.unkId, 0),
        padId: ids.padId,
      }),
      addBos: r.bool("add_bos_token") ?? true,
      addEos: r.bool("add_eos_token") ?? false,
      addSpacePrefix: (r.bool("add_space_prefix") ?? true) ? "always" : "never",
      preTokenizer: "none",
    };
  }
  if (model === "gpt2") {
    const pre = r.string("pre") ?? "default";
    if (pre !== "default" && pre !== "gpt-2") {
      throw new FormatError(source, `metadata '${K}pre'`, `pre-tokenizer '${pre}' is not supported (kiln supports 'gpt-2' and 'default')`);
    }
    const merges = r.strings("merges");
    if (merges === undefined) throw new FormatError(source, `metadata '${K}merges'`, "missing (required for tokenizer.ggml.model 'gpt2')");
    return {
      model: "bpe",
      tokens,
      types,
      merges,
      ...definedIds(ids),
      addBos: r.bool("add_bos_token") ?? false,
      addEos: r.bool("add_eos_token") ?? false,
      addSpacePrefix: (r.bool("add_space_prefix") ?? false) ? "always" : "never",
      preTokenizer: "gpt2",
    };
  }
  throw new FormatError(source, `metadata '${K}model'`, `'${model}' is not supported (kiln reads 'llama' and 'gpt2' vocabularies)`);
}

/**
 * tokenizer.ggml.* metadata for a tokenizer, typed so that formats/gguf_writer.ts stores what llama.cpp
 * expects: tokens and merges as string arrays, scores as f32 (Float32Array), token_type as i32
 * (Int32Array), ids as u32 numbers, flags as bools.
 */
export function tokenizerToGgufMetadata(tok: Tokenizer): Map<string, MetaValue> {
  const s = tok.spec;
  const m = new Map<string, MetaValue>();
  if (s.model === "spm") {
    if (s.preTokenizer !== "none") throw new Error(`tokenizer to GGUF: a SentencePiece vocabulary with the '${s.preTokenizer}' pre-tokenizer has no GGUF form`);
    m.set(K + "model", "llama");
    m.set(K + "pre", "default");
    m.set(K + "tokens", s.tokens.slice());
    m.set(K + "scores", Float32Array.from(s.scores ?? derivedScores(s)));
  } else {
    if (s.preTokenizer !== "gpt2") throw new Error(`tokenizer to GGUF: a byte-level BPE vocabulary with the '${s.preTokenizer}' pre-tokenizer has no GGUF form (GGUF 'gpt-2' needs the GPT-2 regex)`);
    m.set(K + "model", "gpt2");
    m.set(K + "pre", "gpt-2");
    m.set(K + "tokens", s.tokens.slice());
  }
  m.set(K + "token_type", Int32Array.from(s.types));
  if (s.model === "bpe") m.set(K + "merges", s.merges!.slice());
  // NOTE: absent ids of a SentencePiece vocabulary are written as "no token" (u32 -1, llama.cpp's
  // LLAMA_TOKEN_NULL): left out, a reader would assume llama.cpp's defaults (BOS 1, EOS 2, unknown 0).
  const none = s.model === "spm" ? 0xffffffff : undefined;
  const setId = (key: string, id: number | undefined) => {
    if ((id ?? none) !== undefined) m.set(K + key, (id ?? none)!);
  };
  setId("bos_token_id", s.bosId);
  setId("eos_token_id", s.eosId);
  setId("unknown_token_id", s.unkId);
  if (s.padId !== undefined) m.set(K + "padding_token_id", s.padId);
  m.set(K + "add_bos_token", s.addBos);
  m.set(K + "add_eos_token", s.addEos);
  // NOTE: GGUF has one flag; "first" (prefix only at the very start) becomes "always", which differs
  // only for text that follows a special token inside one encode() call.
  m.set(K + "add_space_prefix", s.addSpacePrefix !== "never");
  return m;
}

function definedIds(ids: Record<string, number | undefined>): Record<string, number> {
  return Object.fromEntries(Object.entries(ids).filter(([, v]) => v !== undefined)) as Record<string, number>;
}

class MetaReader {
  constructor(
    private readonly meta: Meta,
    private readonly source: string,
  ) {}

  private fail(key: string, detail: string): never {
    throw new FormatError(this.source, `metadata '${K}${key}'`, detail);
  }

  string(key: string): string | undefined {
    const v = this.meta.get(K + key);
    if (v === undefined || typeof v === "string") return v;
    return this.fail(key, `expected a string, got ${typeof v}`);
  }

  has(key: string): boolean {
    return this.meta.has(K + key);
  }

  bool(key: string): boolean | undefined {
    const v = this.meta.get(K + key);
    if (v === undefined || typeof v === "boolean") return v;
    return this.fail(key, `expected a bool, got ${typeof v}`);
  }

  id(key: string, n: number): number | undefined {
    const v = this.meta.get(K + key);
    if (v === undefined) return undefined;
    const id = typeof v === "bigint" ? Number(v) : v;
    if (typeof id !== "number" || !Number.isInteger(id)) return this.fail(key, `expected an integer token id, got ${String(v)}`);
    // NOTE: llama.cpp writes -1 (or u32 max) for "no such token".
    if (id < 0 || id === 0xffffffff) return undefined;
    if (id >= n) return this.fail(key, `token id ${id} is out of range for a vocabulary of ${n} tokens`);
    return id;
  }

  strings(key: string): string[] | undefined {
    const v = this.meta.get(K + key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return this.fail(key, "expected an array of strings");
    const out = v as unknown[];
    const bad = out.findIndex((x) => typeof x !== "string");
    if (bad >= 0) return this.fail(key, `element ${bad} is a ${typeof out[bad]}, not a string`);
    return out as string[];
  }

  numbers(key: string, n: number): number[] | undefined {
    const v = this.meta.get(K + key);
    if (v === undefined) return undefined;
    if (typeof v !== "object" || v === null || typeof (v as ArrayLike<unknown>).length !== "number") return this.fail(key, "expected an array of numbers");
    const arr = Array.from(v as ArrayLike<unknown>, (x) => (typeof x === "bigint" ? Number(x) : x));
    const bad = arr.findIndex((x) => typeof x !== "number");
    if (bad >= 0) return this.fail(key, `element ${bad} is a ${typeof arr[bad]}, not a number`);
    if (arr.length !== n) return this.fail(key, `has ${arr.length} entries for ${n} tokens`);
    return arr as number[];
  }
}
