// hf_tokenizer_read.ts: reads a Hugging Face tokenizer.json with a BPE model: byte-level (GPT-2:
// ByteLevel pre-tokenizer) or SentencePiece-style (Llama 2: byte_fallback, "▁" from a Prepend/Replace
// normalizer or a Metaspace pre-tokenizer). BOS/EOS come from tokenizer_config.json when given, else
// from the TemplateProcessing post-processor. Other models (Unigram, WordPiece), normalizers
// (NFC, Lowercase, ...) and pre-tokenizers (Split, Whitespace, ...) are refused with their names.
// It does not read files (the caller passes parsed JSON) or write them (hf_tokenizer_write.ts).

import { FormatError } from "../formats/file_source.js";
import { parseBytePiece } from "./pieces.js";
import { createTokenizer } from "./tokenizer.js";
import { TokenType, type PreTokenizer, type Tokenizer, type TokenizerSpec } from "./types.js";

type Json = Record<string, unknown>;

/** `config` is tokenizer_config.json (bos_token, eos_token, add_bos_token, add_eos_token), if any. */
export function tokenizerFromHfJson(json: unknown, config?: unknown, source = "tokenizer.json"): Tokenizer {
  return createTokenizer(hfTokenizerSpec(json, config, source), source);
}

export function hfTokenizerSpec(json: unknown, config: unknown, source = "tokenizer.json"): TokenizerSpec {
  const fail = (field: string, detail: string): never => {
    throw new FormatError(source, field, detail);
  };
  const root = obj(json) ?? fail("(root)", "expected a JSON object");
  const model = obj(root.model) ?? fail("model", "missing");
  if (model.type !== "BPE") fail("model.type", `'${String(model.type)}' is not supported (kiln reads BPE tokenizer.json)`);
  if (model.ignore_merges === true) fail("model.ignore_merges", "true (whole words looked up before merging, as Llama 3 does) is not supported");
  for (const k of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (model[k] !== undefined && model[k] !== null && model[k] !== "") fail(`model.${k}`, `'${String(model[k])}' is not supported`);
  }
  const vocab = obj(model.vocab) ?? fail("model.vocab", "expected an object of piece -> id");
  const added = root.added_tokens ?? [];
  if (!Array.isArray(added)) fail("added_tokens", "expected an array");
  const tokens: string[] = [];
  const types: number[] = [];
  const limit = Object.keys(vocab).length + (added as unknown[]).length;
  const place = (piece: string, id: unknown, type: number, field: string): void => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= limit) fail(field, `id ${String(id)} of "${piece}" is not an integer in 0..${limit - 1}`);
    const i = id as number;
    if (tokens[i] !== undefined && tokens[i] !== piece) fail(field, `id ${i} is both "${tokens[i]}" and "${piece}"`);
    tokens[i] = piece;
    types[i] = type;
  };
  const byteFallback = model.byte_fallback === true;
  for (const [piece, id] of Object.entries(vocab)) {
    place(piece, id, byteFallback && parseBytePiece(piece) !== undefined ? TokenType.byte : TokenType.normal, "model.vocab");
  }
  (added as unknown[]).forEach((a, i) => {
    const t = obj(a) ?? fail(`added_tokens[${i}]`, "expected an object");
    if (typeof t.content !== "string") fail(`added_tokens[${i}].content`, "expected a string");
    place(t.content as string, t.id, t.special === true ? TokenType.control : TokenType.userDefined, `added_tokens[${i}]`);
  });
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) fail("model.vocab", `no token has id ${i} (ids must be 0..${tokens.length - 1} without gaps)`);

  const ids = new Map<string, number>();
  tokens.forEach((piece, id) => ids.set(piece, id));
  const idOf: IdOf = (piece, field) => {
    if (piece === undefined) return undefined;
    return ids.get(piece) ?? fail(field, `"${piece}" is not in the vocabulary`);
  };
  const unkId = idOf(typeof model.unk_token === "string" ? model.unk_token : undefined, "model.unk_token");
  if (unkId !== undefined) types[unkId] = TokenType.unknown;

  const merges = readMerges(model.merges, fail);
  const layout = textLayout(root, fail);
  const special = specialTokens(root, obj(config), ids, idOf);
  return {
    model: layout.model,
    tokens,
    types,
    merges,
    ...defined({ bosId: special.bosId, eosId: special.eosId, unkId, padId: special.padId }),
    addBos: special.addBos,
    addEos: special.addEos,
    addSpacePrefix: layout.addSpacePrefix,
    preTokenizer: layout.preTokenizer,
  };
}

function readMerges(raw: unknown, fail: (field: string, detail: string) => never): string[] {
  if (!Array.isArray(raw)) return fail("model.merges", "expected an array");
  return (raw as unknown[]).map((m, i) => {
    if (typeof m === "string") return m;
    // NOTE: tokenizers >= 0.20 writes merges as [left, right] pairs.
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      if (m[0].includes(" ") || m[1].includes(" ")) fail(`model.merges[${i}]`, `a piece with a space ("${m[0]}", "${m[1]}") is not supported`);
      return `${m[0]} ${m[1]}`;
    }
    return fail(`model.merges[${i}]`, "expected \"left right\" or [left, right]");
  });
}

interface Layout {
  model: TokenizerSpec["model"];
  addSpacePrefix: TokenizerSpec["addSpacePrefix"];
  preTokenizer: PreTokenizer;
}

/** How text becomes pieces: byte-level (ByteLevel pre-tokenizer) or SentencePiece ("▁" for spaces). */
function textLayout(root: Json, fail: (field: string, detail: string) => never): Layout {
  let prepend = false;
  let replacesSpace = false;
  for (const [i, n] of steps(root.normalizer, "normalizers").entries()) {
    const field = `normalizer[${i}]`;
    if (n.type === "Prepend" && n.prepend === "▁") prepend = true;
    else if (n.type === "Replace" && obj(n.pattern)?.String === " " && n.content === "▁") replacesSpace = true;
    else fail(field, `normalizer ${JSON.stringify(n)} is not supported (kiln supports Prepend "▁" and Replace " " -> "▁")`);
  }
  let byteLevel: Layout | undefined;
  let metaspace: Layout | undefined;
  for (const [i, p] of steps(root.pre_tokenizer, "pretokenizers").entries()) {
    const field = `pre_tokenizer[${i}]`;
    if (p.type === "ByteLevel") {
      byteLevel = { model: "bpe", addSpacePrefix: p.add_prefix_space === true ? "always" : "never", preTokenizer: p.use_regex === false ? "none" : "gpt2" };
    } else if (p.type === "Metaspace") {
      // NOTE: the tokenizers library's Metaspace skips the prefix when a segment already starts with
      // "▁"; kiln (like llama.cpp) always adds it. They differ only for text that starts with a space.
      if ((p.replacement ?? "▁") !== "▁") fail(`${field}.replacement`, `'${String(p.replacement)}' is not supported (only "▁")`);
      const scheme = p.prepend_scheme ?? (p.add_prefix_space === false ? "never" : "always");
      if (scheme !== "always" && scheme !== "first" && scheme !== "never") fail(`${field}.prepend_scheme`, `'${String(scheme)}' is not always, first or never`);
      metaspace = { model: "spm", addSpacePrefix: scheme as Layout["addSpacePrefix"], preTokenizer: p.split === true ? "metaspace" : "none" };
    } else {
      fail(field, `pre-tokenizer '${String(p.type)}' is not supported (kiln supports ByteLevel and Metaspace)`);
    }
  }
  if (byteLevel !== undefined) {
    if (prepend || replacesSpace || metaspace !== undefined) fail("pre_tokenizer", "mixes ByteLevel with SentencePiece-style \"▁\" handling");
    return byteLevel;
  }
  if (metaspace !== undefined) return prepend ? { ...metaspace, addSpacePrefix: "always" } : metaspace;
  if (replacesSpace) return { model: "spm", addSpacePrefix: prepend ? "always" : "never", preTokenizer: "none" };
  return fail("pre_tokenizer", "neither a ByteLevel pre-tokenizer nor SentencePiece-style \"▁\" handling (Replace \" \" -> \"▁\" or Metaspace)");
}

/** A normalizer or pre-tokenizer as a flat list of steps (null: none; Sequence: its members). */
function steps(raw: unknown, listKey: string): Json[] {
  const step = obj(raw);
  if (step === undefined) return [];
  if (step.type !== "Sequence") return [step];
  const list = step[listKey];
  return Array.isArray(list) ? list.flatMap((s) => steps(s, listKey)) : [];
}

interface SpecialIds {
  bosId: number | undefined;
  eosId: number | undefined;
  padId: number | undefined;
  addBos: boolean;
  addEos: boolean;
}

type IdOf = (piece: string | undefined, field: string) => number | undefined;

function specialTokens(root: Json, config: Json | undefined, ids: ReadonlyMap<string, number>, idOf: IdOf): SpecialIds {
  const fromConfig = (key: string): number | undefined => idOf(tokenText(config?.[key]), `tokenizer_config.json ${key}`);
  const template = templateEnds(root.post_processor, idOf);
  // NOTE: the last resort when neither the config nor the template names them: the usual spellings.
  const known = (names: string[]): number | undefined => names.map((n) => ids.get(n)).find((id) => id !== undefined);
  const bosId = fromConfig("bos_token") ?? template.first ?? known(["<s>", "<|begin_of_text|>", "<|endoftext|>"]);
  const eosId = fromConfig("eos_token") ?? template.last ?? known(["</s>", "<|end_of_text|>", "<|endoftext|>"]);
  const addBos = typeof config?.add_bos_token === "boolean" ? config.add_bos_token : template.first !== undefined;
  const addEos = typeof config?.add_eos_token === "boolean" ? config.add_eos_token : template.last !== undefined;
  return { bosId, eosId, padId: fromConfig("pad_token"), addBos: addBos && bosId !== undefined, addEos: addEos && eosId !== undefined };
}

/** The special tokens a TemplateProcessing post-processor puts before and after a single sequence. */
function templateEnds(raw: unknown, idOf: IdOf): { first?: number; last?: number } {
  const processors = steps(raw, "processors").filter((p) => p.type === "TemplateProcessing");
  const single = processors[0]?.single;
  if (!Array.isArray(single) || single.length === 0) return {};
  const specialId = (item: unknown): number | undefined => {
    const s = obj(obj(item)?.SpecialToken);
    return s === undefined ? undefined : idOf(String(s.id), "post_processor.single");
  };
  const first = specialId(single[0]);
  const last = single.length > 1 ? specialId(single[single.length - 1]) : undefined;
  return { ...defined({ first, last }) };
}

/** A special token in tokenizer_config.json: "<s>" or an AddedToken {content: "<s>", ...}. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  const o = obj(v);
  return typeof o?.content === "string" ? o.content : undefined;
}

function obj(v: unknown): Json | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function defined<T extends Record<string, number | undefined>>(o: T): { [K in keyof T]?: number } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: number };
}
