// run_tokenizer.ts: the tokenizer a training run's model was trained with, found from its config's data
// section, for an export to carry: the characters of the text file (data.path), or what a prepared
// shard folder's index.json names (data.index): its characters, or its tokenizer file, checked against
// the sha256 the index recorded (a different tokenizer would make the export silently wrong).
// It does not tokenize (models/tokenizers) or read shards (data/).

import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Tokenizer } from "../../models/index.js";
import { charTokenizerSpec, createTokenizer, hfTokenizerSpec, parseLlama2cTokenizer } from "../../models/index.js";
import { charVocab } from "../char_vocab.js";
import type { TrainConfig } from "../config.js";
import { checkShardIndex, INDEX_FILE } from "../data/index.js";
import { configPath } from "../run_data.js";
import { ExportError } from "./export_writer.js";

/** A tokenizer file (tokenizer.json or a llama2.c .bin) as a Tokenizer. */
export function tokenizerFile(path: string, vocabSize?: number): Tokenizer {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new ExportError(`export: cannot read the tokenizer ${path}: ${(err as Error).message}`);
  }
  return tokenizerBytes(path, bytes, vocabSize);
}

function tokenizerBytes(path: string, bytes: Uint8Array, vocabSize?: number): Tokenizer {
  if (path.toLowerCase().endsWith(".json")) {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      throw new ExportError(`export: the tokenizer ${path} is not valid JSON (${(err as Error).message})`);
    }
    return createTokenizer(hfTokenizerSpec(json, undefined, path), path);
  }
  return createTokenizer(parseLlama2cTokenizer(bytes, path, vocabSize), path);
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * The tokenizer of the run `cfg` describes (paths relative to `baseDir`, the config file's folder).
 * `tokenizer` (a file) is where a prepared index's tokenizer file is, when not beside the index.
 */
export function runTokenizer(cfg: TrainConfig, baseDir: string, tokenizer?: string): Tokenizer {
  const d = cfg.data;
  if (d.path !== undefined) {
    const path = configPath(d.path, baseDir);
    if (!existsSync(path)) throw new ExportError(`export: the run's text ${path} (data.path) is gone: its characters are the vocabulary; run from the config's folder or give --config`);
    const text = new TextDecoder("utf-8", { fatal: true }).decode(readFileSync(path));
    return createTokenizer(charTokenizerSpec(charVocab(text).chars), `characters of ${path}`);
  }
  const loc = configPath(d.index!, baseDir);
  if (/^https?:\/\//.test(loc)) throw new ExportError(`export: the run's data is at ${loc}; give the tokenizer file (--tokenizer, or export.tokenizer in the config)`);
  const indexPath = existsSync(loc) && statSync(loc).isDirectory() ? join(loc, INDEX_FILE) : loc;
  if (!existsSync(indexPath)) throw new ExportError(`export: the run's shard index ${indexPath} (data.index) is gone: it names the tokenizer`);
  const index = checkShardIndex(JSON.parse(readFileSync(indexPath, "utf8")), indexPath);
  const t = index.tokenizer;
  if (t.kind === "char") return createTokenizer(charTokenizerSpec(t.chars ?? []), `characters of ${indexPath}`);
  // NOTE: the index records the tokenizer's file name and sha256, not where it is: look beside the index, then
  // in the config's folder (where `kiln tokenizer train` output usually sits); the sha256 check makes a wrong find harmless.
  const places = tokenizer !== undefined ? [configPath(tokenizer, baseDir)] : [join(dirname(indexPath), t.name), join(baseDir, t.name)];
  const path = places.find((p) => existsSync(p));
  if (path === undefined) {
    throw new ExportError(`export: the run's tokenizer '${t.name}' is not at ${places.join(" or ")}; give it with --tokenizer FILE (or export.tokenizer in the config)`);
  }
  const bytes = readFileSync(path);
  if (sha256(bytes) !== t.sha256) {
    throw new ExportError(`export: ${path} is not the tokenizer the data was prepared with: its sha256 ${sha256(bytes).slice(0, 16)}… differs from the index's ${t.sha256.slice(0, 16)}…`);
  }
  return tokenizerBytes(path, bytes, index.vocabSize);
}
