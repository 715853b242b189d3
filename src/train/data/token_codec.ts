// token_codec.ts: the tokenizer a data preparation uses, as plain data that crosses into worker
// threads (TokenizerRef), and the encoder built from it in each worker. Three kinds: a Hugging Face
// tokenizer.json, a llama2.c tokenizer .bin (both become a TokenizerSpec), and "char": nanoGPT's
// character-level vocabulary, the corpus's distinct code points in code-point order.
// It does not read corpora (corpus.ts) or decide how text is cut into tasks (chunk.ts).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { createTokenizer, hfTokenizerSpec, parseLlama2cTokenizer, TokenType, type TokenizerSpec } from "../../models/tokenizers/index.js";

export type TokenizerRef =
  | { readonly kind: "hf-json" | "llama2c"; readonly name: string; readonly sha256: string; readonly spec: TokenizerSpec }
  | { readonly kind: "char"; readonly name: "char"; readonly sha256: string; readonly chars: readonly string[] };

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `arg` is "char", a tokenizer.json or a llama2.c .bin; `docs` are needed for "char" (the vocabulary is the corpus's). */
export function loadTokenizerRef(arg: string, docs: readonly string[]): TokenizerRef {
  if (arg === "char") {
    const set = new Set<string>();
    for (const d of docs) for (const ch of d) set.add(ch);
    const chars = [...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return { kind: "char", name: "char", sha256: sha256Hex(JSON.stringify(chars)), chars };
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(arg);
  } catch (err) {
    throw new Error(`tokenizer '${arg}': cannot read it (${(err as Error).message}); give a tokenizer.json, a llama2.c .bin or "char"`);
  }
  const sha256 = sha256Hex(bytes);
  if (arg.toLowerCase().endsWith(".json")) {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      throw new Error(`tokenizer '${arg}': not valid JSON (${(err as Error).message})`);
    }
    return { kind: "hf-json", name: basename(arg), sha256, spec: hfTokenizerSpec(json, undefined, arg) };
  }
  return { kind: "llama2c", name: basename(arg), sha256, spec: parseLlama2cTokenizer(bytes, arg) };
}

export function vocabSizeOf(ref: TokenizerRef): number {
  return ref.kind === "char" ? ref.chars.length : ref.spec.tokens.length;
}

/** The id appended after each document: the tokenizer's EOS (e.g. <|endoftext|>), none for "char". */
export function endOfTextId(ref: TokenizerRef): number | undefined {
  return ref.kind === "char" ? undefined : ref.spec.eosId;
}

/**
 * Whether text may be cut between "X\n" and "Y" (X, Y not whitespace) and the pieces encoded apart with
 * the same ids as the whole: true for characters and for GPT-2 byte-level BPE (its regex never joins a
 * newline to a neighbour that is not whitespace); false where a segment is merged whole or gets a space prefix.
 */
export function cutsAtNewlines(ref: TokenizerRef): boolean {
  if (ref.kind === "char") return true;
  const s = ref.spec;
  return s.model === "bpe" && s.preTokenizer === "gpt2" && s.addSpacePrefix === "never" && !s.types.includes(TokenType.userDefined);
}

/** An encoder for one worker: text -> ids, without BOS/EOS and without matching special-token text. */
export function makeEncoder(ref: TokenizerRef): (text: string) => Uint32Array {
  if (ref.kind === "char") {
    const ids = new Map(ref.chars.map((c, i) => [c, i]));
    return (text) => {
      const out: number[] = [];
      for (const ch of text) {
        const id = ids.get(ch);
        if (id === undefined) throw new Error(`char tokenizer: character ${JSON.stringify(ch)} is not in the vocabulary`);
        out.push(id);
      }
      return Uint32Array.from(out);
    };
  }
  const tok = createTokenizer(ref.spec, ref.name);
  return (text) => Uint32Array.from(tok.encode(text, { addBos: false, addEos: false }));
}
